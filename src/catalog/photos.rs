//! Photo rows: reading them for the CLI and the app, writing them for the scanner.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use chrono::NaiveDateTime;
use rusqlite::{params, Connection, OptionalExtension, Row, Transaction};
use serde::{Serialize, Serializer};

use super::{now_unix, path_to_str, Catalog};
use crate::error::Result;
use crate::geo::GeoPoint;
use crate::library::{CaptureTime, Located, LocationSource, PhotoFormat, PhotoMetadata};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum PhotoStatus {
    Present,
    Missing,
}

/// A photo as the catalog knows it.
#[derive(Debug, Clone, Serialize)]
pub struct PhotoRecord {
    pub id: i64,
    pub root_id: i64,
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    #[serde(serialize_with = "hex")]
    pub content_hash: [u8; 32],
    pub format: PhotoFormat,
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub orientation: Option<u8>,
    /// A video's length in seconds.
    pub duration_s: Option<f64>,
    #[serde(serialize_with = "iso_time")]
    pub taken_at: Option<CaptureTime>,
    pub gps_time_utc: Option<NaiveDateTime>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub gps: Option<GeoPoint>,
    pub gps_source: Option<LocationSource>,
    pub sidecar_path: Option<PathBuf>,
    /// The file's own EXIF still holds another position than the sidecar's chosen one.
    pub embedded_gps_stale: bool,
    pub warnings: Vec<String>,
    pub status: PhotoStatus,
    pub missing_since: Option<i64>,
    pub first_seen_at: i64,
    pub updated_at: i64,
}

impl PhotoRecord {
    pub fn location(&self) -> Option<Located> {
        Some(Located {
            point: self.gps?,
            source: self.gps_source?,
        })
    }
}

fn hex<S: Serializer>(h: &[u8; 32], s: S) -> std::result::Result<S::Ok, S::Error> {
    s.serialize_str(&h.iter().map(|b| format!("{b:02x}")).collect::<String>())
}

fn iso_time<S: Serializer>(t: &Option<CaptureTime>, s: S) -> std::result::Result<S::Ok, S::Error> {
    match t {
        Some(t) => s.serialize_str(&t.to_iso()),
        None => s.serialize_none(),
    }
}

/// Which photos to list.
#[derive(Debug, Clone, Default)]
pub struct PhotoFilter {
    /// `Some(true)`: only photos with a location; `Some(false)`: only those without.
    pub tagged: Option<bool>,
    /// `None` lists present photos; `Some(Missing)` lists missing ones.
    pub status: Option<PhotoStatus>,
    pub root_id: Option<i64>,
    /// `Some(true)`: only videos; `Some(false)`: only still photos.
    pub videos: Option<bool>,
    pub limit: Option<usize>,
    pub offset: usize,
}

/// A row's change-detection fingerprint, loaded for every photo of a root before a scan.
#[derive(Debug, Clone)]
pub struct PhotoFingerprint {
    pub id: i64,
    pub content_hash: [u8; 32],
    pub size: u64,
    pub mtime_ns: i64,
    pub sidecar_path: Option<PathBuf>,
    pub sidecar_mtime_ns: Option<i64>,
    pub status: PhotoStatus,
}

/// What a scan writes for one file.
pub struct PhotoUpdate<'a> {
    pub root_id: i64,
    pub path: &'a Path,
    pub metadata: &'a PhotoMetadata,
    pub sidecar_mtime_ns: Option<i64>,
}

pub(super) const COLUMNS: &str = "id, root_id, path, size, mtime_ns, content_hash, format, width, height, orientation, \
    taken_at, taken_at_offset_min, gps_time_utc, make, model, lat, lon, alt, gps_source, sidecar_path, warnings, \
    status, missing_since, first_seen_at, updated_at, embedded_gps_stale, duration_s";

