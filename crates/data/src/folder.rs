//! Folders of PNG/JPEG images: every image file directly in a directory (label 0), or in its
//! class sub-folders (sorted names → labels 0, 1, …), as grey or RGB bytes, each resized and
//! centre-cropped to one size when a size is given (the CelebA-64 recipe: shorter side to the
//! size, then the centre). Either decoded in parallel into memory up front, or — for folders
//! larger than memory — streamed: only the headers are checked up front, and each image is
//! decoded when the data loader's workers read it ([`FileImages`]).
use crate::DataError;
use crate::array::{ImageArray, Pixels};
use ae_core::ImageShape;
use image::imageops::FilterType;
use rayon::prelude::*;
use std::path::{Path, PathBuf};
use std::sync::Arc;

/// How to prepare an image folder, printed with every error about one.
pub const FOLDER_HINT: &str = "An image folder holds PNG or JPEG files (.png, .jpg, .jpeg), \
either directly or in one sub-folder per class. Give `size = [height, width]` in [data] when \
the images differ in size (each is resized and centre-cropped), and `channels = 1` (grey) or \
3 (RGB). See README, \"Your own data\".";

/// The image files of a folder, with their labels.
#[derive(Debug, Clone, PartialEq)]
pub struct Listing {
    /// Image files, sorted (by class folder, then name).
    pub files: Vec<PathBuf>,
    /// One label per file.
    pub labels: Vec<u32>,
    /// The class names (sub-folder names) in label order; empty without class folders.
    pub classes: Vec<String>,
}

/// The image files of `dir` and their labels: files in class sub-folders (label = the
/// sub-folder's rank among `classes`, or among the sorted sub-folder names when `classes` is
/// `None`), else the files directly in `dir` (label 0).
pub fn list(dir: &Path, classes: Option<&[String]>) -> Result<Listing, DataError> {
    let entries = read_dir_sorted(dir)?;
    let subdirs: Vec<&PathBuf> = entries.iter().filter(|p| p.is_dir()).collect();
    if subdirs.is_empty() {
        let files: Vec<PathBuf> = entries.into_iter().filter(|p| is_image(p)).collect();
        if files.is_empty() {
            return Err(invalid(dir, "holds no .png, .jpg or .jpeg files".into()));
        }
        let n = files.len();
        return Ok(Listing {
            files,
            labels: vec![0; n],
            classes: Vec::new(),
        });
    }
    let names: Vec<String> = subdirs
        .iter()
        .map(|p| {
            p.file_name()
                .unwrap_or_default()
                .to_string_lossy()
                .into_owned()
        })
        .collect();
    let classes: Vec<String> = classes.map_or_else(|| names.clone(), <[String]>::to_vec);
    let (mut files, mut labels) = (Vec::new(), Vec::new());
    for (sub, name) in subdirs.iter().zip(&names) {
        let Some(label) = classes.iter().position(|c| c == name) else {
            return Err(invalid(
                sub,
                format!("class folder {name:?} is not among the training classes {classes:?}"),
            ));
        };
        for f in read_dir_sorted(sub)?.into_iter().filter(|p| is_image(p)) {
            files.push(f);
            labels.push(label as u32);
        }
    }
    if files.is_empty() {
        return Err(invalid(
            dir,
            "its class folders hold no .png, .jpg or .jpeg files".into(),
        ));
    }
    Ok(Listing {
        files,
        labels,
        classes,
    })
}

/// The shape of one image of the folder: `size` and `channels`, or the first image's size.
pub fn shape(
    dir: &Path,
    size: Option<[usize; 2]>,
    channels: usize,
) -> Result<ImageShape, DataError> {
    if let Some([h, w]) = size {
        return Ok(ImageShape::new(channels, h, w));
    }
    let files = list(dir, None)?.files;
    let (w, h) = image::image_dimensions(&files[0])
        .map_err(|e| invalid(&files[0], format!("unreadable image ({e})")))?;
    Ok(ImageShape::new(channels, h as usize, w as usize))
}

