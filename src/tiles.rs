//! Online map tiles for the app's maps, fetched by the engine (never by the webview) from the tile
//! server the user configured, only while the user has online tiles enabled, and kept in a disk
//! cache bounded by total size, so that a map once seen still shows offline.
//!
//! The URL template is the one Leaflet and tile providers use: `https://host/{z}/{x}/{y}.png`,
//! optionally with `{s}` (subdomains a, b, c) and `{r}` (retina suffix, left empty). Only
//! `https://` is accepted, except for a tile server on this machine (`localhost`, `127.0.0.1`,
//! `[::1]`), whose traffic never leaves it: tiles reveal which places the user looks at.

use std::path::{Path, PathBuf};
use std::sync::Mutex;
use std::time::{Duration, SystemTime};

use serde::{Deserialize, Serialize};

use crate::catalog::Catalog;

/// The catalog setting holding [`TileSettings`].
pub const SETTING_KEY: &str = "app.tiles";

/// The highest zoom level served (tile servers stop at 19 to 22).
pub const MAX_ZOOM: u8 = 22;

/// The cache's default bound: about 10,000 typical 25 KB tiles.
pub const DEFAULT_CACHE_BYTES: u64 = 256 << 20;

/// A larger response is not a map tile.
const MAX_TILE_BYTES: u64 = 4 << 20;

/// Tile servers' usage policies ask for an agent that names the application.
const USER_AGENT: &str = concat!(
    "Pinpoint/",
    env!("CARGO_PKG_VERSION"),
    " (desktop photo organizer; map tiles for the user's own map view)"
);

#[derive(Debug, thiserror::Error)]
pub enum TileError {
    #[error("online map tiles are off (enable them in Settings, Map)")]
    Disabled,

    #[error("{template}: http:// tile servers are refused, because the tiles (and the places you look at) would travel unencrypted; use the server's https:// address")]
    Insecure { template: String },

    #[error("{template:?} is not a tile URL template: {reason}")]
    BadTemplate { template: String, reason: String },

    #[error("there is no tile {z}/{x}/{y}: zoom goes from 0 to {max}, x and y from 0 to 2^zoom - 1", max = MAX_ZOOM)]
    OutOfRange { z: u32, x: u32, y: u32 },

    #[error("{url}: {reason}")]
    Fetch { url: String, reason: String },

    #[error("{url}: the tile server answered HTTP {status}")]
    Status { url: String, status: u16 },

    #[error("{url}: the tile server sent something that is not a PNG, JPEG or WebP image")]
    NotAnImage { url: String },

    #[error("tile cache {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
}

fn io(path: &Path) -> impl FnOnce(std::io::Error) -> TileError + '_ {
    move |source| TileError::Io {
        path: path.to_path_buf(),
        source,
    }
}

/// What the user set in Settings, Map.
#[derive(Serialize, Deserialize, Clone, Debug, PartialEq)]
#[serde(rename_all = "camelCase")]
pub struct TileSettings {
    pub enabled: bool,
    pub url: String,
    pub attribution: String,
}

impl Default for TileSettings {
    fn default() -> Self {
        TileSettings {
            enabled: false,
            url: "https://tile.openstreetmap.org/{z}/{x}/{y}.png".into(),
            attribution: "© OpenStreetMap contributors".into(),
        }
    }
}

impl TileSettings {
    /// The catalog's settings (the defaults, tiles off, when none were saved).
    pub fn load(catalog: &Catalog) -> crate::Result<TileSettings> {
        Ok(catalog
            .setting(SETTING_KEY)?
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default())
    }

    /// Checks the template (whether or not tiles are enabled: an http:// address is refused, not
    /// kept for later) and saves the settings.
    pub fn save(&self, catalog: &Catalog) -> crate::Result<()> {
        if self.enabled || !self.url.is_empty() {
            TileTemplate::parse(&self.url)?;
        }
        catalog.set_setting(
            SETTING_KEY,
            &serde_json::to_value(self).expect("tile settings serialise"),
        )
    }
}

/// A checked tile URL template.
#[derive(Debug, Clone, PartialEq)]
pub struct TileTemplate(String);

