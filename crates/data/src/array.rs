//! The user's own image arrays: any IDX image file (the MNIST format; shape from its header)
//! and NumPy `.npy` arrays (`uint8` pixels 0–255 or `float32` values), each with an optional
//! label file, held in memory.
//!
//! Accepted shapes: `[n, h, w]` (one channel), `[n, c, h, w]` (channels first, e.g. RGB with
//! c = 3) and, for `.npy`, `[n, d]` (vectors, read as 1 × 1 × d images). Labels: a 1-D IDX
//! file or a 1-D integer `.npy` array with one non-negative label per image.
use crate::idx::{IdxArray, parse_idx};
use crate::{DataError, ImageItem};
use ae_core::ImageShape;
use std::io::Read;
use std::path::{Path, PathBuf};

/// How to prepare one's own data, printed with every error about it.
pub const ARRAY_HINT: &str = "Your own data: IDX image files of unsigned bytes with 3 \
dimensions [n, h, w] or 4 [n, c, h, w] (labels: 1 dimension [n]); or .npy arrays saved by \
numpy.save, C order, dtype uint8 (pixels 0–255) or float32 (values used as they are; in [0, 1] \
for a Bernoulli likelihood), shape [n, h, w], [n, c, h, w] or [n, d] (labels: an integer \
array [n]); or an array of an .npz archive (numpy.savez), named as archive.npz:name (just \
archive.npz when it holds one array). See README, \"Your own data\".";

/// An array's pixels: bytes (scaled to [0, 1] by the batcher) or floats (used as they are).
#[derive(Debug, Clone, PartialEq)]
pub enum Pixels {
    /// `uint8` pixels, 0–255.
    Bytes(Vec<u8>),
    /// `float32` values.
    Floats(Vec<f32>),
    /// Image files decoded when an item is read (an image folder with `stream = true`).
    Files(std::sync::Arc<crate::folder::FileImages>),
}

/// Images of one shape held in memory, with one label per image (0 when the set has no
/// label file).
#[derive(Debug, Clone, PartialEq)]
pub struct ImageArray {
    /// Shape of one image.
    pub shape: ImageShape,
    /// All images, row-major (`n · shape.numel()` values).
    pub pixels: Pixels,
    /// One label per image.
    pub labels: Vec<u32>,
}

impl ImageArray {
    /// Number of images.
    pub fn len(&self) -> usize {
        self.labels.len()
    }

    /// Whether there are no images.
    pub fn is_empty(&self) -> bool {
        self.labels.is_empty()
    }

    /// Number of label classes: the largest label plus one.
    pub fn num_classes(&self) -> usize {
        self.labels.iter().max().map_or(1, |&m| m as usize + 1)
    }

    /// Image `i` with its label.
    pub fn item(&self, i: usize) -> ImageItem {
        let n = self.shape.numel();
        let label = self.labels[i];
        match &self.pixels {
            Pixels::Bytes(b) => ImageItem::bytes(b[i * n..(i + 1) * n].to_vec(), label),
            Pixels::Floats(f) => ImageItem::floats(f[i * n..(i + 1) * n].to_vec(), label),
            Pixels::Files(files) => ImageItem::bytes(files.decode(i), label),
        }
    }

    /// Loads images and optional labels (IDX or `.npy`, told apart by their first bytes).
    pub fn load(images: &Path, labels: Option<&Path>) -> Result<Self, DataError> {
        let (shape, pixels, n) = read_images(images)?;
        let labels = match labels {
            Some(path) => {
                let labels = read_labels(path)?;
                if labels.len() != n {
                    return Err(invalid(
                        path,
                        format!(
                            "{} labels for {n} images in {}",
                            labels.len(),
                            images.display()
                        ),
                    ));
                }
                labels
            }
            None => vec![0; n],
        };
        Ok(Self {
            shape,
            pixels,
            labels,
        })
    }
}

/// The shape of one image of an image file (IDX or `.npy`), read from its header alone.
pub fn image_shape(path: &Path) -> Result<ImageShape, DataError> {
    let mut head = vec![0u8; 4096];
    let read = read_prefix(path, &mut head)?;
    head.truncate(read);
    if head.starts_with(NPY_MAGIC) {
        let header = npyz::NpyHeader::from_reader(&mut head.as_slice())
            .map_err(|e| invalid(path, format!("unreadable .npy header ({e})")))?;
        let shape: Vec<usize> = header.shape().iter().map(|&d| d as usize).collect();
        return shape_of(path, &shape).map(|(s, _)| s);
    }
    let dims = idx_dims(path, &head)?;
    shape_of(path, &dims).map(|(s, _)| s)
}

/// The largest label plus one, from a label file (IDX or `.npy`).
pub fn label_classes(path: &Path) -> Result<usize, DataError> {
    Ok(read_labels(path)?
        .iter()
        .max()
        .map_or(1, |&m| m as usize + 1))
}

