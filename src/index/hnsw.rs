//! HNSW index (hnsw_rs) over unit vectors, with our ids, a file format that reloads, and a guard
//! against the library's panics on damaged files.
//!
//! The distance is L2: on unit vectors |a - b|^2 = 2 - 2 a.b ranks exactly as the dot product, and
//! unlike hnsw_rs's dot distance it accepts negative similarities (whitened descriptors have them;
//! the dot distance asserts them away and panics).

use std::path::{Path, PathBuf};

use hnsw_rs::api::AnnT;
use hnsw_rs::hnswio::HnswIo;
use hnsw_rs::prelude::{DistL2, Hnsw};
use serde::{Deserialize, Serialize};

use super::{normalize, Neighbor};
use crate::contain::contain;
use crate::error::{Error, IoContext, Result};

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq)]
pub struct HnswParams {
    /// Links per node (M).
    pub max_connections: usize,
    pub ef_construction: usize,
    /// Candidates explored per search (at least k).
    pub ef_search: usize,
}

impl Default for HnswParams {
    fn default() -> Self {
        HnswParams {
            max_connections: 24,
            ef_construction: 200,
            ef_search: 128,
        }
    }
}

/// Sidecar written next to hnsw_rs's files: our ids and what the index was built from.
#[derive(Debug, Clone, Serialize, Deserialize)]
struct Manifest {
    dim: usize,
    params: HnswParams,
    ids: Vec<i64>,
    /// The caller's fingerprint of the reference set (model, photos, locations).
    fingerprint: String,
}

pub struct HnswIndex {
    hnsw: Hnsw<'static, f32, DistL2>,
    ids: Vec<i64>,
    dim: usize,
    params: HnswParams,
    fingerprint: String,
}

impl std::fmt::Debug for HnswIndex {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "HnswIndex({} x {})", self.ids.len(), self.dim)
    }
}

fn max_layer(n: usize) -> usize {
    // log_M(n) levels suffice; hnsw_rs caps at 16.
    ((n.max(2) as f64).ln() / 24f64.ln()).ceil() as usize + 2
}

impl HnswIndex {
    /// Builds an index over `items` (vectors are normalised on the way in), inserting in parallel.
    pub fn build(
        dim: usize,
        items: &[(i64, Vec<f32>)],
        params: HnswParams,
        fingerprint: &str,
    ) -> Result<HnswIndex> {
        let hnsw = Hnsw::<f32, DistL2>::new(
            params.max_connections,
            items.len().max(1),
            max_layer(items.len()).min(16),
            params.ef_construction,
            DistL2 {},
        );
        let mut index = HnswIndex {
            hnsw,
            ids: Vec::with_capacity(items.len()),
            dim,
            params,
            fingerprint: fingerprint.to_string(),
        };
        index.add(items)?;
        Ok(index)
    }

