//! The user's own data: any IDX image files (shape from the header), NumPy arrays (uint8 or
//! float32, grey or colour), trained through `train` into a complete run folder; and the
//! errors that name the bad file.
use crate::util::{
    assert_run_files, options, small_mnist_vae, tensorboard_matches_metrics_csv, training_lock,
};
use ae::data::array::npy_bytes as npy;
use ae::data::idx::encode_idx;
use ae::data::{DataConfig, FilesConfig, FolderConfig};
use ae::models::ModelConfig;
use ae::models::nets::Architecture;
use ae::train::evaluation::FinishedRun;
use ae::train::train;
use std::path::{Path, PathBuf};

/// `n` 8×8 images of 10 classes (class c: a bright bar in row c % 8 and column c / 2, plus
/// seeded noise), like scikit-learn's 8×8 digits in size; pixels and labels.
fn digits_8x8(n: usize, seed: u64) -> (Vec<u8>, Vec<u8>) {
    let mut state = seed.wrapping_mul(0x9E37_79B9_7F4A_7C15) | 1;
    let mut next = move || {
        state ^= state << 13;
        state ^= state >> 7;
        state ^= state << 17;
        state
    };
    let (mut pixels, mut labels) = (Vec::new(), Vec::new());
    for i in 0..n {
        let c = i % 10;
        for y in 0..8 {
            for x in 0..8 {
                let on = y == c % 8 || x == c / 2;
                let noise = (next() % 40) as u8;
                pixels.push(if on { 215 + noise } else { noise });
            }
        }
        labels.push(c as u8);
    }
    (pixels, labels)
}

fn write(dir: &Path, name: &str, bytes: Vec<u8>) -> PathBuf {
    let path = dir.join(name);
    std::fs::write(&path, bytes).unwrap();
    path
}

/// The run folder has what every run writes (TensorBoard logs matching `metrics.csv`
/// included), and its config names the data set.
fn assert_complete_run(dir: &Path, dataset: &str) {
    assert_run_files(dir);
    let config = std::fs::read_to_string(dir.join("config.toml")).unwrap();
    assert!(
        config.contains(&format!("dataset = \"{dataset}\"")),
        "{config}"
    );
    let summary: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("summary.json")).unwrap()).unwrap();
    assert!(summary["loss"].as_f64().unwrap().is_finite(), "{summary}");
    assert!(tensorboard_matches_metrics_csv(dir) > 0);
}

#[test]
fn an_8x8_idx_set_trains_with_its_shape_from_the_header() {
    let _g = training_lock();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let (train_px, train_lb) = digits_8x8(400, 1);
    let (valid_px, valid_lb) = digits_8x8(100, 2);
    let mut files = FilesConfig::new(write(
        d,
        "train-images",
        encode_idx(&[400, 8, 8], &train_px),
    ));
    files.train_labels = Some(write(d, "train-labels", encode_idx(&[400], &train_lb)));
    files.valid_images = Some(write(
        d,
        "valid-images",
        encode_idx(&[100, 8, 8], &valid_px),
    ));
    files.valid_labels = Some(write(d, "valid-labels", encode_idx(&[100], &valid_lb)));
    let mut cfg = small_mnist_vae();
    cfg.name = "digits8".into();
    cfg.batch_size = 50;
    cfg.data = DataConfig::Idx(files);
    assert_eq!(cfg.data.shape(), ae::core::ImageShape::new(1, 8, 8));
    assert_eq!(cfg.data.num_classes(), 10);
    let run = train(cfg, &options(&d.join("runs"))).unwrap();
    assert_complete_run(&run.dir, "idx");
    let rows = std::fs::read_to_string(run.dir.join("metrics.csv")).unwrap();
    assert_eq!(rows.lines().count(), 3, "{rows}");

    // Latents out (`encode`): label, μ and log σ² of every validation image, as CSV and .npy.
    let opened = FinishedRun::open(&run.dir, "valid", None, None, Some("flex")).unwrap();
    let latents = ae::train::latents::encode(&opened, 32).unwrap();
    assert_eq!((latents.labels.len(), latents.dim), (100, 20));
    assert_eq!(latents.labels[..3], [0, 1, 2]);
    let csv_path = d.join("latents.csv");
    latents.write(&csv_path).unwrap();
    let csv = std::fs::read_to_string(&csv_path).unwrap();
    let lines: Vec<&str> = csv.lines().collect();
    assert_eq!(lines.len(), 101);
    assert!(lines[0].starts_with("label,mu_0,") && lines[0].ends_with(",logvar_19"));
    assert_eq!(lines[1].split(',').count(), 41);
    let npy_path = d.join("latents.npy");
    latents.write(&npy_path).unwrap();
    // The array reads back through the `npy` data set's reader: 100 rows of 41 float32s.
    let back = ae::data::array::ImageArray::load(&npy_path, None).unwrap();
    assert_eq!(
        (back.len(), back.shape),
        (100, ae::core::ImageShape::new(1, 1, 41))
    );
    let ae::data::array::Pixels::Floats(v) = &back.pixels else {
        panic!("float32 latents")
    };
    assert_eq!(v[41], 1.0, "row 1 starts with its label");
    assert_eq!(v[1..21], latents.mean[..20]);
    let err = latents
        .write(&d.join("latents.txt"))
        .unwrap_err()
        .to_string();
    assert!(err.contains(".npy or .csv"), "{err}");
}

