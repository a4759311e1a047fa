//! Pinpoint's engine: the photo catalog, library scanning, CRN+NetVLAD place descriptors,
//! nearest-neighbour search and location proposals. It knows nothing of any user interface;
//! the `pinpoint` CLI and the desktop shell (`src-tauri/`) call into it.
//!
//! See ARCHITECTURE.md for the data flow and what each module may touch.

pub mod catalog;
pub mod contain;
pub mod csv_table;
pub mod error;
pub mod eval;
pub mod geo;
pub mod geometry;
pub mod index;
pub mod jobs;
pub mod library;
pub mod locate;
pub mod model;
pub mod progress;
pub mod refdb;
pub mod tagging;
pub mod tiles;
pub mod train;

pub use catalog::Catalog;
pub use error::{Error, Result};