/// The images of `dir` (see [`list`]): grey (`channels` 1) or RGB (3), resized and
/// centre-cropped to `size`, or all of the first image's size. Decoded into memory in
/// parallel, or with `stream` left on disk ([`Pixels::Files`]) after a parallel check of
/// every file's header (readable image, and of the first image's size when there is no
/// `size`), so that a bad file is an error now rather than mid-training. Returns the images
/// and the class names.
pub fn load(
    dir: &Path,
    classes: Option<&[String]>,
    size: Option<[usize; 2]>,
    channels: usize,
    stream: bool,
) -> Result<(ImageArray, Vec<String>), DataError> {
    let Listing {
        files,
        labels,
        classes,
    } = list(dir, classes)?;
    let shape = shape(dir, size, channels)?;
    let resize = size.is_some();
    let pixels = if stream {
        files.par_iter().try_for_each(|f| {
            let (w, h) = image::image_dimensions(f)
                .map_err(|e| invalid(f, format!("unreadable image ({e})")))?;
            check_size(f, (h, w), shape, resize)
        })?;
        Pixels::Files(Arc::new(FileImages {
            files,
            shape,
            resize,
        }))
    } else {
        let images: Vec<Vec<u8>> = files
            .par_iter()
            .map(|f| decode(f, shape, resize))
            .collect::<Result<_, _>>()?;
        Pixels::Bytes(images.concat())
    };
    let array = ImageArray {
        shape,
        pixels,
        labels,
    };
    Ok((array, classes))
}

/// Image files decoded one at a time, when an item is read: a streamed image folder. The
/// burn data loader's `num_workers` threads call [`FileImages::decode`] for the items of
/// their batches, so decoding overlaps training.
#[derive(Debug, Clone, PartialEq)]
pub struct FileImages {
    /// One file per image.
    pub files: Vec<PathBuf>,
    /// The shape every image is decoded to.
    pub shape: ImageShape,
    /// Whether images are resized and centre-cropped to `shape`.
    pub resize: bool,
}

impl FileImages {
    /// Image `i` as `shape.channels` planes of bytes. A file that was readable when the data
    /// set was opened but cannot be decoded now (changed or damaged since) is named in a
    /// warning and replaced by a black image, rather than stopping a long run.
    pub fn decode(&self, i: usize) -> Vec<u8> {
        decode(&self.files[i], self.shape, self.resize).unwrap_or_else(|e| {
            eprintln!("warning: {e}; a black image stands in for it");
            vec![0; self.shape.numel()]
        })
    }
}

/// An error when an image of `(h, w)` cannot take `shape` (it differs and is not resized).
fn check_size(
    path: &Path,
    (h, w): (u32, u32),
    shape: ImageShape,
    resize: bool,
) -> Result<(), DataError> {
    let want = (shape.height as u32, shape.width as u32);
    if resize || (h, w) == want {
        return Ok(());
    }
    Err(invalid(
        path,
        format!(
            "is {h}×{w} where the first image is {}×{}; give size = [height, width] in [data] \
             to resize and centre-crop every image",
            want.0, want.1
        ),
    ))
}

/// One image as `shape.channels` planes of bytes.
fn decode(path: &Path, shape: ImageShape, resize: bool) -> Result<Vec<u8>, DataError> {
    let img = image::open(path).map_err(|e| invalid(path, format!("unreadable image ({e})")))?;
    let (h, w) = (shape.height as u32, shape.width as u32);
    check_size(path, (img.height(), img.width()), shape, resize)?;
    let img = if (img.height(), img.width()) != (h, w) {
        img.resize_to_fill(w, h, FilterType::Triangle)
    } else {
        img
    };
    let hw = (h * w) as usize;
    Ok(match shape.channels {
        1 => img.to_luma8().into_raw(),
        _ => {
            // Interleaved RGB → three planes.
            let rgb = img.to_rgb8().into_raw();
            let mut planes = vec![0u8; 3 * hw];
            for (p, px) in rgb.chunks_exact(3).enumerate() {
                for c in 0..3 {
                    planes[c * hw + p] = px[c];
                }
            }
            planes
        }
    })
}

fn is_image(p: &Path) -> bool {
    p.is_file()
        && p.extension()
            .and_then(|e| e.to_str())
            .is_some_and(|e| ["png", "jpg", "jpeg"].contains(&e.to_ascii_lowercase().as_str()))
}

fn read_dir_sorted(dir: &Path) -> Result<Vec<PathBuf>, DataError> {
    let entries = std::fs::read_dir(dir).map_err(|e| match e.kind() {
        std::io::ErrorKind::NotFound => DataError::Missing {
            what: "image folder".into(),
            path: dir.into(),
            hint: FOLDER_HINT.into(),
        },
        _ => DataError::Io {
            path: dir.into(),
            source: e,
        },
    })?;
    let mut paths: Vec<PathBuf> = entries
        .filter_map(Result::ok)
        .map(|e| e.path())
        .filter(|p| {
            !p.file_name()
                .and_then(|n| n.to_str())
                .is_some_and(|n| n.starts_with('.'))
        })
        .collect();
    paths.sort();
    Ok(paths)
}

fn invalid(path: &Path, reason: String) -> DataError {
    DataError::Invalid {
        path: path.into(),
        reason,
        hint: FOLDER_HINT.into(),
    }
}