impl TileTemplate {
    pub fn parse(template: &str) -> Result<TileTemplate, TileError> {
        let bad = |reason: &str| TileError::BadTemplate {
            template: template.to_string(),
            reason: reason.to_string(),
        };
        let t = template.trim();
        let (scheme, rest) = t
            .split_once("://")
            .ok_or_else(|| bad("it must start with https://"))?;
        let authority = rest.split('/').next().unwrap_or("");
        let host = host_of(authority);
        let loopback = matches!(host, "localhost" | "127.0.0.1" | "[::1]");
        match scheme.to_ascii_lowercase().as_str() {
            "https" => {}
            "http" if loopback => {}
            "http" => {
                return Err(TileError::Insecure {
                    template: t.to_string(),
                })
            }
            _ => return Err(bad("it must start with https://")),
        }
        if host.is_empty() || authority.contains('@') {
            return Err(bad("it names no server"));
        }
        if t.chars().any(|c| c.is_whitespace() || c.is_control()) {
            return Err(bad("it contains spaces"));
        }
        for p in ["{z}", "{x}", "{y}"] {
            if !t.contains(p) {
                return Err(bad("it needs the {z}, {x} and {y} placeholders"));
            }
        }
        // Only the placeholders Leaflet's templates use; anything else would be sent literally.
        let mut rest = t;
        while let Some(open) = rest.find('{') {
            let close = rest[open..]
                .find('}')
                .ok_or_else(|| bad("a { is not closed"))?;
            let name = &rest[open + 1..open + close];
            if !matches!(name, "z" | "x" | "y" | "s" | "r") {
                return Err(bad(&format!(
                    "unknown placeholder {{{name}}} (known: {{z}}, {{x}}, {{y}}, {{s}}, {{r}})"
                )));
            }
            rest = &rest[open + close + 1..];
        }
        Ok(TileTemplate(t.to_string()))
    }

    pub fn as_str(&self) -> &str {
        &self.0
    }

    /// The URL of one tile.
    pub fn url(&self, tile: TileId) -> String {
        let subdomain = ["a", "b", "c"][((tile.x + tile.y) % 3) as usize];
        self.0
            .replace("{z}", &tile.z.to_string())
            .replace("{x}", &tile.x.to_string())
            .replace("{y}", &tile.y.to_string())
            .replace("{s}", subdomain)
            .replace("{r}", "")
    }
}

/// The host of `host[:port]` (an IPv6 address keeps its brackets).
fn host_of(authority: &str) -> &str {
    if authority.starts_with('[') {
        return authority
            .find(']')
            .map_or(authority, |end| &authority[..=end]);
    }
    authority.split(':').next().unwrap_or("")
}

/// One tile of the Web Mercator pyramid, checked to exist.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct TileId {
    pub z: u8,
    pub x: u32,
    pub y: u32,
}

impl TileId {
    pub fn new(z: u32, x: u32, y: u32) -> Result<TileId, TileError> {
        if z > MAX_ZOOM as u32 || x >= 1 << z || y >= 1 << z {
            return Err(TileError::OutOfRange { z, x, y });
        }
        Ok(TileId { z: z as u8, x, y })
    }
}

/// A tile's image.
#[derive(Debug, Clone)]
pub struct Tile {
    pub bytes: Vec<u8>,
    pub content_type: &'static str,
    /// Served from the disk cache rather than fetched.
    pub cached: bool,
}

/// The image type from the bytes themselves (a server's error page must not be cached as a tile).
fn image_type(bytes: &[u8]) -> Option<&'static str> {
    if bytes.starts_with(b"\x89PNG\r\n\x1a\n") {
        Some("image/png")
    } else if bytes.starts_with(&[0xFF, 0xD8, 0xFF]) {
        Some("image/jpeg")
    } else if bytes.len() >= 12 && &bytes[..4] == b"RIFF" && &bytes[8..12] == b"WEBP" {
        Some("image/webp")
    } else {
        None
    }
}

/// Fetches tiles and keeps them on disk, least recently used evicted first once the cache holds
/// more than its bound. Safe to share between threads (the app serves tiles in parallel).
pub struct TileCache {
    dir: PathBuf,
    max_bytes: u64,
    /// The bytes the cache holds, counted on first use.
    total: Mutex<Option<u64>>,
    agent: ureq::Agent,
}

