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