const NPY_MAGIC: &[u8] = b"\x93NUMPY";

fn invalid(path: &Path, reason: String) -> DataError {
    DataError::Invalid {
        path: path.into(),
        reason,
        hint: ARRAY_HINT.into(),
    }
}

fn io_error(path: &Path, source: std::io::Error) -> DataError {
    match source.kind() {
        std::io::ErrorKind::NotFound => DataError::Missing {
            what: "data file".into(),
            path: path.into(),
            hint: ARRAY_HINT.into(),
        },
        _ => DataError::Io {
            path: path.into(),
            source,
        },
    }
}

/// `archive.npz:name` → the archive and `Some(name)`; `archive.npz` → the archive and `None`;
/// any other path → `None`. The name is split at the last `:` (so drive letters stay).
fn npz_member(path: &Path) -> Option<(PathBuf, Option<String>)> {
    let s = path.to_str()?;
    if let Some((file, name)) = s.rsplit_once(':')
        && file.ends_with(".npz")
        && !name.contains(['/', '\\'])
    {
        return Some((file.into(), Some(name.into())));
    }
    s.ends_with(".npz").then(|| (path.into(), None))
}

/// Up to `limit` bytes (all with `None`) of the `.npy` array `name` in the `.npz` archive
/// `file` (`path` is how the user wrote it, for errors); without a name, of its only array.
fn read_npz(
    path: &Path,
    (file, name): (PathBuf, Option<String>),
    limit: Option<usize>,
) -> Result<Vec<u8>, DataError> {
    let f = std::fs::File::open(&file).map_err(|e| io_error(&file, e))?;
    let mut zip = zip::ZipArchive::new(std::io::BufReader::new(f)).map_err(|e| {
        invalid(
            &file,
            format!("not a readable .npz (zip) archive ({e}); write it with numpy.savez"),
        )
    })?;
    let names: Vec<String> = zip
        .file_names()
        .filter_map(Result::ok)
        .map(|n| n.trim_end_matches(".npy").to_string())
        .collect();
    let chosen = match (&name, names.as_slice()) {
        (Some(n), _) if names.contains(n) => n.clone(),
        (None, [only]) => only.clone(),
        (Some(n), _) => {
            return Err(invalid(
                path,
                format!("the archive has no array {n:?}; it holds {names:?}"),
            ));
        }
        (None, _) => {
            return Err(invalid(
                path,
                format!(
                    "the archive holds {} arrays {names:?}; name one as {}:NAME",
                    names.len(),
                    file.display()
                ),
            ));
        }
    };
    let mut member = zip
        .by_name(&format!("{chosen}.npy"))
        .map_err(|e| invalid(path, format!("cannot read array {chosen:?} ({e})")))?;
    let mut out = Vec::new();
    let read = match limit {
        Some(n) => (&mut member).take(n as u64).read_to_end(&mut out),
        None => member.read_to_end(&mut out),
    };
    read.map_err(|e| {
        invalid(
            path,
            format!("array {chosen:?} is truncated or corrupt ({e})"),
        )
    })?;
    Ok(out)
}

/// The file's bytes, gunzipped when they start with the gzip magic bytes (or an `.npz`
/// archive's array, see [`npz_member`]).
fn read_all(path: &Path) -> Result<Vec<u8>, DataError> {
    if let Some(member) = npz_member(path) {
        return read_npz(path, member, None);
    }
    let raw = std::fs::read(path).map_err(|e| io_error(path, e))?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return Ok(raw);
    }
    let mut out = Vec::new();
    flate2::read::GzDecoder::new(raw.as_slice())
        .read_to_end(&mut out)
        .map_err(|e| invalid(path, format!("gzip stream is truncated or corrupt ({e})")))?;
    Ok(out)
}

/// Up to `buf.len()` first bytes of the (gunzipped) file; the number read.
fn read_prefix(path: &Path, buf: &mut [u8]) -> Result<usize, DataError> {
    if let Some(member) = npz_member(path) {
        let head = read_npz(path, member, Some(buf.len()))?;
        buf[..head.len()].copy_from_slice(&head);
        return Ok(head.len());
    }
    let file = std::fs::File::open(path).map_err(|e| io_error(path, e))?;
    let mut reader: Box<dyn Read> = Box::new(std::io::BufReader::new(file));
    let mut magic = [0u8; 2];
    let got = read_up_to(&mut reader, &mut magic).map_err(|e| io_error(path, e))?;
    let mut chained: Box<dyn Read> =
        Box::new(std::io::Cursor::new(magic[..got].to_vec()).chain(reader));
    if magic[..got] == [0x1f, 0x8b] {
        chained = Box::new(flate2::read::GzDecoder::new(chained));
    }
    read_up_to(&mut chained, buf).map_err(|e| invalid(path, format!("unreadable ({e})")))
}

