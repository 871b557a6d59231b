//! Backend selection. Burn 0.22 model code has no backend type parameter: the `Device` picks the
//! backend at run time among those compiled in by cargo features (`flex`, `ndarray`, `wgpu`,
//! `cuda`).
use anyhow::bail;
use burn::prelude::Device;

/// Backends compiled into this binary, in default-preference order (GPU first).
pub fn compiled() -> Vec<&'static str> {
    let mut v = Vec::new();
    if cfg!(feature = "cuda") {
        v.push("cuda");
    }
    if cfg!(feature = "wgpu") {
        v.push("wgpu");
    }
    if cfg!(feature = "flex") {
        v.push("flex");
    }
    if cfg!(feature = "ndarray") {
        v.push("ndarray");
    }
    v
}

/// The default device name: the first compiled of cuda, wgpu, flex, ndarray.
pub fn default_name() -> &'static str {
    compiled().first().copied().unwrap_or("none")
}

/// Whether `name` is a CPU backend (`flex`, `ndarray`).
pub fn is_cpu(name: &str) -> bool {
    matches!(name, "flex" | "ndarray")
}

/// Parses `flex`, `ndarray`, `wgpu[:N]`, `cuda[:N]` into a device, refusing backends that were
/// not compiled in (and saying which feature to enable).
pub fn parse(name: &str) -> anyhow::Result<Device> {
    let (kind, index) = match name.split_once(':') {
        Some((k, i)) => match i.parse::<usize>() {
            Ok(i) => (k, i),
            Err(_) => bail!("bad device index in {name:?}: expected e.g. cuda:0"),
        },
        None => (name, 0),
    };
    let missing = |feature: &str| {
        anyhow::anyhow!(
            "device {name:?} is not compiled into this binary; rebuild with \
             `--features {feature}` (compiled: {})",
            compiled().join(", ")
        )
    };
    match kind {
        "flex" => {
            #[cfg(feature = "flex")]
            return Ok(Device::flex());
            #[cfg(not(feature = "flex"))]
            return Err(missing("flex"));
        }
        "ndarray" => {
            #[cfg(feature = "ndarray")]
            #[allow(deprecated)]
            return Ok(Device::ndarray());
            #[cfg(not(feature = "ndarray"))]
            return Err(missing("ndarray"));
        }
        "wgpu" => {
            #[cfg(feature = "wgpu")]
            return Ok(if name.contains(':') {
                Device::wgpu(burn::tensor::DeviceKind::DiscreteGpu(index))
            } else {
                Device::wgpu(burn::tensor::DeviceKind::DefaultDevice)
            });
            #[cfg(not(feature = "wgpu"))]
            return Err(missing("wgpu"));
        }
        "cuda" => {
            #[cfg(feature = "cuda")]
            return Ok(Device::cuda(index));
            #[cfg(not(feature = "cuda"))]
            return Err(missing("cuda"));
        }
        other => {
            let _ = index;
            bail!("unknown device {other:?}: use flex, ndarray, wgpu[:N] or cuda[:N]")
        }
    }
}

#[cfg(test)]
mod tests {
    #[test]
    fn default_is_a_compiled_backend_and_unknown_names_fail() {
        assert!(super::compiled().contains(&super::default_name()));
        assert!(super::parse(super::default_name()).is_ok());
        assert!(
            super::parse("tpu")
                .unwrap_err()
                .to_string()
                .contains("unknown device")
        );
        assert!(super::parse("cuda:x").is_err());
    }
}

/// The backend of a config whose `device` may be unset: the command line's `flag` (checked
/// to be compiled in), else the config's, else [`default_name`].
pub fn choose(device: &mut Option<String>, flag: Option<&str>) -> anyhow::Result<()> {
    if let Some(d) = flag {
        parse(d)?;
        *device = Some(d.to_string());
    }
    device.get_or_insert_with(|| default_name().to_string());
    Ok(())
}

/// Checks a multi-device list (empty or one device: nothing to check): every entry compiled
/// in, no device twice, all of one GPU backend. Burn 0.22's CPU backends have one device and
/// no collective operations, so a CPU list is refused, pointing to `--jobs` for sweeps.
pub fn check_devices(devices: &[String]) -> anyhow::Result<()> {
    if devices.len() < 2 {
        return Ok(());
    }
    for (i, d) in devices.iter().enumerate() {
        let kind = d.split(':').next().unwrap_or(d);
        if kind == "flex" || kind == "ndarray" {
            bail!(
                "devices = {devices:?}: several devices train one run on GPUs only (cuda:N or \
                 wgpu:N); Burn's CPU backends ({kind}) have a single device and no collective \
                 operations. On a CPU, one run uses every core already; for many runs use \
                 `sweep --jobs N` or a job array (README, \"Sweeps over any grid\")"
            );
        }
        if devices[..i].contains(d) {
            bail!("devices = {devices:?}: {d} is listed twice");
        }
        if devices[0].split(':').next() != Some(kind) {
            bail!("devices = {devices:?}: mix of backends; list devices of one backend");
        }
    }
    for d in devices {
        parse(d)?;
    }
    Ok(())
}

#[cfg(test)]
mod device_list_tests {
    use super::*;

    #[test]
    fn device_lists_are_for_one_gpu_backend() {
        let list = |v: &[&str]| v.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(check_devices(&list(&["flex"])).is_ok());
        let e = check_devices(&list(&["flex", "flex"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("GPUs only") && e.contains("sweep --jobs"), "{e}");
        let e = check_devices(&list(&["cuda:0", "cuda:0"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("listed twice"), "{e}");
        let e = check_devices(&list(&["cuda:0", "wgpu:1"]))
            .unwrap_err()
            .to_string();
        assert!(e.contains("mix of backends"), "{e}");
    }
}