#[test]
fn a_colour_float_npy_array_trains_a_conv_vae_with_a_held_out_split() {
    let _g = training_lock();
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    // 240 RGB 16×16 images in [0, 1]: a colour gradient whose hue depends on the label.
    let (n, side) = (240, 16);
    let mut values = Vec::new();
    let mut labels = Vec::new();
    for i in 0..n {
        let c = i % 3;
        for ch in 0..3 {
            for y in 0..side {
                for x in 0..side {
                    let v = if ch == c { (x + y) as f32 / 30.0 } else { 0.1 };
                    values.extend(v.to_le_bytes());
                }
            }
        }
        labels.extend((c as i64).to_le_bytes());
    }
    let mut files = FilesConfig::new(write(d, "x.npy", npy("<f4", &[n, 3, side, side], &values)));
    files.train_labels = Some(write(d, "y.npy", npy("<i8", &[n], &labels)));
    files.valid_fraction = 0.25;
    let mut cfg = small_mnist_vae();
    cfg.name = "colour".into();
    cfg.batch_size = 30;
    if let ModelConfig::Vae(m) = &mut cfg.model {
        m.architecture = Architecture::Conv {
            channels: vec![16, 32],
            hidden: 64,
        };
    }
    cfg.data = DataConfig::Npy(files);
    assert_eq!(cfg.data.shape(), ae::core::ImageShape::new(3, side, side));
    let (train_set, valid_set) = cfg.data.load().unwrap();
    use burn::data::dataset::Dataset;
    assert_eq!((train_set.len(), valid_set.len()), (180, 60));
    let item = train_set.get(0).unwrap();
    assert_eq!(item.values.as_ref().map(Vec::len), Some(3 * side * side));
    let run = train(cfg, &options(&d.join("runs"))).unwrap();
    assert_complete_run(&run.dir, "npy");
    // Colour images come out in colour: the PNG's colour type byte (IHDR) is 2 (RGB).
    let png = std::fs::read(run.dir.join("reconstructions.png")).unwrap();
    assert_eq!(png[25], 2, "reconstructions.png is RGB");
}

#[test]
fn a_uint8_npy_vector_array_loads_as_one_row_images() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let data: Vec<u8> = (0..20 * 12).map(|i| (i * 7 % 256) as u8).collect();
    let files = FilesConfig::new(write(d, "v.npy", npy("|u1", &[20, 12], &data)));
    let cfg = DataConfig::Npy(files);
    assert_eq!(cfg.shape(), ae::core::ImageShape::new(1, 1, 12));
    let (train_set, valid_set) = cfg.load().unwrap();
    use burn::data::dataset::Dataset;
    assert_eq!((train_set.len(), valid_set.len()), (18, 2));
    assert_eq!(train_set.get(0).unwrap().pixels.len(), 12);
}

/// An `.npz` archive (as numpy.savez / savez_compressed write it) of the named arrays.
fn npz(path: &Path, arrays: &[(&str, Vec<u8>)], compressed: bool) -> PathBuf {
    use std::io::Write;
    let mut zip = zip::ZipWriter::new(std::fs::File::create(path).unwrap());
    let method = if compressed {
        zip::CompressionMethod::Deflated
    } else {
        zip::CompressionMethod::Stored
    };
    let opts = zip::write::SimpleFileOptions::default().compression_method(method);
    for (name, bytes) in arrays {
        zip.start_file(format!("{name}.npy"), opts).unwrap();
        zip.write_all(bytes).unwrap();
    }
    zip.finish().unwrap();
    path.to_path_buf()
}

