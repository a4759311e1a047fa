//! Network outputs kept by what determines them — the model's weights, the device kind, the
//! computation and its settings, and the bytes of the image file — so that every catalog, command
//! and process on a machine that asks for the same thing computes it once.
//!
//! Off unless `$PINPOINT_CONTENT_CACHE` names a folder. It is for people who keep several
//! catalogs of the same photos, rebuild catalogs, or evaluate the same datasets again, and for the
//! test suite, which describes the same real photos in many tests and processes. Being keyed by
//! content (not path), a copy of a photo in another folder is a hit; an edited photo is a miss.
//!
//! One file per entry, written to a temporary name and renamed, so concurrent processes never read
//! half an entry; a damaged entry (wrong length or checksum) is a miss and is written again.

use std::io::Read;
use std::path::{Path, PathBuf};
use std::sync::OnceLock;

use candle_core::{DType, Device, Tensor};

use crate::error::{IoContext, Result};

/// The variable that turns the cache on and names its folder.
pub const CONTENT_CACHE_VAR: &str = "PINPOINT_CONTENT_CACHE";

const MAGIC: &[u8; 8] = b"PPCACHE1";

pub struct ContentCache {
    dir: PathBuf,
}

/// What an entry is for; every part enters the key.
pub struct CacheKey<'a> {
    /// The computation, e.g. `descriptor`, `netvlad`, `conv5_3`, `local-features`.
    pub kind: &'a str,
    /// SHA-256 of the model's weights.
    pub model_hash: &'a str,
    /// `cpu`, `cuda`, `metal`: results differ in their last bits between devices.
    pub device: &'a str,
    /// Every setting the result depends on (input size, orientation override, layer, ...).
    pub settings: String,
    /// BLAKE3 of the image file's bytes (`file_hash`).
    pub content: &'a str,
}

impl CacheKey<'_> {
    fn digest(&self) -> String {
        let mut h = blake3::Hasher::new();
        for part in [
            self.kind,
            self.model_hash,
            self.device,
            &self.settings,
            self.content,
        ] {
            h.update(&(part.len() as u64).to_le_bytes());
            h.update(part.as_bytes());
        }
        h.finalize().to_hex().to_string()
    }
}

/// The device kind as it enters a key.
pub fn device_kind(device: &candle_core::Device) -> &'static str {
    match device {
        candle_core::Device::Cpu => "cpu",
        candle_core::Device::Cuda(_) => "cuda",
        candle_core::Device::Metal(_) => "metal",
    }
}

/// BLAKE3 of a whole file, hex.
pub fn file_hash(path: &Path) -> Result<String> {
    let mut file = std::fs::File::open(path).at(path)?;
    let mut hasher = blake3::Hasher::new();
    let mut buf = vec![0u8; 1 << 16];
    loop {
        let n = file.read(&mut buf).at(path)?;
        if n == 0 {
            break;
        }
        hasher.update(&buf[..n]);
    }
    Ok(hasher.finalize().to_hex().to_string())
}

impl ContentCache {
    /// The cache `$PINPOINT_CONTENT_CACHE` names, read once per process; `None` when unset.
    pub fn from_env() -> Option<&'static ContentCache> {
        static CACHE: OnceLock<Option<ContentCache>> = OnceLock::new();
        CACHE
            .get_or_init(|| {
                let dir = std::env::var_os(CONTENT_CACHE_VAR).filter(|v| !v.is_empty())?;
                Some(ContentCache::at(PathBuf::from(dir)))
            })
            .as_ref()
    }

    pub fn at(dir: PathBuf) -> ContentCache {
        ContentCache { dir }
    }

    fn entry_path(&self, key: &CacheKey) -> PathBuf {
        let d = key.digest();
        self.dir.join(key.kind).join(&d[..2]).join(&d)
    }

    /// The values stored under `key`, if any (a damaged entry is a miss).
    pub fn get(&self, key: &CacheKey) -> Option<Vec<f32>> {
        let bytes = std::fs::read(self.entry_path(key)).ok()?;
        decode_entry(&bytes)
    }

    /// Stores `values` under `key`. A cache that cannot be written is not an error for the
    /// computation that produced the values: they are returned all the same.
    pub fn put(&self, key: &CacheKey, values: &[f32]) {
        let path = self.entry_path(key);
        let _ = self.write_entry(&path, values);
    }

    fn write_entry(&self, path: &Path, values: &[f32]) -> std::io::Result<()> {
        let dir = path.parent().expect("entries live in a folder");
        std::fs::create_dir_all(dir)?;
        let mut bytes = Vec::with_capacity(16 + values.len() * 4 + 32);
        bytes.extend_from_slice(MAGIC);
        bytes.extend_from_slice(&(values.len() as u64).to_le_bytes());
        for v in values {
            bytes.extend_from_slice(&v.to_le_bytes());
        }
        let sum = blake3::hash(&bytes);
        bytes.extend_from_slice(sum.as_bytes());
        let mut tmp = tempfile::NamedTempFile::new_in(dir)?;
        std::io::Write::write_all(&mut tmp, &bytes)?;
        tmp.persist(path).map_err(|e| e.error)?;
        Ok(())
    }
}