pub(super) fn row_to_photo(r: &Row) -> rusqlite::Result<PhotoRecord> {
    let content_hash = blob32(r.get_ref(5)?.as_blob()?);
    let format: String = r.get(6)?;
    let taken_at: Option<String> = r.get(10)?;
    let offset: Option<i32> = r.get(11)?;
    let gps_time: Option<String> = r.get(12)?;
    let lat: Option<f64> = r.get(15)?;
    let lon: Option<f64> = r.get(16)?;
    let alt: Option<f64> = r.get(17)?;
    let source: Option<String> = r.get(18)?;
    let warnings: Option<String> = r.get(20)?;
    let status: String = r.get(21)?;
    Ok(PhotoRecord {
        id: r.get(0)?,
        root_id: r.get(1)?,
        path: PathBuf::from(r.get::<_, String>(2)?),
        size: r.get::<_, i64>(3)? as u64,
        mtime_ns: r.get(4)?,
        content_hash,
        format: PhotoFormat::parse(&format).unwrap_or(PhotoFormat::Jpeg),
        width: r.get(7)?,
        height: r.get(8)?,
        orientation: r.get(9)?,
        taken_at: taken_at
            .and_then(|t| CaptureTime::parse_iso(&t))
            .map(|t| CaptureTime {
                local: t.local,
                offset_minutes: offset,
            }),
        gps_time_utc: gps_time
            .and_then(|t| NaiveDateTime::parse_from_str(&t, "%Y-%m-%dT%H:%M:%S%.f").ok()),
        make: r.get(13)?,
        model: r.get(14)?,
        gps: match (lat, lon) {
            (Some(lat), Some(lon)) => Some(GeoPoint { lat, lon, alt }),
            _ => None,
        },
        gps_source: source.as_deref().and_then(LocationSource::parse),
        sidecar_path: r.get::<_, Option<String>>(19)?.map(PathBuf::from),
        embedded_gps_stale: r.get(25)?,
        duration_s: r.get(26)?,
        warnings: warnings
            .map(|w| w.lines().map(str::to_string).collect())
            .unwrap_or_default(),
        status: if status == "missing" {
            PhotoStatus::Missing
        } else {
            PhotoStatus::Present
        },
        missing_since: r.get(22)?,
        first_seen_at: r.get(23)?,
        updated_at: r.get(24)?,
    })
}

