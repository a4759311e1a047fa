//! The local-feature store: each photo's local features kept on disk between runs, so that
//! re-ranking a photo's candidates after the first time costs only the matching.
//!
//! Entries are keyed by the photo's content (the catalog's content hash and size), the model's
//! weights and the extraction settings: a moved photo keeps its entry, an edited one or another
//! model misses. Descriptors are stored as f16 (1,600 keypoints x 512 channels: 1.6 MB a photo
//! instead of 3.3 MB; unit vectors lose nothing that the 0.8 similarity floor can see). The
//! store has a size bound: when a write takes it over, the entries read or written longest ago
//! go first (a read refreshes an entry's modification time).
//!
//! One file per entry, written under a temporary name and renamed, with a checksum: a damaged or
//! half-written entry is a miss, never wrong features.

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Mutex;

use half::f16;

use super::LocalFeatures;
use crate::error::{IoContext, Result};

const MAGIC: &[u8; 8] = b"PPLFEAT1";

/// The default size bound: about 1,300 photos' features.
pub const DEFAULT_MAX_BYTES: u64 = 2 << 30;

pub struct FeatureStore {
    dir: PathBuf,
    max_bytes: u64,
    /// Bytes in the store (as of the last scan plus what this process wrote).
    used: AtomicU64,
    evicting: Mutex<()>,
}

impl FeatureStore {
    /// Opens (creating) the store in `dir`, bounded to `max_bytes`.
    pub fn open(dir: &Path, max_bytes: u64) -> Result<FeatureStore> {
        std::fs::create_dir_all(dir).at(dir)?;
        let used = entries(dir).iter().map(|e| e.1).sum();
        Ok(FeatureStore {
            dir: dir.to_path_buf(),
            max_bytes,
            used: AtomicU64::new(used),
            evicting: Mutex::new(()),
        })
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// Bytes the store's entries take.
    pub fn used_bytes(&self) -> u64 {
        self.used.load(Ordering::Relaxed)
    }

    fn entry_path(&self, key: &str) -> PathBuf {
        let d = blake3::hash(key.as_bytes()).to_hex().to_string();
        self.dir.join(&d[..2]).join(format!("{d}.lf"))
    }

    /// The features stored under `key`, if any.
    pub fn get(&self, key: &str) -> Option<LocalFeatures> {
        let path = self.entry_path(key);
        let bytes = std::fs::read(&path).ok()?;
        let features = decode(&bytes)?;
        // Recently used: evicted last.
        if let Ok(f) = std::fs::File::options().write(true).open(&path) {
            let _ = f.set_modified(std::time::SystemTime::now());
        }
        Some(features)
    }

    /// Stores `features` under `key`, then evicts the least recently used entries while the store
    /// is over its bound. A store that cannot be written costs only the caching.
    pub fn put(&self, key: &str, features: &LocalFeatures) {
        let path = self.entry_path(key);
        let bytes = encode(features);
        let written = (|| -> std::io::Result<()> {
            let dir = path.parent().expect("entries live in a folder");
            std::fs::create_dir_all(dir)?;
            let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
            std::io::Write::write_all(&mut tmp, &bytes)?;
            tmp.persist(&path).map_err(|e| e.error)?;
            Ok(())
        })();
        if written.is_ok() {
            let used =
                self.used.fetch_add(bytes.len() as u64, Ordering::Relaxed) + bytes.len() as u64;
            if used > self.max_bytes {
                self.evict();
            }
        }
    }

    /// Removes the oldest entries until the store is at 90 % of its bound.
    fn evict(&self) {
        let Ok(_one) = self.evicting.try_lock() else {
            return;
        };
        let mut all = entries(&self.dir);
        let mut used: u64 = all.iter().map(|e| e.1).sum();
        all.sort_by_key(|e| e.2);
        let target = self.max_bytes / 10 * 9;
        for (path, size, _) in all {
            if used <= target {
                break;
            }
            if std::fs::remove_file(&path).is_ok() {
                used -= size;
            }
        }
        self.used.store(used, Ordering::Relaxed);
    }
}

/// Every entry: (path, size, modification time).
fn entries(dir: &Path) -> Vec<(PathBuf, u64, std::time::SystemTime)> {
    walkdir::WalkDir::new(dir)
        .min_depth(2)
        .max_depth(2)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "lf"))
        .filter_map(|e| {
            let md = e.metadata().ok()?;
            Some((e.into_path(), md.len(), md.modified().ok()?))
        })
        .collect()
}