#[test]
fn npz_archives_give_their_arrays_by_name() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let pixels: Vec<u8> = (0..30 * 4 * 4).map(|i| (i * 13 % 256) as u8).collect();
    let labels: Vec<u8> = (0..30i64).flat_map(|i| (i % 3).to_le_bytes()).collect();
    use burn::data::dataset::Dataset;
    for compressed in [false, true] {
        let archive = npz(
            &d.join(format!("digits-{compressed}.npz")),
            &[
                ("x_train", npy("|u1", &[30, 4, 4], &pixels)),
                ("y_train", npy("<i8", &[30], &labels)),
            ],
            compressed,
        );
        let at = |name: &str| PathBuf::from(format!("{}:{name}", archive.display()));
        let mut files = FilesConfig::new(at("x_train"));
        files.train_labels = Some(at("y_train"));
        files.valid_fraction = 0.2;
        let cfg = DataConfig::Npy(files.clone());
        assert_eq!(cfg.shape(), ae::core::ImageShape::new(1, 4, 4));
        assert_eq!(cfg.num_classes(), 3);
        let (train_set, valid_set) = cfg.load().unwrap();
        assert_eq!((train_set.len(), valid_set.len()), (24, 6));
        // The same items as the plain .npy files.
        let mut plain = files;
        plain.train_images = write(d, "x.npy", npy("|u1", &[30, 4, 4], &pixels));
        plain.train_labels = Some(write(d, "y.npy", npy("<i8", &[30], &labels)));
        let (plain_train, _) = DataConfig::Npy(plain).load().unwrap();
        for i in 0..24 {
            assert_eq!(train_set.get(i).unwrap(), plain_train.get(i).unwrap());
        }
        // Two arrays and no name, or a name it lacks: the error lists what it holds.
        let err = |p: PathBuf| {
            DataConfig::Npy(FilesConfig::new(p))
                .load()
                .unwrap_err()
                .to_string()
        };
        let e = err(archive.clone());
        assert!(e.contains("x_train") && e.contains(":NAME"), "{e}");
        let e = err(at("x_test"));
        assert!(
            e.contains("no array \"x_test\"") && e.contains("y_train"),
            "{e}"
        );
    }
    // One array needs no name; a file that is not a zip archive is named.
    let single = npz(
        &d.join("one.npz"),
        &[("arr_0", npy("|u1", &[30, 4, 4], &pixels))],
        true,
    );
    let (t, v) = DataConfig::Npy(FilesConfig::new(&single)).load().unwrap();
    assert_eq!(t.len() + v.len(), 30);
    // Data that passes validation (the header) but not loading leaves no empty run folder.
    let mut cfg = small_mnist_vae();
    let mut files = FilesConfig::new(&single);
    let bad = npy("<f8", &[30, 4, 4], &[0; 30 * 16 * 8]);
    files.train_images = write(d, "f8.npy", bad);
    cfg.data = DataConfig::Npy(files);
    let out = d.join("runs");
    assert!(train(cfg, &options(&out)).is_err());
    let left: Vec<_> = std::fs::read_dir(out.join("vae_mnist")).unwrap().collect();
    assert!(left.is_empty(), "{left:?}");
    let fake = write(d, "fake.npz", b"not a zip".to_vec());
    let e = DataConfig::Npy(FilesConfig::new(&fake))
        .load()
        .unwrap_err()
        .to_string();
    assert!(e.contains("fake.npz") && e.contains("numpy.savez"), "{e}");
}