impl TileCache {
    pub fn new(dir: impl Into<PathBuf>, max_bytes: u64) -> TileCache {
        TileCache {
            dir: dir.into(),
            max_bytes,
            total: Mutex::new(None),
            agent: ureq::Agent::config_builder()
                .http_status_as_error(false)
                .user_agent(USER_AGENT)
                .timeout_connect(Some(Duration::from_secs(10)))
                .timeout_global(Some(Duration::from_secs(30)))
                .build()
                .into(),
        }
    }

    /// The cache of a catalog: `<catalog>.cache/tiles/`, bounded by [`DEFAULT_CACHE_BYTES`].
    pub fn for_catalog(catalog: &Catalog) -> TileCache {
        TileCache::new(catalog.cache_dir().join("tiles"), DEFAULT_CACHE_BYTES)
    }

    pub fn dir(&self) -> &Path {
        &self.dir
    }

    /// One tile under `settings`: from the cache when it holds it, else from the tile server.
    /// Nothing is read or fetched while tiles are off.
    pub fn tile(&self, settings: &TileSettings, tile: TileId) -> Result<Tile, TileError> {
        if !settings.enabled {
            return Err(TileError::Disabled);
        }
        let template = TileTemplate::parse(&settings.url)?;
        let path = self.path_of(&template, tile);
        if let Ok(bytes) = std::fs::read(&path) {
            if let Some(content_type) = image_type(&bytes) {
                // Reading counts as use: the modification time orders the eviction.
                if let Ok(f) = std::fs::File::options().append(true).open(&path) {
                    let _ = f.set_modified(SystemTime::now());
                }
                return Ok(Tile {
                    bytes,
                    content_type,
                    cached: true,
                });
            }
        }
        let url = template.url(tile);
        let bytes = self.fetch(&url)?;
        let content_type = image_type(&bytes).ok_or(TileError::NotAnImage { url })?;
        self.store(&path, &bytes)?;
        Ok(Tile {
            bytes,
            content_type,
            cached: false,
        })
    }

    /// `<dir>/<template hash>/<z>/<x>/<y>`: tiles of different servers never mix.
    fn path_of(&self, template: &TileTemplate, tile: TileId) -> PathBuf {
        let source = blake3::hash(template.as_str().as_bytes()).to_hex();
        self.dir
            .join(&source[..16])
            .join(tile.z.to_string())
            .join(tile.x.to_string())
            .join(tile.y.to_string())
    }

    fn fetch(&self, url: &str) -> Result<Vec<u8>, TileError> {
        let fetch_error = |e: ureq::Error| TileError::Fetch {
            url: url.to_string(),
            reason: e.to_string(),
        };
        let mut resp = self.agent.get(url).call().map_err(fetch_error)?;
        let status = resp.status().as_u16();
        if status != 200 {
            return Err(TileError::Status {
                url: url.to_string(),
                status,
            });
        }
        resp.body_mut()
            .with_config()
            .limit(MAX_TILE_BYTES)
            .read_to_vec()
            .map_err(fetch_error)
    }

    /// Writes a tile (temporary file, then rename: a reader never sees half a tile) and evicts
    /// the least recently used tiles when the cache went over its bound.
    fn store(&self, path: &Path, bytes: &[u8]) -> Result<(), TileError> {
        let parent = path.parent().expect("a tile path has a folder");
        std::fs::create_dir_all(parent).map_err(io(parent))?;
        let replaced = std::fs::metadata(path).map(|m| m.len()).unwrap_or(0);
        let mut tmp = tempfile::NamedTempFile::new_in(parent).map_err(io(parent))?;
        std::io::Write::write_all(&mut tmp, bytes).map_err(io(path))?;
        tmp.persist(path).map_err(|e| TileError::Io {
            path: path.to_path_buf(),
            source: e.error,
        })?;
        let mut total = self.total.lock().unwrap_or_else(|e| e.into_inner());
        let now = match *total {
            Some(t) => t.saturating_sub(replaced) + bytes.len() as u64,
            None => self.scan()?.iter().map(|f| f.1).sum::<u64>(),
        };
        *total = Some(now);
        if now > self.max_bytes {
            *total = Some(self.evict()?);
        }
        Ok(())
    }