fn read_up_to(r: &mut dyn Read, buf: &mut [u8]) -> std::io::Result<usize> {
    let mut n = 0;
    while n < buf.len() {
        match r.read(&mut buf[n..])? {
            0 => break,
            k => n += k,
        }
    }
    Ok(n)
}

/// Dimensions from the first bytes of an IDX file.
fn idx_dims(path: &Path, head: &[u8]) -> Result<Vec<usize>, DataError> {
    if head.len() < 4 || head[0] != 0 || head[1] != 0 {
        return Err(invalid(
            path,
            "neither an IDX file (magic 00 00 08 0N) nor a .npy array".into(),
        ));
    }
    let ndims = head[3] as usize;
    let end = 4 + 4 * ndims;
    if head[2] != 0x08 {
        return Err(invalid(
            path,
            format!(
                "IDX element type 0x{:02x} is not unsigned byte (0x08)",
                head[2]
            ),
        ));
    }
    if head.len() < end {
        return Err(invalid(path, "IDX header is truncated".into()));
    }
    Ok((0..ndims)
        .map(|i| {
            u32::from_be_bytes(head[4 + 4 * i..8 + 4 * i].try_into().expect("4 bytes")) as usize
        })
        .collect())
}

/// One image's shape and the number of images from an array's dimensions.
fn shape_of(path: &Path, dims: &[usize]) -> Result<(ImageShape, usize), DataError> {
    let (n, shape) = match *dims {
        [n, d] => (n, ImageShape::new(1, 1, d)),
        [n, h, w] => (n, ImageShape::new(1, h, w)),
        [n, c, h, w] => (n, ImageShape::new(c, h, w)),
        _ => {
            return Err(invalid(
                path,
                format!(
                    "images have {} dimensions {dims:?}; expected [n, h, w], [n, c, h, w] or [n, d]",
                    dims.len()
                ),
            ));
        }
    };
    if n == 0 || shape.numel() == 0 {
        return Err(invalid(path, format!("the array {dims:?} holds no images")));
    }
    Ok((shape, n))
}

/// Images of an IDX or `.npy` file: shape, pixels, count.
fn read_images(path: &Path) -> Result<(ImageShape, Pixels, usize), DataError> {
    let bytes = read_all(path)?;
    if bytes.starts_with(NPY_MAGIC) {
        let npy = open_npy(path, &bytes)?;
        let dims: Vec<usize> = npy.shape().iter().map(|&d| d as usize).collect();
        let (shape, n) = shape_of(path, &dims)?;
        let descr = npy.dtype().descr().trim_matches('\'').to_string();
        let pixels = match descr.as_str() {
            "|u1" | "<u1" => Pixels::Bytes(
                npy.into_vec::<u8>()
                    .map_err(|e| invalid(path, format!("unreadable data ({e})")))?,
            ),
            "<f4" => {
                let v = npy
                    .into_vec::<f32>()
                    .map_err(|e| invalid(path, format!("unreadable data ({e})")))?;
                if let Some(i) = v.iter().position(|x| !x.is_finite()) {
                    return Err(invalid(path, format!("value {i} is {}", v[i])));
                }
                Pixels::Floats(v)
            }
            other => {
                return Err(invalid(
                    path,
                    format!(
                        "dtype {other} is not supported; save uint8 pixels or float32 values \
                         (e.g. numpy.save(path, x.astype(numpy.float32)))"
                    ),
                ));
            }
        };
        return Ok((shape, pixels, n));
    }
    let IdxArray { dims, data } = parse_any_idx(path, &bytes)?;
    let (shape, n) = shape_of(path, &dims)?;
    if dims.len() == 2 {
        return Err(invalid(
            path,
            format!("IDX images need 3 or 4 dimensions, this file has {dims:?}"),
        ));
    }
    Ok((shape, Pixels::Bytes(data), n))
}