#[test]
fn bad_own_data_is_reported_with_the_file_and_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let err = |files: FilesConfig| DataConfig::Npy(files).load().unwrap_err().to_string();
    // Missing file.
    let e = err(FilesConfig::new(d.join("nowhere.npy")));
    assert!(
        e.contains("nowhere.npy") && e.contains("Your own data"),
        "{e}"
    );
    // Wrong rank.
    let p = write(d, "rank5.npy", npy("|u1", &[1, 1, 1, 1, 2], &[0, 1]));
    let e = err(FilesConfig::new(&p));
    assert!(e.contains("rank5.npy") && e.contains("5 dimensions"), "{e}");
    // Unsupported dtype.
    let p = write(d, "f8.npy", npy("<f8", &[2, 1], &[0; 16]));
    let e = err(FilesConfig::new(&p));
    assert!(
        e.contains("f8.npy") && e.contains("<f8") && e.contains("float32"),
        "{e}"
    );
    // Labels count ≠ images count.
    let images = write(d, "imgs.npy", npy("|u1", &[3, 2, 2], &[0; 12]));
    let mut files = FilesConfig::new(&images);
    files.train_labels = Some(write(d, "lbls.npy", npy("|u1", &[2], &[0, 1])));
    let e = err(files);
    assert!(
        e.contains("lbls.npy") && e.contains("2 labels for 3 images"),
        "{e}"
    );
    // Truncated data.
    let mut bytes = npy("|u1", &[3, 2, 2], &[0; 12]);
    bytes.truncate(bytes.len() - 5);
    let e = err(FilesConfig::new(write(d, "short.npy", bytes)));
    assert!(e.contains("short.npy"), "{e}");
    // A damaged header declaring far more data than the file holds: refused before any
    // allocation, naming both sizes.
    let e = err(FilesConfig::new(write(
        d,
        "huge.npy",
        npy("<f4", &[1 << 40, 1, 1, 1], &[0; 16]),
    )));
    assert!(
        e.contains("huge.npy") && e.contains("holds 16 bytes"),
        "{e}"
    );
    // Validation images of another shape.
    let other = write(d, "other.npy", npy("|u1", &[3, 3, 3], &[0; 27]));
    let mut files = FilesConfig::new(&images);
    files.valid_images = Some(other);
    let e = err(files);
    assert!(e.contains("other.npy") && e.contains("same shape"), "{e}");
    // Neither IDX nor .npy.
    let e = err(FilesConfig::new(write(d, "notes.txt", b"hello".to_vec())));
    assert!(
        e.contains("notes.txt") && e.contains("neither an IDX file"),
        "{e}"
    );
    // IDX of floats (type 0x0D) is refused, naming the type.
    let mut idx = encode_idx(&[1, 2, 2], &[0; 4]);
    idx[2] = 0x0d;
    let e = DataConfig::Idx(FilesConfig::new(write(d, "floats.idx", idx)))
        .load()
        .unwrap_err()
        .to_string();
    assert!(e.contains("floats.idx") && e.contains("0x0d"), "{e}");
}

/// Writes an RGB PNG of `h` × `w` pixels, each `rgb(y, x)`.
fn png(path: &Path, (h, w): (u32, u32), rgb: impl Fn(u32, u32) -> [u8; 3]) {
    image::RgbImage::from_fn(w, h, |x, y| image::Rgb(rgb(y, x)))
        .save(path)
        .unwrap();
}

#[test]
fn an_rgb_png_folder_with_class_subfolders_trains_resized_to_one_size() {
    let _g = training_lock();
    let tmp = tempfile::tempdir().unwrap();
    let root = tmp.path().join("shapes");
    for (c, name) in ["blue", "green", "red"].iter().enumerate() {
        std::fs::create_dir_all(root.join(name)).unwrap();
        for i in 0..20u32 {
            // 20 × 24 images (resized and centre-cropped to 16 × 16), one colour per class.
            png(
                &root.join(name).join(format!("{i:02}.png")),
                (20, 24),
                |y, x| {
                    let mut px = [20u8; 3];
                    px[2 - c] = ((x + y + i) * 5).min(255) as u8;
                    px
                },
            );
        }
    }
    let mut folder = FolderConfig::new(&root);
    folder.size = Some([16, 16]);
    folder.valid_fraction = 0.25;
    let data = DataConfig::ImageFolder(folder);
    assert_eq!(data.shape(), ae::core::ImageShape::new(3, 16, 16));
    assert_eq!(data.num_classes(), 3);
    let (train_set, valid_set) = data.load().unwrap();
    use burn::data::dataset::Dataset;
    assert_eq!((train_set.len(), valid_set.len()), (45, 15));
    // Labels follow the sorted class folders: blue 0, green 1, red 2; red images are red.
    let labels: Vec<u32> = (0..45).map(|i| train_set.get(i).unwrap().label).collect();
    assert!(labels.iter().all(|&l| l < 3) && labels.contains(&2));
    let red = (0..45)
        .map(|i| train_set.get(i).unwrap())
        .find(|x| x.label == 2)
        .unwrap();
    let plane = 16 * 16;
    let mean = |c: usize| {
        red.pixels[c * plane..(c + 1) * plane]
            .iter()
            .map(|&v| v as f64)
            .sum::<f64>()
            / plane as f64
    };
    assert!(
        mean(0) > 2.0 * mean(2),
        "red plane {} vs blue plane {}",
        mean(0),
        mean(2)
    );

    let mut cfg = small_mnist_vae();
    cfg.name = "shapes".into();
    cfg.batch_size = 15;
    if let ModelConfig::Vae(m) = &mut cfg.model {
        m.architecture = Architecture::Conv {
            channels: vec![16, 32],
            hidden: 64,
        };
    }
    cfg.data = data.clone();
    let run = train(cfg.clone(), &options(&tmp.path().join("runs"))).unwrap();
    assert_complete_run(&run.dir, "image_folder");
    let png_bytes = std::fs::read(run.dir.join("samples.png")).unwrap();
    assert_eq!(png_bytes[25], 2, "samples.png is RGB");

    // Streamed from disk (decoded by the loader's worker), the same items and the same run.
    let DataConfig::ImageFolder(mut streamed) = data else {
        unreachable!()
    };
    streamed.stream = true;
    let streamed = DataConfig::ImageFolder(streamed);
    let (stream_train, stream_valid) = streamed.load().unwrap();
    for (a, b) in [(&train_set, &stream_train), (&valid_set, &stream_valid)] {
        assert_eq!(a.len(), b.len());
        for i in 0..a.len() {
            assert_eq!(a.get(i).unwrap(), b.get(i).unwrap(), "item {i}");
        }
    }
    cfg.data = streamed;
    let again = train(cfg, &options(&tmp.path().join("runs"))).unwrap();
    let csv = |dir: &Path| std::fs::read_to_string(dir.join("metrics.csv")).unwrap();
    assert_eq!(csv(&again.dir), csv(&run.dir));
    let config = std::fs::read_to_string(again.dir.join("config.toml")).unwrap();
    assert!(config.contains("stream = true"), "{config}");
}