    /// Adds vectors (an incremental update).
    pub fn add(&mut self, items: &[(i64, Vec<f32>)]) -> Result<()> {
        let start = self.ids.len();
        let mut unit: Vec<Vec<f32>> = Vec::with_capacity(items.len());
        for (id, v) in items {
            if v.len() != self.dim {
                return Err(Error::Index(format!(
                    "vector of id {id} has {} values, the index {}",
                    v.len(),
                    self.dim
                )));
            }
            let mut v = v.clone();
            normalize(&mut v);
            unit.push(v);
        }
        let refs: Vec<(&[f32], usize)> = unit
            .iter()
            .enumerate()
            .map(|(i, v)| (v.as_slice(), start + i))
            .collect();
        self.hnsw.parallel_insert_slice(&refs);
        self.ids.extend(items.iter().map(|(id, _)| *id));
        Ok(())
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn fingerprint(&self) -> &str {
        &self.fingerprint
    }

    pub fn set_fingerprint(&mut self, fingerprint: &str) {
        self.fingerprint = fingerprint.to_string();
    }

    pub fn params(&self) -> HnswParams {
        self.params
    }

    pub fn set_ef_search(&mut self, ef: usize) {
        self.params.ef_search = ef;
    }

    /// The `k` nearest references of each query, best first.
    pub fn search(&self, queries: &[Vec<f32>], k: usize) -> Vec<Vec<Neighbor>> {
        use rayon::prelude::*;
        let ef = self.params.ef_search.max(k);
        queries
            .par_iter()
            .map(|q| {
                let mut q = q.clone();
                normalize(&mut q);
                self.hnsw
                    .search(&q, k, ef)
                    .into_iter()
                    .map(|n| Neighbor {
                        id: self.ids[n.d_id],
                        similarity: 1.0 - n.distance * n.distance / 2.0,
                    })
                    .collect()
            })
            .collect()
    }

    fn manifest_path(dir: &Path, name: &str) -> PathBuf {
        dir.join(format!("{name}.ids.json"))
    }

    /// Writes the index as `<name>.hnsw.graph`, `<name>.hnsw.data` and `<name>.ids.json` in `dir`.
    pub fn save(&self, dir: &Path, name: &str) -> Result<()> {
        std::fs::create_dir_all(dir).at(dir)?;
        for ext in ["hnsw.graph", "hnsw.data"] {
            let _ = std::fs::remove_file(dir.join(format!("{name}.{ext}")));
        }
        let written = self
            .hnsw
            .file_dump(dir, name)
            .map_err(|e| Error::Index(format!("{}: cannot write index: {e}", dir.display())))?;
        if written != name {
            return Err(Error::Index(format!(
                "{}: index written as {written}, not {name}",
                dir.display()
            )));
        }
        let manifest = Manifest {
            dim: self.dim,
            params: self.params,
            ids: self.ids.clone(),
            fingerprint: self.fingerprint.clone(),
        };
        let path = Self::manifest_path(dir, name);
        let tmp = path.with_extension("json.tmp");
        std::fs::write(
            &tmp,
            serde_json::to_vec(&manifest).expect("manifest serialises"),
        )
        .at(&tmp)?;
        std::fs::rename(&tmp, &path).at(&path)
    }

    /// Reloads an index written by [`HnswIndex::save`]. A missing, damaged or inconsistent file is
    /// an error (the caller rebuilds), never a crash.
    pub fn load(dir: &Path, name: &str) -> Result<HnswIndex> {
        let path = Self::manifest_path(dir, name);
        let manifest: Manifest = serde_json::from_slice(&std::fs::read(&path).at(&path)?)
            .map_err(|e| Error::Index(format!("{}: {e}", path.display())))?;
        let (dir2, name2) = (dir.to_path_buf(), name.to_string());
        let loaded = contain(move || -> anyhow::Result<Hnsw<'static, f32, DistL2>> {
            // The loader borrows its reader for the index's lifetime; it is small, so it is leaked.
            let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(&dir2, &name2)));
            io.load_hnsw::<f32, DistL2>()
        });
        let hnsw = match loaded {
            Ok(Ok(h)) => h,
            Ok(Err(e)) => {
                return Err(Error::Index(format!(
                    "{}: cannot reload index {name}: {e}",
                    dir.display()
                )))
            }
            Err(panic) => {
                return Err(Error::Index(format!(
                    "{}: index {name} is damaged: {panic}",
                    dir.display()
                )))
            }
        };
        if hnsw.get_nb_point() != manifest.ids.len() {
            return Err(Error::Index(format!(
                "{}: index {name} holds {} points, its id list {}",
                dir.display(),
                hnsw.get_nb_point(),
                manifest.ids.len()
            )));
        }
        Ok(HnswIndex {
            hnsw,
            ids: manifest.ids,
            dim: manifest.dim,
            params: manifest.params,
            fingerprint: manifest.fingerprint,
        })
    }
}
