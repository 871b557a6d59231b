use std::path::PathBuf;

/// Why a dataset could not be loaded. Every variant names the path and, where the user can
/// act, what to do.
#[derive(Debug, thiserror::Error)]
pub enum DataError {
    /// A required file is not there.
    #[error("{what} not found: {path}\n{hint}")]
    Missing {
        /// What was looked for.
        what: String,
        /// Where it was looked for.
        path: PathBuf,
        /// How to get it.
        hint: String,
    },
    /// The file exists but is not what it should be.
    #[error("{path} is not a valid IDX file: {reason}\n{hint}")]
    Corrupt {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// How to fix it.
        hint: String,
    },
    /// A file of the user's own data is not what the data set needs.
    #[error("{path}: {reason}\n{hint}")]
    Invalid {
        /// The offending file.
        path: PathBuf,
        /// What is wrong with it.
        reason: String,
        /// How to fix it.
        hint: String,
    },
    /// Reading failed.
    #[error("could not read {path}: {source}")]
    Io {
        /// The file being read.
        path: PathBuf,
        /// The underlying error.
        source: std::io::Error,
    },
    /// A configuration value is out of range.
    #[error("{0}")]
    Config(String),
}