#[test]
fn bad_image_folders_are_reported_with_the_file_and_the_fix() {
    let tmp = tempfile::tempdir().unwrap();
    let d = tmp.path();
    let err = |folder: FolderConfig| {
        DataConfig::ImageFolder(folder)
            .load()
            .unwrap_err()
            .to_string()
    };
    // Missing and empty folders.
    let e = err(FolderConfig::new(d.join("nowhere")));
    assert!(e.contains("nowhere") && e.contains("PNG or JPEG"), "{e}");
    std::fs::create_dir_all(d.join("empty")).unwrap();
    let e = err(FolderConfig::new(d.join("empty")));
    assert!(e.contains("empty") && e.contains("no .png"), "{e}");
    // Mixed sizes without `size`: the odd file is named, with the fix.
    let mixed = d.join("mixed");
    std::fs::create_dir_all(&mixed).unwrap();
    png(&mixed.join("a.png"), (8, 8), |_, _| [0, 0, 0]);
    png(&mixed.join("b.png"), (9, 8), |_, _| [0, 0, 0]);
    let e = err(FolderConfig::new(&mixed));
    assert!(
        e.contains("b.png") && e.contains("size = [height, width]"),
        "{e}"
    );
    // An unreadable image.
    let bad = d.join("bad");
    std::fs::create_dir_all(&bad).unwrap();
    png(&bad.join("a.png"), (8, 8), |_, _| [0, 0, 0]);
    std::fs::write(bad.join("b.png"), b"not a png").unwrap();
    let mut folder = FolderConfig::new(&bad);
    folder.size = Some([8, 8]);
    let e = err(folder.clone());
    assert!(e.contains("b.png") && e.contains("unreadable"), "{e}");
    // Streamed folders check every header up front: the same errors before training starts.
    folder.stream = true;
    let e = err(folder);
    assert!(e.contains("b.png") && e.contains("unreadable"), "{e}");
    let mut folder = FolderConfig::new(&mixed);
    folder.stream = true;
    let e = err(folder);
    assert!(
        e.contains("b.png") && e.contains("size = [height, width]"),
        "{e}"
    );
    // A validation class the training folder does not have; channels other than 1 or 3.
    for (split, class) in [("train", "cat"), ("valid", "dog")] {
        std::fs::create_dir_all(d.join(split).join(class)).unwrap();
        png(&d.join(split).join(class).join("a.png"), (8, 8), |_, _| {
            [9, 9, 9]
        });
        png(&d.join(split).join(class).join("b.png"), (8, 8), |_, _| {
            [9, 9, 9]
        });
    }
    let mut folder = FolderConfig::new(d.join("train"));
    folder.valid_dir = Some(d.join("valid"));
    let e = err(folder.clone());
    assert!(e.contains("dog") && e.contains("training classes"), "{e}");
    folder.channels = 4;
    let e = err(folder);
    assert!(e.contains("data.channels"), "{e}");
}