    /// Every cached tile: (path, bytes, last use).
    fn scan(&self) -> Result<Vec<(PathBuf, u64, SystemTime)>, TileError> {
        let mut files = Vec::new();
        if !self.dir.exists() {
            return Ok(files);
        }
        for entry in walkdir::WalkDir::new(&self.dir) {
            let entry = entry.map_err(|e| TileError::Io {
                path: e.path().unwrap_or(&self.dir).to_path_buf(),
                source: e.into(),
            })?;
            if !entry.file_type().is_file() {
                continue;
            }
            // Another thread's temporary file, or a tile evicted meanwhile: not counted.
            let Ok(meta) = entry.metadata() else { continue };
            let used = meta.modified().unwrap_or(SystemTime::UNIX_EPOCH);
            files.push((entry.into_path(), meta.len(), used));
        }
        Ok(files)
    }

    /// Removes the least recently used tiles until the cache is at 90% of its bound (so that
    /// the next few tiles do not each trigger a pass); returns the bytes left.
    fn evict(&self) -> Result<u64, TileError> {
        let mut files = self.scan()?;
        files.sort_by_key(|f| f.2);
        let mut total: u64 = files.iter().map(|f| f.1).sum();
        let target = self.max_bytes / 10 * 9;
        for (path, len, _) in files {
            if total <= target {
                break;
            }
            match std::fs::remove_file(&path) {
                Ok(()) => total -= len,
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => total -= len,
                Err(e) => return Err(io(&path)(e)),
            }
        }
        Ok(total)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn templates_must_be_https_with_the_placeholders() {
        let ok = TileTemplate::parse("https://{s}.tile.example.org/{z}/{x}/{y}{r}.png").unwrap();
        assert_eq!(
            ok.url(TileId::new(3, 4, 2).unwrap()),
            "https://a.tile.example.org/3/4/2.png"
        );
        assert!(matches!(
            TileTemplate::parse("http://tile.example.org/{z}/{x}/{y}.png"),
            Err(TileError::Insecure { .. })
        ));
        assert!(matches!(
            TileTemplate::parse("HTTP://tile.example.org/{z}/{x}/{y}.png"),
            Err(TileError::Insecure { .. })
        ));
        // A server on this machine: nothing travels over a network.
        for local in [
            "http://127.0.0.1:8080/{z}/{x}/{y}.png",
            "http://localhost/{z}/{x}/{y}.png",
            "http://[::1]:9000/{z}/{x}/{y}.png",
        ] {
            TileTemplate::parse(local).unwrap();
        }
        // A look-alike of a loopback name is a remote host.
        assert!(matches!(
            TileTemplate::parse("http://localhost.example.org/{z}/{x}/{y}.png"),
            Err(TileError::Insecure { .. })
        ));
        for bad in [
            "file:///etc/{z}/{x}/{y}",
            "https://tile.example.org/{z}/{x}.png",
            "https:///{z}/{x}/{y}.png",
            "https://user@tile.example.org/{z}/{x}/{y}.png",
            "https://tile.example.org/{z}/{x}/{y}.png?key={apikey}",
            "https://tile.example.org/{z}/{x}/{y} .png",
            "tile.example.org/{z}/{x}/{y}.png",
        ] {
            assert!(
                matches!(TileTemplate::parse(bad), Err(TileError::BadTemplate { .. })),
                "{bad}"
            );
        }
    }

    #[test]
    fn tile_coordinates_must_exist() {
        assert!(TileId::new(0, 0, 0).is_ok());
        assert!(TileId::new(1, 1, 1).is_ok());
        assert!(TileId::new(22, (1 << 22) - 1, 0).is_ok());
        for (z, x, y) in [(0, 1, 0), (0, 0, 1), (3, 8, 0), (23, 0, 0), (40, 0, 0)] {
            assert!(
                matches!(TileId::new(z, x, y), Err(TileError::OutOfRange { .. })),
                "{z}/{x}/{y}"
            );
        }
    }
}
