use crate::util::mnist_dir;
use ae::data::DataConfig;
use ae::data::idx::encode_idx;
use ae::data::mnist::load_split;
use burn::data::dataset::Dataset;

#[test]
fn the_mnist_fixture_loads_through_the_mnist_loader() {
    let train = load_split(&mnist_dir(), "train").unwrap();
    let test = load_split(&mnist_dir(), "t10k").unwrap();
    assert_eq!((train.len(), test.len()), (2_000, 500));
    assert_eq!(train.images.len(), 2_000 * 784);
    // Every digit is there, in roughly MNIST's proportions (each 7–13 %).
    for d in 0..10u8 {
        let n = train.labels.iter().filter(|&&l| l == d).count();
        assert!((140..260).contains(&n), "digit {d}: {n} of 2,000");
    }
    let (tr, va) = DataConfig::mnist(Some(mnist_dir())).load().unwrap();
    assert_eq!((tr.len(), va.len()), (2_000, 500));
    let item = tr.get(0).unwrap();
    assert_eq!(item.pixels.len(), 784);
    assert!(item.pixels.contains(&255) && item.pixels.contains(&0));
}

#[test]
fn missing_mnist_names_the_path_and_how_to_get_it() {
    let dir = tempfile::tempdir().unwrap();
    let err = DataConfig::mnist(Some(dir.path().join("nowhere")))
        .load()
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("nowhere") && err.contains("--data-dir") && err.contains("AE_MNIST_DIR"),
        "{err}"
    );
    let err = DataConfig::mnist(Some(dir.path().to_path_buf()))
        .load()
        .unwrap_err()
        .to_string();
    assert!(err.contains("train-images-idx3-ubyte"), "{err}");
}

#[test]
fn corrupt_or_truncated_mnist_files_are_reported_not_panicked_on() {
    let dir = tempfile::tempdir().unwrap();
    let d = dir.path();
    let write = |name: &str, bytes: Vec<u8>| std::fs::write(d.join(name), bytes).unwrap();
    // Raw (not gzipped) files are accepted.
    write(
        "t10k-images-idx3-ubyte",
        encode_idx(&[2, 28, 28], &[7; 2 * 784]),
    );
    write("t10k-labels-idx1-ubyte", encode_idx(&[2], &[3, 4]));
    assert_eq!(load_split(d, "t10k").unwrap().len(), 2);
    // Truncated images.
    write(
        "t10k-images-idx3-ubyte",
        encode_idx(&[2, 28, 28], &[7; 2 * 784])[..900].to_vec(),
    );
    let err = load_split(d, "t10k").unwrap_err().to_string();
    assert!(
        err.contains("t10k-images-idx3-ubyte") && err.contains("truncated"),
        "{err}"
    );
    // Labels and images disagree.
    write(
        "t10k-images-idx3-ubyte",
        encode_idx(&[2, 28, 28], &[7; 2 * 784]),
    );
    write("t10k-labels-idx1-ubyte", encode_idx(&[3], &[3, 4, 5]));
    assert!(
        load_split(d, "t10k")
            .unwrap_err()
            .to_string()
            .contains("3 labels for 2 images")
    );
    // Image file where a label file belongs (bad rank), and garbage bytes.
    write(
        "t10k-labels-idx1-ubyte",
        encode_idx(&[2, 28, 28], &[7; 2 * 784]),
    );
    assert!(
        load_split(d, "t10k")
            .unwrap_err()
            .to_string()
            .contains("dimensions")
    );
    write("t10k-labels-idx1-ubyte", b"GIF89a not an idx file".to_vec());
    assert!(
        load_split(d, "t10k")
            .unwrap_err()
            .to_string()
            .contains("bad magic")
    );
}
