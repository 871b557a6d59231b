//! Bad input never panics: property tests of the IDX reader and the config loaders on
//! arbitrary and adversarial input (proptest; a bounded number of cases per run, seeded by
//! proptest's default per-test RNG, failures shrunk and reported).
use ae::data::idx::{encode_idx, parse_idx, read_idx};
use ae::train::ExperimentConfig;
use ae::train::sweep::SweepConfig;
use proptest::prelude::*;
use std::io::Write;
use std::path::Path;

fn gzip(bytes: &[u8]) -> Vec<u8> {
    let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
    gz.write_all(bytes).unwrap();
    gz.finish().unwrap()
}

/// Every outcome of the reader on `bytes`, raw and gzipped: `Ok` with consistent sizes or
/// `Err` with a message naming the file; never a panic.
fn check_reader(bytes: &[u8], ndims: usize) {
    if let Ok(a) = parse_idx(bytes, ndims) {
        assert_eq!(a.data.len(), a.dims.iter().product::<usize>());
    }
    let dir = tempfile::tempdir().unwrap();
    for (name, content) in [
        ("x-idx-ubyte", bytes.to_vec()),
        ("x-idx-ubyte.gz", gzip(bytes)),
    ] {
        let p = dir.path().join(name);
        std::fs::write(&p, &content).unwrap();
        match read_idx(&p, ndims) {
            Ok(a) => assert_eq!(a.data.len(), a.dims.iter().product::<usize>()),
            Err(e) => assert!(e.to_string().contains(name), "{e}"),
        }
    }
}

/// IDX bytes with a valid magic number, arbitrary dimensions and an arbitrary body.
fn idx_like() -> impl Strategy<Value = (Vec<u8>, usize)> {
    (
        1usize..4,
        prop::collection::vec(any::<u32>(), 0..4),
        prop::collection::vec(any::<u8>(), 0..64),
    )
        .prop_map(|(ndims, dims, body)| {
            let mut b = vec![0, 0, 0x08, dims.len() as u8];
            for d in &dims {
                b.extend_from_slice(&d.to_be_bytes());
            }
            b.extend_from_slice(&body);
            (b, ndims)
        })
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 256, ..ProptestConfig::default() })]

    #[test]
    fn the_idx_reader_never_panics_on_arbitrary_bytes(
        bytes in prop::collection::vec(any::<u8>(), 0..80),
        ndims in 1usize..4,
    ) {
        check_reader(&bytes, ndims);
    }

    #[test]
    fn the_idx_reader_never_panics_on_headers_with_any_dimensions((bytes, ndims) in idx_like()) {
        check_reader(&bytes, ndims);
    }

    #[test]
    fn a_truncated_idx_file_is_an_error((dims, cut) in (prop::collection::vec(1usize..6, 1..4), any::<prop::sample::Index>())) {
        let n: usize = dims.iter().product();
        let full = encode_idx(&dims, &vec![7; n]);
        let cut = cut.index(full.len()); // strictly shorter than the file
        prop_assert!(parse_idx(&full[..cut], dims.len()).is_err());
        prop_assert!(parse_idx(&full, dims.len()).is_ok());
    }

    #[test]
    fn the_config_loader_never_panics_on_arbitrary_text(text in "\\PC{0,200}") {
        if let Ok(cfg) = ExperimentConfig::from_str_any(&text) {
            let _ = cfg.validate().and_then(|()| cfg.check_shapes());
        }
        if let Ok(cfg) = SweepConfig::from_toml(&text, "fuzz") {
            let _ = cfg.validate();
        }
    }

    #[test]
    fn the_config_loader_never_panics_on_a_shipped_config_with_one_value_replaced(
        (config, line, value) in (
            prop::sample::select(shipped_configs()),
            any::<prop::sample::Index>(),
            prop::sample::select(vec![
                "0", "-1", "1e30", "-1e30", "nan", "inf", "1e-30", "18446744073709551615",
                "-9223372036854775808", "\"\"", "\"x\"", "[]", "[0]", "[-1, 0]", "{}", "true",
                "0.5", "3",
            ]),
        ),
    ) {
        let lines: Vec<&str> = config.lines().collect();
        let k = line.index(lines.len());
        let Some((key, _)) = lines[k].split_once(" = ") else { return Ok(()) };
        let mut text: Vec<String> = lines.iter().map(|l| l.to_string()).collect();
        text[k] = format!("{key} = {value}");
        let text = text.join("\n");
        // Any outcome of the loader's checks but a panic.
        if let Ok(cfg) = ExperimentConfig::from_str_any(&text)
            && cfg.validate().is_ok()
        {
            let _ = cfg.check_shapes();
        }
        // The same text as JSON goes through the other parser.
        if let Ok(v) = toml::from_str::<toml::Value>(&text)
            && let Ok(json) = serde_json::to_string(&v)
            && let Ok(cfg) = ExperimentConfig::from_str_any(&json)
        {
            let _ = cfg.validate();
        }
    }
}

fn shipped_configs() -> Vec<String> {
    let dir = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/configs");
    let mut v: Vec<String> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| std::fs::read_to_string(e.unwrap().path()).unwrap())
        .collect();
    v.sort();
    v
}

#[test]
fn huge_declared_dimensions_are_refused_before_anything_is_allocated() {
    // 4 × 2^32-1 cubed overflows usize: refused by the size check, not by an allocation.
    let mut header = vec![0, 0, 0x08, 3];
    for _ in 0..3 {
        header.extend_from_slice(&u32::MAX.to_be_bytes());
    }
    let err = parse_idx(&header, 3).unwrap_err();
    assert!(err.contains("too large"), "{err}");
    // (2^32-1) × 2^16 bytes (281 TB) fits in usize but the file holds 4 bytes: truncated,
    // with no allocation of the declared size (a gzip stream is read only up to the declared
    // length + 1, so this test would abort on a 281 TB allocation otherwise).
    let mut header = vec![0, 0, 0x08, 2];
    header.extend_from_slice(&u32::MAX.to_be_bytes());
    header.extend_from_slice(&(1u32 << 16).to_be_bytes());
    header.extend_from_slice(&[1, 2, 3, 4]);
    let dir = tempfile::tempdir().unwrap();
    let p = dir.path().join("huge-idx2-ubyte.gz");
    std::fs::write(&p, gzip(&header)).unwrap();
    let err = read_idx(&p, 2).unwrap_err().to_string();
    assert!(
        err.contains("huge-idx2-ubyte.gz") && err.contains("truncated"),
        "{err}"
    );
}
