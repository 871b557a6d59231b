//! Folders of PNG/JPEG images: every image file directly in a directory (label 0), or in its
//! class sub-folders (sorted names → labels 0, 1, …), decoded in parallel into memory as grey
//! or RGB bytes, each resized and centre-cropped to one size when a size is given (the
//! CelebA-64 recipe: shorter side to the size, then the centre).
use crate::DataError;
use crate::array::{ImageArray, Pixels};
use ae_core::ImageShape;
use image::imageops::FilterType;
use rayon::prelude::*;
use std::path::{Path, PathBuf};

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

/// Decodes every image of `dir` (see [`list`]) into memory: grey (`channels` 1) or RGB (3),
/// resized and centre-cropped to `size`, or all of the first image's size. Returns the
/// images and the class names.
pub fn load(
    dir: &Path,
    classes: Option<&[String]>,
    size: Option<[usize; 2]>,
    channels: usize,
) -> Result<(ImageArray, Vec<String>), DataError> {
    let Listing {
        files,
        labels,
        classes,
    } = list(dir, classes)?;
    let shape = shape(dir, size, channels)?;
    let images: Vec<Vec<u8>> = files
        .par_iter()
        .map(|f| decode(f, shape, size.is_some()))
        .collect::<Result<_, _>>()?;
    let array = ImageArray {
        shape,
        pixels: Pixels::Bytes(images.concat()),
        labels,
    };
    Ok((array, classes))
}

/// One image as `shape.channels` planes of bytes.
fn decode(path: &Path, shape: ImageShape, resize: bool) -> Result<Vec<u8>, DataError> {
    let img = image::open(path).map_err(|e| invalid(path, format!("unreadable image ({e})")))?;
    let (h, w) = (shape.height as u32, shape.width as u32);
    let img = if resize && (img.height(), img.width()) != (h, w) {
        img.resize_to_fill(w, h, FilterType::Triangle)
    } else if (img.height(), img.width()) != (h, w) {
        return Err(invalid(
            path,
            format!(
                "is {}×{} where the first image is {}×{}; give size = [height, width] in [data] \
                 to resize and centre-crop every image",
                img.height(),
                img.width(),
                h,
                w
            ),
        ));
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
