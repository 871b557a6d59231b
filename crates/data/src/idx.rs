//! The IDX file format (LeCun's MNIST distribution format).
//!
//! Header: two zero bytes, a type byte (0x08 = unsigned byte), the number of dimensions, then
//! one big-endian `u32` per dimension; the data follows. Files may be gzip-compressed.
use crate::DataError;
use flate2::read::GzDecoder;
use std::io::Read;
use std::path::Path;

/// A parsed IDX array of unsigned bytes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct IdxArray {
    /// Dimensions, outermost first (e.g. `[60000, 28, 28]`).
    pub dims: Vec<usize>,
    /// Row-major data.
    pub data: Vec<u8>,
}

const HINT: &str = "The file is damaged or is not an MNIST IDX file. Download it again \
(see README, \"Getting MNIST\").";

/// Reads an IDX file, gunzipping it when it starts with the gzip magic bytes.
/// `expected_ndims` guards against swapping image and label files.
///
/// Nothing is allocated from the header's declared size: a gzipped file is decompressed only
/// up to one byte past the declared length, so a corrupt header declaring terabytes costs no
/// more memory than the stream really holds.
pub fn read_idx(path: &Path, expected_ndims: usize) -> Result<IdxArray, DataError> {
    let corrupt = |reason: String| DataError::Corrupt {
        path: path.into(),
        reason,
        hint: HINT.into(),
    };
    let raw = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.into(),
        source,
    })?;
    if !raw.starts_with(&[0x1f, 0x8b]) {
        return parse_idx(&raw, expected_ndims).map_err(corrupt);
    }
    let gz_err = |e: std::io::Error| format!("gzip stream is truncated or corrupt ({e})");
    let mut gz = GzDecoder::new(raw.as_slice());
    let mut head = Vec::new();
    (&mut gz)
        .take(4)
        .read_to_end(&mut head)
        .map_err(|e| corrupt(gz_err(e)))?;
    if head.len() == 4 {
        let ndims = u64::from(head[3]);
        (&mut gz)
            .take(4 * ndims)
            .read_to_end(&mut head)
            .map_err(|e| corrupt(gz_err(e)))?;
    }
    let (dims, _) = parse_header(&head, expected_ndims).map_err(corrupt)?;
    let declared = declared_len(&dims).map_err(corrupt)?;
    (&mut gz)
        .take(declared as u64 + 1)
        .read_to_end(&mut head)
        .map_err(|e| corrupt(gz_err(e)))?;
    parse_idx(&head, expected_ndims).map_err(corrupt)
}

/// Dimensions and header length of IDX bytes.
fn parse_header(bytes: &[u8], expected_ndims: usize) -> Result<(Vec<usize>, usize), String> {
    if bytes.len() < 4 {
        return Err(format!(
            "file has {} bytes, shorter than the 4-byte header",
            bytes.len()
        ));
    }
    if bytes[0] != 0 || bytes[1] != 0 {
        return Err(format!(
            "bad magic number {:02x}{:02x}{:02x}{:02x} (expected 0000 08 0{expected_ndims})",
            bytes[0], bytes[1], bytes[2], bytes[3]
        ));
    }
    if bytes[2] != 0x08 {
        return Err(format!(
            "element type 0x{:02x} is not unsigned byte (0x08)",
            bytes[2]
        ));
    }
    let ndims = bytes[3] as usize;
    if ndims != expected_ndims {
        return Err(format!(
            "{ndims} dimensions where {expected_ndims} were expected"
        ));
    }
    let header = 4 + 4 * ndims;
    if bytes.len() < header {
        return Err("header is truncated".into());
    }
    let dims = (0..ndims)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    Ok((dims, header))
}

/// Bytes of data the dimensions declare, refusing products that overflow.
fn declared_len(dims: &[usize]) -> Result<usize, String> {
    dims.iter()
        .try_fold(1usize, |n, &d| n.checked_mul(d))
        .filter(|&n| n <= isize::MAX as usize)
        .ok_or_else(|| format!("header declares dimensions {dims:?}, too large to be real"))
}

/// Parses IDX bytes (already decompressed).
pub fn parse_idx(bytes: &[u8], expected_ndims: usize) -> Result<IdxArray, String> {
    let (dims, header) = parse_header(bytes, expected_ndims)?;
    let expected = declared_len(&dims)?;
    let got = bytes.len() - header;
    if got != expected {
        return Err(format!(
            "header declares {dims:?} = {expected} bytes of data but the file holds {got}{} \
             (truncated or padded)",
            if got > expected { " or more" } else { "" }
        ));
    }
    Ok(IdxArray {
        dims,
        data: bytes[header..].to_vec(),
    })
}

/// Encodes an array as IDX bytes (for tests and fixtures).
pub fn encode_idx(dims: &[usize], data: &[u8]) -> Vec<u8> {
    let mut out = vec![0, 0, 0x08, dims.len() as u8];
    for &d in dims {
        out.extend_from_slice(&(d as u32).to_be_bytes());
    }
    out.extend_from_slice(data);
    out
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::io::Write;

    #[test]
    fn parses_a_good_file() {
        let bytes = encode_idx(&[2, 2, 3], &[1, 2, 3, 4, 5, 6, 7, 8, 9, 10, 11, 12]);
        let a = parse_idx(&bytes, 3).unwrap();
        assert_eq!(a.dims, vec![2, 2, 3]);
        assert_eq!(a.data[11], 12);
    }

    #[test]
    fn rejects_truncated_data() {
        let mut bytes = encode_idx(&[2, 2, 3], &[0; 12]);
        bytes.truncate(bytes.len() - 1);
        assert!(parse_idx(&bytes, 3).unwrap_err().contains("truncated"));
    }

    #[test]
    fn rejects_bad_magic_and_wrong_rank() {
        let mut bytes = encode_idx(&[3], &[0; 3]);
        assert!(
            parse_idx(&bytes, 3)
                .unwrap_err()
                .contains("1 dimensions where 3")
        );
        bytes[0] = 0x42;
        assert!(parse_idx(&bytes, 1).unwrap_err().contains("bad magic"));
        assert!(parse_idx(&[0, 0], 1).unwrap_err().contains("header"));
    }

    #[test]
    fn reads_gzip_and_reports_corrupt_gzip() {
        let dir = tempfile::tempdir().unwrap();
        let p = dir.path().join("x-idx1-ubyte.gz");
        let mut gz = flate2::write::GzEncoder::new(Vec::new(), flate2::Compression::fast());
        gz.write_all(&encode_idx(&[4], &[9, 8, 7, 6])).unwrap();
        let mut gz = gz.finish().unwrap();
        std::fs::write(&p, &gz).unwrap();
        assert_eq!(read_idx(&p, 1).unwrap().data, vec![9, 8, 7, 6]);
        gz.truncate(gz.len() / 2);
        std::fs::write(&p, &gz).unwrap();
        let err = read_idx(&p, 1).unwrap_err().to_string();
        assert!(
            err.contains("x-idx1-ubyte.gz") && err.contains("gzip"),
            "{err}"
        );
    }
}
