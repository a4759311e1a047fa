//! The photo library: which files are photos, reading their metadata, scanning roots into the
//! catalog, decoding pixels upright, and thumbnails.

pub mod capture_time;
pub mod decode;
pub mod format;
pub mod heif;
mod iptc;
pub mod isobmff;
pub mod jpeg;
pub mod metadata;
pub mod roots;
pub mod scan;
pub mod thumbnail;
pub mod video;
pub mod xmp;

pub use capture_time::CaptureTime;
pub use format::PhotoFormat;
pub use metadata::{read_photo_metadata, Located, LocationSource, PhotoMetadata};
pub use scan::{scan, FileProblem, ScanOptions, ScanReport};
pub use thumbnail::{thumbnail, ThumbnailSize};
