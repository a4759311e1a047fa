//! Reference sets: geotagged images whose descriptors a photo is matched against — the user's own
//! tagged photos, and installed reference databases. Each set has its own index: exact search
//! below [`HNSW_THRESHOLD`] references (faster there, and exact), HNSW above it, persisted in the
//! catalog's cache folder and brought up to date incrementally.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalog::Catalog;
use crate::error::Result;
use crate::geo::GeoPoint;
use crate::index::{ExactIndex, HnswIndex, HnswParams, Neighbor};
use crate::library::CaptureTime;

/// Reference count from which HNSW replaces exact search (see the index benchmark).
pub const HNSW_THRESHOLD: usize = 50_000;

/// What a proposal shows about a matched reference.
#[derive(Debug, Clone, Serialize)]
pub struct RefInfo {
    pub location: GeoPoint,
    /// "library" for the user's photos, else the reference database's name.
    pub source: String,
    /// The photo's path, or the database's reference id.
    pub path_or_id: String,
    pub photo_id: Option<i64>,
    #[serde(skip)]
    pub taken_at: Option<CaptureTime>,
    pub camera: Option<String>,
    pub attribution: Option<String>,
    /// The reference's id in its database; None for the user's photos.
    pub ref_id: Option<i64>,
}

pub enum SearchIndex {
    Exact(ExactIndex),
    Hnsw(Box<HnswIndex>),
}

impl SearchIndex {
    pub fn len(&self) -> usize {
        match self {
            SearchIndex::Exact(i) => i.len(),
            SearchIndex::Hnsw(i) => i.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn search(&self, queries: &[Vec<f32>], k: usize) -> Vec<Vec<Neighbor>> {
        match self {
            SearchIndex::Exact(i) => i.search(queries, k),
            SearchIndex::Hnsw(i) => i.search(queries, k),
        }
    }

    pub fn kind(&self) -> &'static str {
        match self {
            SearchIndex::Exact(_) => "exact",
            SearchIndex::Hnsw(_) => "hnsw",
        }
    }
}

/// Where a set finds what its matches are: the user's photos are all in memory, a reference
/// database looks them up when matched (a million are never all loaded). A trait, so that the sets
/// of reference databases are made in `refdb` without this module knowing of it.
pub trait RefLookup: Send + Sync {
    /// The reference with id `id` (as its set's index numbers it), if there is one.
    fn get(&self, id: i64) -> Option<RefInfo>;
}

impl RefLookup for HashMap<i64, RefInfo> {
    fn get(&self, id: i64) -> Option<RefInfo> {
        HashMap::get(self, &id).cloned()
    }
}

pub struct ReferenceSet {
    pub name: String,
    pub index: SearchIndex,
    pub refs: Box<dyn RefLookup>,
}

impl ReferenceSet {
    pub fn len(&self) -> usize {
        self.index.len()
    }

    pub fn is_empty(&self) -> bool {
        self.index.is_empty()
    }
}

/// Fingerprint of the descriptors an index covers (ids and photo contents), for staleness checks.
pub fn fingerprint(items: &[(i64, [u8; 32])]) -> String {
    let mut h = blake3::Hasher::new();
    for (id, c) in items {
        h.update(&id.to_le_bytes());
        h.update(c);
    }
    h.finalize().to_hex().to_string()
}

fn camera(make: &Option<String>, model: &Option<String>) -> Option<String> {
    match (make, model) {
        (Some(a), Some(b)) => Some(format!("{a} {b}")),
        (a, b) => a.clone().or(b.clone()),
    }
}

/// Keeps an HNSW index on disk in step with `items`: reloads it, adds what is new, rebuilds when
/// references were removed or changed (hnsw_rs cannot delete) or the file is unusable.
pub fn persistent_hnsw(
    dir: &Path,
    name: &str,
    dim: usize,
    items: &[(i64, Vec<f32>)],
    contents: &[(i64, [u8; 32])],
) -> Result<HnswIndex> {
    let print = fingerprint(contents);
    if let Ok(mut index) = HnswIndex::load(dir, name) {
        if index.fingerprint() == print {
            return Ok(index);
        }
        // Incremental: valid when every indexed id is still here (unchanged) and some are new.
        let manifest = dir.join(format!("{name}.contents.json"));
        let old: Vec<(i64, [u8; 32])> = std::fs::read(&manifest)
            .ok()
            .and_then(|b| serde_json::from_slice(&b).ok())
            .unwrap_or_default();
        let current: HashSet<(i64, [u8; 32])> = contents.iter().copied().collect();
        if old.len() == index.len() && old.iter().all(|c| current.contains(c)) {
            let known: HashSet<i64> = old.iter().map(|c| c.0).collect();
            let added: Vec<(i64, Vec<f32>)> = items
                .iter()
                .filter(|(id, _)| !known.contains(id))
                .cloned()
                .collect();
            index.add(&added)?;
            index.set_fingerprint(&print);
            save_hnsw(&index, dir, name, contents)?;
            return Ok(index);
        }
    }
    let index = HnswIndex::build(dim, items, HnswParams::default(), &print)?;
    save_hnsw(&index, dir, name, contents)?;
    Ok(index)
}

fn save_hnsw(
    index: &HnswIndex,
    dir: &Path,
    name: &str,
    contents: &[(i64, [u8; 32])],
) -> Result<()> {
    index.save(dir, name)?;
    let manifest = dir.join(format!("{name}.contents.json"));
    std::fs::write(&manifest, serde_json::to_vec(contents).expect("serialises"))
        .map_err(|e| crate::error::Error::io(&manifest, e))
}

/// The user's tagged photos (with a current descriptor for `model_hash`) as a reference set.
pub fn library_references(catalog: &Catalog, model_hash: &str) -> Result<ReferenceSet> {
    let photos = catalog.photos(&crate::catalog::PhotoFilter {
        tagged: Some(true),
        ..Default::default()
    })?;
    let by_id: HashMap<i64, &crate::catalog::PhotoRecord> =
        photos.iter().map(|p| (p.id, p)).collect();
    let mut items = Vec::new();
    let mut contents = Vec::new();
    let mut refs = HashMap::new();
    for (id, v) in catalog.descriptors(model_hash)? {
        let Some(p) = by_id.get(&id) else { continue };
        let Some(loc) = p.gps else { continue };
        refs.insert(
            id,
            RefInfo {
                location: loc,
                source: "library".into(),
                path_or_id: p.path.display().to_string(),
                photo_id: Some(id),
                taken_at: p.taken_at,
                camera: camera(&p.make, &p.model),
                attribution: None,
                ref_id: None,
            },
        );
        contents.push((id, p.content_hash));
        items.push((id, v));
    }
    let dim = items.first().map(|(_, v)| v.len()).unwrap_or(0);
    let index = if items.len() < HNSW_THRESHOLD {
        SearchIndex::Exact(ExactIndex::with_vectors(dim, items))
    } else {
        let dir: PathBuf = catalog.cache_dir().join("index");
        SearchIndex::Hnsw(Box::new(persistent_hnsw(
            &dir,
            &format!("library-{}", &model_hash[..16]),
            dim,
            &items,
            &contents,
        )?))
    };
    Ok(ReferenceSet {
        name: "library".into(),
        index,
        refs: Box::new(refs),
    })
}
