//! Nearest-neighbour search over place descriptors: exact search (blocked matrix products) for
//! small reference sets and as ground truth, HNSW (hnsw_rs) for large ones, persisted and reloaded.

pub mod exact;
pub mod flat;
pub mod hnsw;

use serde::Serialize;

pub use exact::ExactIndex;
pub use hnsw::{HnswIndex, HnswParams};

/// A search result: the reference's id and its similarity (dot product of unit vectors, in [-1, 1]).
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Neighbor {
    pub id: i64,
    pub similarity: f32,
}

/// Scales `v` to unit length, computing the norm in f64 so that the result's self dot product is
/// 1 to within f32 rounding.
pub fn normalize(v: &mut [f32]) {
    let norm = v
        .iter()
        .map(|&x| (x as f64) * (x as f64))
        .sum::<f64>()
        .sqrt();
    if norm > 0.0 {
        for x in v.iter_mut() {
            *x = (*x as f64 / norm) as f32;
        }
    }
}
