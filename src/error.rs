//! The engine's error type. Every error that concerns one file names that file, so that
//! the edges (CLI, desktop shell) can report "which file, and why" without extra context.

use std::path::PathBuf;

pub type Result<T, E = Error> = std::result::Result<T, E>;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },

    #[error("catalog {path}: {source}")]
    Catalog {
        path: PathBuf,
        #[source]
        source: rusqlite::Error,
    },

    #[error("catalog: {0}")]
    Sqlite(#[from] rusqlite::Error),

    #[error("catalog {path} was written by a newer Pinpoint (schema version {found}, this build knows {known})")]
    CatalogTooNew {
        path: PathBuf,
        found: i64,
        known: i64,
    },

    /// A photo or sidecar whose metadata could not be read.
    #[error("{path}: {reason}")]
    Metadata { path: PathBuf, reason: String },

    /// A photo whose pixels could not be decoded.
    #[error("{path}: cannot decode image: {reason}")]
    Decode { path: PathBuf, reason: String },

    /// A file whose format Pinpoint does not handle for the requested operation.
    #[error("{path}: unsupported format: {reason}")]
    Unsupported { path: PathBuf, reason: String },

    #[error("{0}")]
    InvalidInput(String),

    /// A CSV file (eval dataset, reference-database sources) that cannot be used, with the line
    /// of the row at fault when one is.
    #[error("{}: {}{reason}", path.display(), line.map(|l| format!("line {l}: ")).unwrap_or_default())]
    Csv {
        path: PathBuf,
        line: Option<u64>,
        reason: String,
    },

    #[error("not found: {0}")]
    NotFound(String),

    #[error("model: {0}")]
    Model(String),

    #[error("{path}: model file: {reason}")]
    ModelFile { path: PathBuf, reason: String },

    #[error("tensor: {0}")]
    Tensor(#[from] candle_core::Error),

    #[error("index: {0}")]
    Index(String),

    #[error(transparent)]
    Tile(#[from] crate::tiles::TileError),

    #[error("cancelled")]
    Cancelled,
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    pub fn metadata(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Metadata {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub fn decode(path: impl Into<PathBuf>, reason: impl Into<String>) -> Self {
        Error::Decode {
            path: path.into(),
            reason: reason.into(),
        }
    }

    pub fn invalid(msg: impl Into<String>) -> Self {
        Error::InvalidInput(msg.into())
    }
}

/// Adds the file path to an `io::Error`.
pub trait IoContext<T> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T>;
}

impl<T> IoContext<T> for std::result::Result<T, std::io::Error> {
    fn at(self, path: impl Into<PathBuf>) -> Result<T> {
        self.map_err(|e| Error::io(path, e))
    }
}