impl Catalog {
    pub fn photos(&self, filter: &PhotoFilter) -> Result<Vec<PhotoRecord>> {
        let status = match filter.status {
            Some(PhotoStatus::Missing) => "missing",
            _ => "present",
        };
        let tagged = filter.tagged.map(|t| t as i64);
        let sql = format!(
            "SELECT {COLUMNS} FROM photos WHERE status = ?1 \
             AND (?2 IS NULL OR (lat IS NOT NULL) = ?2) AND (?3 IS NULL OR root_id = ?3) \
             AND (?6 IS NULL OR (format = 'video') = ?6) \
             ORDER BY path LIMIT ?4 OFFSET ?5"
        );
        let mut stmt = self.conn().prepare(&sql)?;
        let limit = filter.limit.map(|l| l as i64).unwrap_or(-1);
        let videos = filter.videos.map(|v| v as i64);
        let rows = stmt.query_map(
            params![
                status,
                tagged,
                filter.root_id,
                limit,
                filter.offset as i64,
                videos
            ],
            row_to_photo,
        )?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn photo(&self, id: i64) -> Result<Option<PhotoRecord>> {
        let sql = format!("SELECT {COLUMNS} FROM photos WHERE id = ?1");
        Ok(self.conn().query_row(&sql, [id], row_to_photo).optional()?)
    }

    /// The photo at `path` (canonicalised when it exists, so relative paths work).
    pub fn photo_by_path(&self, path: &Path) -> Result<Option<PhotoRecord>> {
        let canonical = std::fs::canonicalize(path).unwrap_or_else(|_| path.to_path_buf());
        let sql = format!("SELECT {COLUMNS} FROM photos WHERE path = ?1");
        for candidate in [canonical.as_path(), path] {
            if let Some(p) = candidate.to_str() {
                if let Some(rec) = self.conn().query_row(&sql, [p], row_to_photo).optional()? {
                    return Ok(Some(rec));
                }
            }
        }
        Ok(None)
    }

    /// Counts of present photos: (all, with location), and missing photos.
    pub fn photo_counts(&self) -> Result<(u64, u64, u64)> {
        Ok(self.conn().query_row(
            "SELECT COUNT(*) FILTER (WHERE status = 'present'),
                    COUNT(*) FILTER (WHERE status = 'present' AND lat IS NOT NULL),
                    COUNT(*) FILTER (WHERE status = 'missing') FROM photos",
            [],
            |r| {
                Ok((
                    r.get::<_, i64>(0)? as u64,
                    r.get::<_, i64>(1)? as u64,
                    r.get::<_, i64>(2)? as u64,
                ))
            },
        )?)
    }
}

// ---- scanner writes ----

pub(crate) fn fingerprints(
    conn: &Connection,
    root_id: i64,
) -> Result<HashMap<PathBuf, PhotoFingerprint>> {
    let mut stmt = conn.prepare(
        "SELECT path, id, size, mtime_ns, sidecar_path, sidecar_mtime_ns, status, content_hash FROM photos
         WHERE root_id = ?1",
    )?;
    let rows = stmt.query_map([root_id], |r| {
        Ok((
            PathBuf::from(r.get::<_, String>(0)?),
            PhotoFingerprint {
                id: r.get(1)?,
                content_hash: blob32(r.get_ref(7)?.as_blob()?),
                size: r.get::<_, i64>(2)? as u64,
                mtime_ns: r.get(3)?,
                sidecar_path: r.get::<_, Option<String>>(4)?.map(PathBuf::from),
                sidecar_mtime_ns: r.get(5)?,
                status: if r.get::<_, String>(6)? == "missing" {
                    PhotoStatus::Missing
                } else {
                    PhotoStatus::Present
                },
            },
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// (size, mtime) of the unreadable files remembered under a root.
pub(crate) fn unreadable_fingerprints(
    conn: &Connection,
    root_id: i64,
) -> Result<HashMap<PathBuf, (u64, i64)>> {
    let mut stmt =
        conn.prepare("SELECT path, size, mtime_ns FROM unreadable_files WHERE root_id = ?1")?;
    let rows = stmt.query_map([root_id], |r| {
        Ok((
            PathBuf::from(r.get::<_, String>(0)?),
            (r.get::<_, i64>(1)? as u64, r.get(2)?),
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

/// Missing photos of any root: (content hash, id, path). Candidates for "moved here".
pub(crate) fn missing_photos(conn: &Connection) -> Result<Vec<([u8; 32], i64, PathBuf)>> {
    let mut stmt =
        conn.prepare("SELECT content_hash, id, path FROM photos WHERE status = 'missing'")?;
    let rows = stmt.query_map([], |r| {
        Ok((
            blob32(r.get_ref(0)?.as_blob()?),
            r.get(1)?,
            PathBuf::from(r.get::<_, String>(2)?),
        ))
    })?;
    Ok(rows.collect::<rusqlite::Result<_>>()?)
}

fn blob32(b: &[u8]) -> [u8; 32] {
    let mut out = [0u8; 32];
    if b.len() == 32 {
        out.copy_from_slice(b);
    }
    out
}

fn location_columns(
    md: &PhotoMetadata,
) -> (Option<f64>, Option<f64>, Option<f64>, Option<&'static str>) {
    match &md.location {
        Some(l) => (
            Some(l.point.lat),
            Some(l.point.lon),
            l.point.alt,
            Some(l.source.as_str()),
        ),
        None => (None, None, None, None),
    }
}

pub(crate) fn insert_photo(tx: &Transaction, u: &PhotoUpdate) -> Result<i64> {
    let md = u.metadata;
    let now = now_unix();
    let (lat, lon, alt, source) = location_columns(md);
    tx.prepare_cached(
        "INSERT INTO photos (root_id, path, size, mtime_ns, content_hash, format, width, height, orientation,
            taken_at, taken_at_offset_min, gps_time_utc, make, model, lat, lon, alt, gps_source, sidecar_path,
            sidecar_mtime_ns, warnings, status, first_seen_at, updated_at, embedded_gps_stale, duration_s)
         VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12, ?13, ?14, ?15, ?16, ?17, ?18, ?19, ?20, ?21,
            'present', ?22, ?22, ?23, ?24)",
    )?
    .execute(params![
        u.root_id,
        path_to_str(u.path)?,
        md.size as i64,
        md.mtime_ns,
        &md.content_hash[..],
        md.format.as_str(),
        md.width,
        md.height,
        md.orientation,
        md.taken_at.map(|t| t.local.format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
        md.taken_at.and_then(|t| t.offset_minutes),
        md.gps_time_utc.map(|t| t.format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
        md.make,
        md.model,
        lat,
        lon,
        alt,
        source,
        md.sidecar.as_deref().map(path_to_str).transpose()?,
        u.sidecar_mtime_ns,
        (!md.warnings.is_empty()).then(|| md.warnings.join("\n")),
        now,
        md.embedded_gps_stale,
        md.duration_s,
    ])?;
    Ok(tx.last_insert_rowid())
}

/// Rewrites a photo row from a fresh read, keeping its id (and so everything attached to it).
/// A location the user set or accepted in Pinpoint keeps that source when the file now carries
/// the same position (Pinpoint wrote it there).
pub(crate) fn update_photo(tx: &Transaction, id: i64, u: &PhotoUpdate) -> Result<()> {
    let md = u.metadata;
    let (lat, lon, alt, mut source) = location_columns(md);
    let previous: Option<(Option<f64>, Option<f64>, Option<String>)> = tx
        .prepare_cached("SELECT lat, lon, gps_source FROM photos WHERE id = ?1")?
        .query_row([id], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))
        .optional()?;
    if let (Some((Some(plat), Some(plon), Some(psrc))), Some(lat), Some(lon)) = (previous, lat, lon)
    {
        if (psrc == "user" || psrc == "proposal")
            && (plat - lat).abs() < 1e-7
            && (plon - lon).abs() < 1e-7
        {
            source = Some(if psrc == "user" { "user" } else { "proposal" });
        }
    }
    tx.prepare_cached(
        "UPDATE photos SET root_id = ?2, path = ?3, size = ?4, mtime_ns = ?5, content_hash = ?6, format = ?7,
            width = ?8, height = ?9, orientation = ?10, taken_at = ?11, taken_at_offset_min = ?12,
            gps_time_utc = ?13, make = ?14, model = ?15, lat = ?16, lon = ?17, alt = ?18, gps_source = ?19,
            sidecar_path = ?20, sidecar_mtime_ns = ?21, warnings = ?22, status = 'present', missing_since = NULL,
            updated_at = ?23, embedded_gps_stale = ?24, duration_s = ?25
         WHERE id = ?1",
    )?
    .execute(params![
        id,
        u.root_id,
        path_to_str(u.path)?,
        md.size as i64,
        md.mtime_ns,
        &md.content_hash[..],
        md.format.as_str(),
        md.width,
        md.height,
        md.orientation,
        md.taken_at.map(|t| t.local.format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
        md.taken_at.and_then(|t| t.offset_minutes),
        md.gps_time_utc.map(|t| t.format("%Y-%m-%dT%H:%M:%S%.f").to_string()),
        md.make,
        md.model,
        lat,
        lon,
        alt,
        source,
        md.sidecar.as_deref().map(path_to_str).transpose()?,
        u.sidecar_mtime_ns,
        (!md.warnings.is_empty()).then(|| md.warnings.join("\n")),
        now_unix(),
        md.embedded_gps_stale,
        md.duration_s,
    ])?;
    Ok(())
}

pub(crate) fn mark_missing(tx: &Transaction, ids: &[i64]) -> Result<()> {
    let now = now_unix();
    let mut stmt = tx.prepare_cached(
        "UPDATE photos SET status = 'missing', missing_since = ?2, updated_at = ?2 WHERE id = ?1 AND status = 'present'",
    )?;
    for id in ids {
        stmt.execute(params![id, now])?;
    }
    Ok(())
}

pub(crate) fn record_unreadable(
    tx: &Transaction,
    root_id: i64,
    path: &Path,
    size: u64,
    mtime_ns: i64,
    reason: &str,
) -> Result<()> {
    tx.prepare_cached(
        "INSERT INTO unreadable_files (path, root_id, size, mtime_ns, reason, first_seen_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
         ON CONFLICT(path) DO UPDATE SET root_id = ?2, size = ?3, mtime_ns = ?4, reason = ?5",
    )?
    .execute(params![path_to_str(path)?, root_id, size as i64, mtime_ns, reason, now_unix()])?;
    Ok(())
}

pub(crate) fn forget_unreadable(tx: &Transaction, path: &Path) -> Result<()> {
    if let Some(p) = path.to_str() {
        tx.prepare_cached("DELETE FROM unreadable_files WHERE path = ?1")?
            .execute([p])?;
    }
    Ok(())
}

pub(crate) fn forget_unreadable_gone(
    tx: &Transaction,
    root_id: i64,
    seen: &dyn Fn(&Path) -> bool,
) -> Result<()> {
    let gone: Vec<String> = {
        let mut stmt = tx.prepare("SELECT path FROM unreadable_files WHERE root_id = ?1")?;
        let rows = stmt.query_map([root_id], |r| r.get::<_, String>(0))?;
        rows.collect::<rusqlite::Result<Vec<_>>>()?
            .into_iter()
            .filter(|p| !seen(Path::new(p)))
            .collect()
    };
    for p in gone {
        tx.execute("DELETE FROM unreadable_files WHERE path = ?1", [p])?;
    }
    Ok(())
}

impl Catalog {
    /// Rewrites a photo's row from a fresh read of its file (after Pinpoint wrote to it).
    pub fn update_photo_from(
        &mut self,
        id: i64,
        root_id: i64,
        path: &Path,
        md: &PhotoMetadata,
        sidecar_mtime_ns: Option<i64>,
    ) -> Result<()> {
        let tx = self.conn_mut().transaction()?;
        update_photo(
            &tx,
            id,
            &PhotoUpdate {
                root_id,
                path,
                metadata: md,
                sidecar_mtime_ns,
            },
        )?;
        tx.commit()?;
        Ok(())
    }

    /// Records who set a photo's current location (a user, an accepted proposal).
    pub fn set_location_source(&self, id: i64, source: LocationSource) -> Result<()> {
        self.conn().execute(
            "UPDATE photos SET gps_source = ?2 WHERE id = ?1 AND lat IS NOT NULL",
            params![id, source.as_str()],
        )?;
        Ok(())
    }
}