/// Labels of an IDX or `.npy` file: one non-negative integer per image.
fn read_labels(path: &Path) -> Result<Vec<u32>, DataError> {
    let bytes = read_all(path)?;
    if bytes.starts_with(NPY_MAGIC) {
        let npy = open_npy(path, &bytes)?;
        if npy.shape().len() != 1 {
            return Err(invalid(
                path,
                format!(
                    "labels have shape {:?}; expected one dimension [n]",
                    npy.shape()
                ),
            ));
        }
        let descr = npy.dtype().descr().trim_matches('\'').to_string();
        let labels: Vec<i64> = match descr.as_str() {
            "|u1" | "<u1" => npy
                .into_vec::<u8>()
                .map(|v| v.into_iter().map(i64::from).collect()),
            "<i4" => npy
                .into_vec::<i32>()
                .map(|v| v.into_iter().map(i64::from).collect()),
            "<i8" => npy.into_vec::<i64>(),
            "<u4" => npy
                .into_vec::<u32>()
                .map(|v| v.into_iter().map(i64::from).collect()),
            other => {
                return Err(invalid(
                    path,
                    format!("labels of dtype {other}; save integers (uint8, int32 or int64)"),
                ));
            }
        }
        .map_err(|e| invalid(path, format!("unreadable data ({e})")))?;
        return labels
            .into_iter()
            .map(|l| {
                u32::try_from(l)
                    .ok()
                    .filter(|&l| l < 1 << 16)
                    .ok_or_else(|| {
                        invalid(path, format!("label {l} is not a class index in 0..65536"))
                    })
            })
            .collect();
    }
    let IdxArray { dims, data } = parse_any_idx(path, &bytes)?;
    if dims.len() != 1 {
        return Err(invalid(
            path,
            format!("labels have dimensions {dims:?}; expected one dimension [n]"),
        ));
    }
    Ok(data.into_iter().map(u32::from).collect())
}

/// An IDX array of any number of dimensions.
fn parse_any_idx(path: &Path, bytes: &[u8]) -> Result<IdxArray, DataError> {
    let ndims = idx_dims(path, bytes)?.len();
    parse_idx(bytes, ndims).map_err(|reason| invalid(path, reason))
}

fn open_npy<'a>(path: &Path, bytes: &'a [u8]) -> Result<npyz::NpyFile<&'a [u8]>, DataError> {
    let npy = npyz::NpyFile::new(bytes)
        .map_err(|e| invalid(path, format!("unreadable .npy header ({e})")))?;
    if npy.order() != npyz::Order::C {
        return Err(invalid(
            path,
            "the array is in Fortran order; save it in C order (numpy.ascontiguousarray)".into(),
        ));
    }
    // The data must be exactly what the header declares, checked before anything is
    // allocated from the header (a damaged header could declare terabytes).
    let descr = npy.dtype().descr().trim_matches('\'').to_string();
    let item = descr
        .get(1..2)
        .filter(|kind| ["u", "i", "f"].contains(kind))
        .and_then(|_| descr[2..].parse::<u64>().ok());
    if let Some(item) = item {
        let declared = npy
            .shape()
            .iter()
            .try_fold(item, |n, &d| n.checked_mul(d))
            .unwrap_or(u64::MAX);
        let held = npy_data_len(bytes);
        if Some(declared) != held.map(|h| h as u64) {
            return Err(invalid(
                path,
                format!(
                    "the header declares {:?} {descr} values ({declared} bytes) but the file \
                     holds {} bytes of data (truncated or padded)",
                    npy.shape(),
                    held.unwrap_or(0)
                ),
            ));
        }
    }
    Ok(npy)
}

/// Bytes after an `.npy` file's header (format 1.0: a 2-byte header length; 2.0 and 3.0: 4
/// bytes), or `None` when the preamble is cut short.
fn npy_data_len(bytes: &[u8]) -> Option<usize> {
    let (len_bytes, start) = match bytes.get(6)? {
        1 => (2, 10),
        _ => (4, 12),
    };
    let header = bytes.get(8..8 + len_bytes)?;
    let header_len = header
        .iter()
        .rev()
        .fold(0usize, |n, &b| (n << 8) | b as usize);
    bytes.len().checked_sub(start + header_len)
}

/// A float32 `.npy` file (format 1.0, little-endian, C order) of `values` with `shape`, as
/// `numpy.save` writes it.
pub fn npy_f32(shape: &[usize], values: &[f32]) -> Vec<u8> {
    assert_eq!(
        shape.iter().product::<usize>(),
        values.len(),
        "one value per element of the shape"
    );
    let data: Vec<u8> = values.iter().flat_map(|v| v.to_le_bytes()).collect();
    npy_bytes("<f4", shape, &data)
}

/// A `.npy` file (format 1.0, C order) of dtype `descr` (e.g. `<f4`, `|u1`) and `shape`
/// holding the raw little-endian `data`, as `numpy.save` writes it (nothing is checked: tests
/// use it for damaged files too).
pub fn npy_bytes(descr: &str, shape: &[usize], data: &[u8]) -> Vec<u8> {
    let dims: Vec<String> = shape.iter().map(|d| d.to_string()).collect();
    let shape = match dims.len() {
        1 => format!("({},)", dims[0]),
        _ => format!("({})", dims.join(", ")),
    };
    let mut header = format!("{{'descr': '{descr}', 'fortran_order': False, 'shape': {shape}, }}");
    // The magic, version and length take 10 bytes; the header ends in a newline and pads the
    // whole preamble to a multiple of 64 bytes.
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(data);
    out
}