/// `compute()` for the image file `path`, or what the content cache holds for it: a tensor of any
/// shape, kept as its dimensions followed by its f32 values.
pub fn tensor_of_file(
    model: &crate::model::LoadedModel,
    kind: &str,
    settings: &str,
    path: &Path,
    compute: impl FnOnce() -> Result<Tensor>,
) -> Result<Tensor> {
    let Some(cache) = ContentCache::from_env() else {
        return compute();
    };
    let content = file_hash(path)?;
    let key = CacheKey {
        kind,
        model_hash: &model.hash,
        device: device_kind(&model.device),
        settings: settings.to_string(),
        content: &content,
    };
    if let Some(v) = cache.get(&key) {
        let rank = v.first().copied().unwrap_or(0.0) as usize;
        if v.len() > rank {
            let dims: Vec<usize> = v[1..=rank].iter().map(|d| *d as usize).collect();
            if dims.iter().product::<usize>() == v.len() - 1 - rank {
                return Ok(
                    Tensor::from_vec(v[1 + rank..].to_vec(), dims, &Device::Cpu)?
                        .to_device(&model.device)?,
                );
            }
        }
    }
    let t = compute()?;
    let values: Vec<f32> = t.to_dtype(DType::F32)?.flatten_all()?.to_vec1()?;
    let mut flat = Vec::with_capacity(1 + t.rank() + values.len());
    flat.push(t.rank() as f32);
    flat.extend(t.dims().iter().map(|d| *d as f32));
    flat.extend(values);
    cache.put(&key, &flat);
    Ok(t)
}

fn decode_entry(bytes: &[u8]) -> Option<Vec<f32>> {
    if bytes.len() < 16 + 32 || &bytes[..8] != MAGIC {
        return None;
    }
    let (body, sum) = bytes.split_at(bytes.len() - 32);
    if blake3::hash(body).as_bytes() != sum {
        return None;
    }
    let n = u64::from_le_bytes(body[8..16].try_into().ok()?) as usize;
    let data = &body[16..];
    if data.len() != n.checked_mul(4)? {
        return None;
    }
    Some(
        data.chunks_exact(4)
            .map(|c| f32::from_le_bytes(c.try_into().unwrap()))
            .collect(),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    fn key<'a>(content: &'a str, settings: &str) -> CacheKey<'a> {
        CacheKey {
            kind: "descriptor",
            model_hash: "m",
            device: "cpu",
            settings: settings.to_string(),
            content,
        }
    }

    #[test]
    fn entries_round_trip_exactly_and_keys_keep_settings_apart() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ContentCache::at(dir.path().to_path_buf());
        let v = vec![0.1f32, -3.5, f32::MIN_POSITIVE, 1e30];
        assert!(cache.get(&key("abc", "640")).is_none());
        cache.put(&key("abc", "640"), &v);
        assert_eq!(cache.get(&key("abc", "640")).unwrap(), v);
        assert!(cache.get(&key("abc", "1024")).is_none());
        assert!(cache.get(&key("abd", "640")).is_none());
        // Parts are length-prefixed: moving a character between parts is another key.
        assert_ne!(key("ab", "c640").digest(), key("abc", "640").digest());
    }

    #[test]
    fn a_damaged_entry_is_a_miss_and_is_rewritten() {
        let dir = tempfile::tempdir().unwrap();
        let cache = ContentCache::at(dir.path().to_path_buf());
        let k = key("abc", "640");
        cache.put(&k, &[1.0, 2.0, 3.0]);
        let path = cache.entry_path(&k);
        let mut bytes = std::fs::read(&path).unwrap();
        bytes[20] ^= 1;
        std::fs::write(&path, &bytes).unwrap();
        assert!(cache.get(&k).is_none(), "a flipped bit must not be served");
        std::fs::write(&path, &bytes[..30]).unwrap();
        assert!(
            cache.get(&k).is_none(),
            "a truncated entry must not be served"
        );
        cache.put(&k, &[1.0, 2.0, 3.0]);
        assert_eq!(cache.get(&k).unwrap(), vec![1.0, 2.0, 3.0]);
    }

    #[test]
    fn the_file_hash_follows_the_bytes_not_the_name() {
        let dir = tempfile::tempdir().unwrap();
        let (a, b) = (dir.path().join("a.jpg"), dir.path().join("b.jpg"));
        std::fs::write(&a, b"same bytes").unwrap();
        std::fs::write(&b, b"same bytes").unwrap();
        assert_eq!(file_hash(&a).unwrap(), file_hash(&b).unwrap());
        std::fs::write(&b, b"other bytes").unwrap();
        assert_ne!(file_hash(&a).unwrap(), file_hash(&b).unwrap());
        assert!(file_hash(&dir.path().join("none.jpg")).is_err());
    }
}
