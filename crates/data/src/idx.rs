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

/// Reads an IDX file, gunzipping it when its name ends in `.gz` or it starts with the gzip
/// magic bytes. `expected_ndims` guards against swapping image and label files.
pub fn read_idx(path: &Path, expected_ndims: usize) -> Result<IdxArray, DataError> {
    let raw = std::fs::read(path).map_err(|source| DataError::Io {
        path: path.into(),
        source,
    })?;
    let bytes = if raw.starts_with(&[0x1f, 0x8b]) {
        let mut out = Vec::new();
        GzDecoder::new(raw.as_slice())
            .read_to_end(&mut out)
            .map_err(|e| DataError::Corrupt {
                path: path.into(),
                reason: format!("gzip stream is truncated or corrupt ({e})"),
                hint: HINT.into(),
            })?;
        out
    } else {
        raw
    };
    parse_idx(&bytes, expected_ndims).map_err(|reason| DataError::Corrupt {
        path: path.into(),
        reason,
        hint: HINT.into(),
    })
}

/// Parses IDX bytes (already decompressed).
pub fn parse_idx(bytes: &[u8], expected_ndims: usize) -> Result<IdxArray, String> {
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
    let dims: Vec<usize> = (0..ndims)
        .map(|i| {
            let b = &bytes[4 + 4 * i..8 + 4 * i];
            u32::from_be_bytes([b[0], b[1], b[2], b[3]]) as usize
        })
        .collect();
    let expected: usize = dims.iter().product();
    let got = bytes.len() - header;
    if got != expected {
        return Err(format!(
            "header declares {dims:?} = {expected} bytes of data but the file holds {got} \
             (truncated or padded)"
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