/// MAGIC, points, dim, width, height (u32 LE), cell (f32), points (f32 x, y), descriptors (f16),
/// BLAKE3 of everything before it.
fn encode(f: &LocalFeatures) -> Vec<u8> {
    let mut out = Vec::with_capacity(32 + f.points.len() * 8 + f.descriptors.len() * 2 + 32);
    out.extend_from_slice(MAGIC);
    for v in [
        f.points.len() as u32,
        f.dim as u32,
        f.image_size.0,
        f.image_size.1,
    ] {
        out.extend_from_slice(&v.to_le_bytes());
    }
    out.extend_from_slice(&f.cell.to_le_bytes());
    for p in &f.points {
        out.extend_from_slice(&p[0].to_le_bytes());
        out.extend_from_slice(&p[1].to_le_bytes());
    }
    for d in &f.descriptors {
        out.extend_from_slice(&f16::from_f32(*d).to_le_bytes());
    }
    let sum = blake3::hash(&out);
    out.extend_from_slice(sum.as_bytes());
    out
}

fn decode(bytes: &[u8]) -> Option<LocalFeatures> {
    let (body, sum) = bytes.split_at(bytes.len().checked_sub(32)?);
    if body.get(..8)? != MAGIC || blake3::hash(body).as_bytes() != sum {
        return None;
    }
    let u32_at = |at: usize| Some(u32::from_le_bytes(body.get(at..at + 4)?.try_into().ok()?));
    let (n, dim) = (u32_at(8)? as usize, u32_at(12)? as usize);
    let image_size = (u32_at(16)?, u32_at(20)?);
    let cell = f32::from_le_bytes(body.get(24..28)?.try_into().ok()?);
    let points_end = 28 + n * 8;
    if body.len() != points_end + n * dim * 2 {
        return None;
    }
    let points = body[28..points_end]
        .chunks_exact(8)
        .map(|c| {
            [
                f32::from_le_bytes(c[0..4].try_into().unwrap()),
                f32::from_le_bytes(c[4..8].try_into().unwrap()),
            ]
        })
        .collect();
    let descriptors = body[points_end..]
        .chunks_exact(2)
        .map(|c| f16::from_le_bytes([c[0], c[1]]).to_f32())
        .collect();
    Some(LocalFeatures {
        points,
        descriptors,
        dim,
        image_size,
        cell,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn features(n: usize, dim: usize, seed: f32) -> LocalFeatures {
        let mut descriptors = Vec::new();
        for i in 0..n {
            let v: Vec<f32> = (0..dim)
                .map(|j| ((i * dim + j) as f32 * seed).sin())
                .collect();
            let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            descriptors.extend(v.iter().map(|x| x / norm));
        }
        LocalFeatures {
            points: (0..n).map(|i| [i as f32 * 8.0 + 4.0, 12.5]).collect(),
            descriptors,
            dim,
            image_size: (640, 480),
            cell: 8.0,
        }
    }

    #[test]
    fn entries_round_trip_survive_reopening_and_damage_is_a_miss() {
        let dir = tempfile::tempdir().unwrap();
        let store = FeatureStore::open(dir.path(), DEFAULT_MAX_BYTES).unwrap();
        let f = features(50, 512, 0.37);
        assert!(store.get("photo-a").is_none());
        store.put("photo-a", &f);
        let back = FeatureStore::open(dir.path(), DEFAULT_MAX_BYTES)
            .unwrap()
            .get("photo-a")
            .unwrap();
        assert_eq!(
            (back.points.clone(), back.dim, back.image_size, back.cell),
            (f.points.clone(), 512, (640, 480), 8.0)
        );
        let worst = back
            .descriptors
            .iter()
            .zip(&f.descriptors)
            .map(|(a, b)| (a - b).abs())
            .fold(0.0f32, f32::max);
        assert!(worst < 1e-3, "{worst}");
        // A flipped byte fails the checksum: a miss, not other features.
        let path = store.entry_path("photo-a");
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[40] ^= 0x55;
        std::fs::write(&path, &bytes).unwrap();
        assert!(store.get("photo-a").is_none());
    }

    #[test]
    fn the_bound_evicts_the_least_recently_used_entries() {
        let dir = tempfile::tempdir().unwrap();
        let one = encode(&features(100, 512, 0.1)).len() as u64;
        // Room for three entries and a half.
        let store = FeatureStore::open(dir.path(), one * 7 / 2).unwrap();
        for (i, key) in ["a", "b", "c"].iter().enumerate() {
            store.put(key, &features(100, 512, 0.1 + i as f32));
            // Modification times a second apart, so that the order is certain.
            let t =
                std::time::SystemTime::now() - std::time::Duration::from_secs(100 - i as u64 * 10);
            std::fs::File::options()
                .write(true)
                .open(store.entry_path(key))
                .unwrap()
                .set_modified(t)
                .unwrap();
        }
        // Reading "a" makes it the most recent; "b" is now the oldest.
        assert!(store.get("a").is_some());
        store.put("d", &features(100, 512, 5.0));
        assert!(store.used_bytes() <= one * 7 / 2, "{}", store.used_bytes());
        assert!(store.get("b").is_none());
        for key in ["a", "c", "d"] {
            assert!(store.get(key).is_some(), "{key}");
        }
    }
}
