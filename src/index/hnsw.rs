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

use super::flat::{FlatHnsw, GraphParts};
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
        // Measured (benches/index.rs, 100k x 512): recall@10 0.99+ at ef 16-32 with these, and a
        // build fast enough for 100k references in under a minute on 2 cores.
        HnswParams {
            max_connections: 16,
            ef_construction: 64,
            ef_search: 32,
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
    /// The hnsw_rs graph, kept for incremental inserts; `None` when opened for search only.
    graph: Option<Hnsw<'static, f32, DistL2>>,
    /// The searchable copy (see `flat`).
    flat: FlatHnsw,
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

/// hnsw_rs writes and reloads only indexes built with its full layer count (16).
const MAX_LAYER: usize = 16;

/// The hnsw_rs graph as plain arrays.
fn flatten(graph: &Hnsw<'static, f32, DistL2>, ids: &[i64], dim: usize) -> Result<FlatHnsw> {
    let n = ids.len();
    let mut vectors = vec![0f32; n * dim];
    let mut neighbours: Vec<Vec<Vec<u32>>> = vec![Vec::new(); n];
    let mut entry = (0u32, 0u8);
    for point in graph.get_point_indexation() {
        let i = point.get_origin_id();
        if i >= n {
            return Err(Error::Index(format!("graph point {i} beyond the {n} ids")));
        }
        vectors[i * dim..(i + 1) * dim].copy_from_slice(point.get_v());
        let level = point.get_point_id().0;
        if level >= entry.1 {
            entry = (i as u32, level);
        }
        neighbours[i] = point
            .get_neighborhood_id()
            .into_iter()
            .take(level as usize + 1)
            .map(|layer| layer.into_iter().map(|nb| nb.d_id as u32).collect())
            .collect();
    }
    FlatHnsw::from_parts(GraphParts {
        dim,
        ids: ids.to_vec(),
        vectors,
        neighbours,
        entry: entry.0,
    })
}

impl HnswIndex {
    /// Builds an index over `items` (vectors are normalised on the way in), inserting in parallel.
    pub fn build(
        dim: usize,
        items: &[(i64, Vec<f32>)],
        params: HnswParams,
        fingerprint: &str,
    ) -> Result<HnswIndex> {
        let graph = Hnsw::<f32, DistL2>::new(
            params.max_connections,
            items.len().max(1),
            MAX_LAYER,
            params.ef_construction,
            DistL2 {},
        );
        let mut index = HnswIndex {
            graph: Some(graph),
            flat: FlatHnsw::from_parts(GraphParts {
                dim,
                ids: vec![],
                vectors: vec![],
                neighbours: vec![],
                entry: 0,
            })?,
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
        let graph = self
            .graph
            .as_ref()
            .ok_or_else(|| Error::Index("index opened for search only".into()))?;
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
        graph.parallel_insert_slice(&refs);
        self.ids.extend(items.iter().map(|(id, _)| *id));
        self.flat = flatten(graph, &self.ids, self.dim)?;
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
                self.flat.search(&q, k, ef)
            })
            .collect()
    }

    fn manifest_path(dir: &Path, name: &str) -> PathBuf {
        dir.join(format!("{name}.ids.json"))
    }

    fn flat_path(dir: &Path, name: &str) -> PathBuf {
        dir.join(format!("{name}.flat"))
    }

    /// Writes the index: hnsw_rs's `<name>.hnsw.graph` and `<name>.hnsw.data` (for later
    /// inserts), the searchable `<name>.flat`, and `<name>.ids.json`.
    pub fn save(&self, dir: &Path, name: &str) -> Result<()> {
        let graph = self
            .graph
            .as_ref()
            .ok_or_else(|| Error::Index("index opened for search only".into()))?;
        std::fs::create_dir_all(dir).at(dir)?;
        for ext in ["hnsw.graph", "hnsw.data"] {
            let _ = std::fs::remove_file(dir.join(format!("{name}.{ext}")));
        }
        let written = graph
            .file_dump(dir, name)
            .map_err(|e| Error::Index(format!("{}: cannot write index: {e}", dir.display())))?;
        if written != name {
            return Err(Error::Index(format!(
                "{}: index written as {written}, not {name}",
                dir.display()
            )));
        }
        self.save_for_search(dir, name)
    }

    /// Writes only what [`HnswIndex::open_for_search`] reads (`<name>.flat` and
    /// `<name>.ids.json`): for an index that never grows, such as a reference database's.
    pub fn save_for_search(&self, dir: &Path, name: &str) -> Result<()> {
        std::fs::create_dir_all(dir).at(dir)?;
        self.flat.save(&Self::flat_path(dir, name))?;
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

    fn read_manifest(dir: &Path, name: &str) -> Result<Manifest> {
        let path = Self::manifest_path(dir, name);
        serde_json::from_slice(&std::fs::read(&path).at(&path)?)
            .map_err(|e| Error::Index(format!("{}: {e}", path.display())))
    }

    /// Opens an index for search only: the flat file is memory-mapped, nothing else is read.
    pub fn open_for_search(dir: &Path, name: &str) -> Result<HnswIndex> {
        let manifest = Self::read_manifest(dir, name)?;
        let flat = FlatHnsw::open(&Self::flat_path(dir, name))?;
        if flat.len() != manifest.ids.len() || (!flat.is_empty() && flat.dim() != manifest.dim) {
            return Err(Error::Index(format!(
                "{}: index {name} does not match its id list",
                dir.display()
            )));
        }
        Ok(HnswIndex {
            graph: None,
            flat,
            ids: manifest.ids,
            dim: manifest.dim,
            params: manifest.params,
            fingerprint: manifest.fingerprint,
        })
    }

    /// Reloads an index written by [`HnswIndex::save`], ready for inserts. A missing, damaged or
    /// inconsistent file is an error (the caller rebuilds), never a crash.
    pub fn load(dir: &Path, name: &str) -> Result<HnswIndex> {
        let manifest = Self::read_manifest(dir, name)?;
        let (dir2, name2) = (dir.to_path_buf(), name.to_string());
        let loaded = contain(move || -> anyhow::Result<Hnsw<'static, f32, DistL2>> {
            // The loader borrows its reader for the index's lifetime; it is small, so it is leaked.
            let io: &'static mut HnswIo = Box::leak(Box::new(HnswIo::new(&dir2, &name2)));
            io.load_hnsw::<f32, DistL2>()
        });
        let graph = match loaded {
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
        if graph.get_nb_point() != manifest.ids.len() {
            return Err(Error::Index(format!(
                "{}: index {name} holds {} points, its id list {}",
                dir.display(),
                graph.get_nb_point(),
                manifest.ids.len()
            )));
        }
        let flat = match FlatHnsw::open(&Self::flat_path(dir, name)) {
            Ok(f) if f.len() == manifest.ids.len() => f,
            _ => flatten(&graph, &manifest.ids, manifest.dim)?,
        };
        Ok(HnswIndex {
            graph: Some(graph),
            flat,
            ids: manifest.ids,
            dim: manifest.dim,
            params: manifest.params,
            fingerprint: manifest.fingerprint,
        })
    }
}
