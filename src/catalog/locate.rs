//! Proposals, suspicious tags, GPX tracks, calibrations and settings in the catalog.

use std::path::PathBuf;

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{now_unix, path_to_str, Catalog};
use crate::error::Result;

/// A proposal as stored: evidence and alternatives are JSON written by `locate`.
#[derive(Debug, Clone, Serialize)]
pub struct ProposalRow {
    pub photo_id: i64,
    pub path: PathBuf,
    pub model_hash: String,
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
    pub confidence: f64,
    pub sources: Vec<String>,
    pub evidence: serde_json::Value,
    pub alternatives: serde_json::Value,
    pub status: String,
    pub created_at: i64,
}

/// A tagged photo whose tag disagrees with its visual evidence.
#[derive(Debug, Clone, Serialize)]
pub struct SuspiciousRow {
    pub photo_id: i64,
    pub path: PathBuf,
    pub tag_lat: f64,
    pub tag_lon: f64,
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
    pub confidence: f64,
    pub distance_m: f64,
    pub evidence: serde_json::Value,
    pub status: String,
}

#[derive(Debug, Clone, Serialize)]
pub struct GpxTrackRow {
    pub id: i64,
    pub path: PathBuf,
    pub name: Option<String>,
    pub points: u64,
    pub start_ms: i64,
    pub end_ms: i64,
}

fn json(text: String) -> serde_json::Value {
    serde_json::from_str(&text).unwrap_or(serde_json::Value::Null)
}

impl Catalog {
    /// Replaces the proposals of the given photos. A rejected proposal stays rejected when the new
    /// one lands within its radius: the user already said no to that place.
    pub fn save_proposals(&mut self, rows: &[(ProposalRow, [u8; 32])]) -> Result<()> {
        let tx = self.conn_mut().transaction()?;
        {
            let mut prev = tx.prepare_cached(
                "SELECT lat, lon, radius_m, status FROM proposals WHERE photo_id = ?1",
            )?;
            let mut put = tx.prepare_cached(
                "INSERT INTO proposals (photo_id, model_hash, content_hash, lat, lon, radius_m, confidence, sources, evidence,
                    alternatives, status, created_at)
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)
                 ON CONFLICT(photo_id) DO UPDATE SET model_hash = ?2, content_hash = ?3, lat = ?4, lon = ?5, radius_m = ?6,
                    confidence = ?7, sources = ?8, evidence = ?9, alternatives = ?10, status = ?11, created_at = ?12,
                    decided_at = CASE WHEN ?11 = 'pending' THEN NULL ELSE decided_at END",
            )?;
            for (r, content) in rows {
                let old: Option<(f64, f64, f64, String)> = prev
                    .query_row([r.photo_id], |x| {
                        Ok((x.get(0)?, x.get(1)?, x.get(2)?, x.get(3)?))
                    })
                    .optional()?;
                let status = match old {
                    Some((lat, lon, radius, s))
                        if s == "rejected"
                            && crate::geo::haversine_m(lat, lon, r.lat, r.lon)
                                <= radius.max(r.radius_m) =>
                    {
                        "rejected"
                    }
                    _ => "pending",
                };
                put.execute(params![
                    r.photo_id,
                    r.model_hash,
                    &content[..],
                    r.lat,
                    r.lon,
                    r.radius_m,
                    r.confidence.clamp(0.0, 1.0),
                    r.sources.join(","),
                    r.evidence.to_string(),
                    r.alternatives.to_string(),
                    status,
                    now_unix()
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Drops the pending proposals of these photos (no evidence for them any more).
    pub fn delete_pending_proposals(&self, photo_ids: &[i64]) -> Result<()> {
        let mut stmt = self
            .conn()
            .prepare_cached("DELETE FROM proposals WHERE photo_id = ?1 AND status = 'pending'")?;
        for id in photo_ids {
            stmt.execute([id])?;
        }
        Ok(())
    }

    /// Drops proposals of photos that have a location now, are missing, or changed since.
    pub fn prune_proposals(&self) -> Result<usize> {
        Ok(self.conn().execute(
            "DELETE FROM proposals WHERE photo_id IN (SELECT p.id FROM photos p JOIN proposals q ON q.photo_id = p.id
               WHERE (p.lat IS NOT NULL AND q.status != 'accepted') OR p.status = 'missing' OR p.content_hash != q.content_hash)",
            [],
        )?)
    }

    /// Proposals, best first. `status` filters (pending, accepted, rejected); `min_confidence` too.
    pub fn proposals(&self, status: Option<&str>, min_confidence: f64) -> Result<Vec<ProposalRow>> {
        let mut stmt = self.conn().prepare(
            "SELECT q.photo_id, p.path, q.model_hash, q.lat, q.lon, q.radius_m, q.confidence, q.sources, q.evidence,
                    q.alternatives, q.status, q.created_at
             FROM proposals q JOIN photos p ON p.id = q.photo_id
             WHERE (?1 IS NULL OR q.status = ?1) AND q.confidence >= ?2
             ORDER BY q.confidence DESC, p.path",
        )?;
        let rows = stmt.query_map(params![status, min_confidence], |r| {
            Ok(ProposalRow {
                photo_id: r.get(0)?,
                path: PathBuf::from(r.get::<_, String>(1)?),
                model_hash: r.get(2)?,
                lat: r.get(3)?,
                lon: r.get(4)?,
                radius_m: r.get(5)?,
                confidence: r.get(6)?,
                sources: r
                    .get::<_, String>(7)?
                    .split(',')
                    .filter(|s| !s.is_empty())
                    .map(str::to_string)
                    .collect(),
                evidence: json(r.get(8)?),
                alternatives: json(r.get(9)?),
                status: r.get(10)?,
                created_at: r.get(11)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn proposal(&self, photo_id: i64) -> Result<Option<ProposalRow>> {
        Ok(self
            .proposals(None, 0.0)?
            .into_iter()
            .find(|p| p.photo_id == photo_id))
    }

    pub fn set_proposal_status(&self, photo_id: i64, status: &str) -> Result<bool> {
        let n = self.conn().execute(
            "UPDATE proposals SET status = ?2, decided_at = CASE WHEN ?2 = 'pending' THEN NULL ELSE ?3 END WHERE photo_id = ?1",
            params![photo_id, status, now_unix()],
        )?;
        Ok(n > 0)
    }

    // ---- suspicious tags ----

    /// Replaces the suspicious-tag list for a model with `rows` (keeping a user's "keep" decisions
    /// for tags that have not changed).
    pub fn save_suspicious(&mut self, model_hash: &str, rows: &[SuspiciousRow]) -> Result<()> {
        let tx = self.conn_mut().transaction()?;
        let kept: Vec<(i64, f64, f64)> = {
            let mut stmt = tx.prepare(
                "SELECT photo_id, tag_lat, tag_lon FROM suspicious_tags WHERE status = 'kept'",
            )?;
            let v = stmt
                .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?
                .collect::<rusqlite::Result<_>>()?;
            v
        };
        tx.execute(
            "DELETE FROM suspicious_tags WHERE status = 'open' OR model_hash != ?1",
            [model_hash],
        )?;
        {
            let mut put = tx.prepare_cached(
                "INSERT OR REPLACE INTO suspicious_tags (photo_id, model_hash, tag_lat, tag_lon, lat, lon, radius_m, confidence,
                    distance_m, evidence, status, created_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10, ?11, ?12)",
            )?;
            for r in rows {
                let status = if kept.iter().any(|(id, la, lo)| {
                    *id == r.photo_id
                        && (la - r.tag_lat).abs() < 1e-9
                        && (lo - r.tag_lon).abs() < 1e-9
                }) {
                    "kept"
                } else {
                    "open"
                };
                put.execute(params![
                    r.photo_id,
                    model_hash,
                    r.tag_lat,
                    r.tag_lon,
                    r.lat,
                    r.lon,
                    r.radius_m,
                    r.confidence,
                    r.distance_m,
                    r.evidence.to_string(),
                    status,
                    now_unix()
                ])?;
            }
        }
        tx.commit()?;
        Ok(())
    }

    pub fn suspicious(&self, include_kept: bool) -> Result<Vec<SuspiciousRow>> {
        let mut stmt = self.conn().prepare(
            "SELECT s.photo_id, p.path, s.tag_lat, s.tag_lon, s.lat, s.lon, s.radius_m, s.confidence, s.distance_m, s.evidence, s.status
             FROM suspicious_tags s JOIN photos p ON p.id = s.photo_id
             WHERE (?1 OR s.status = 'open') AND p.status = 'present' ORDER BY s.confidence DESC",
        )?;
        let rows = stmt.query_map([include_kept], |r| {
            Ok(SuspiciousRow {
                photo_id: r.get(0)?,
                path: PathBuf::from(r.get::<_, String>(1)?),
                tag_lat: r.get(2)?,
                tag_lon: r.get(3)?,
                lat: r.get(4)?,
                lon: r.get(5)?,
                radius_m: r.get(6)?,
                confidence: r.get(7)?,
                distance_m: r.get(8)?,
                evidence: json(r.get(9)?),
                status: r.get(10)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn set_suspicious_status(&self, photo_id: i64, status: &str) -> Result<bool> {
        Ok(self.conn().execute(
            "UPDATE suspicious_tags SET status = ?2 WHERE photo_id = ?1",
            params![photo_id, status],
        )? > 0)
    }

    // ---- GPX ----

    /// Stores a track; returns its id, or `None` when the same file (by hash) is already imported.
    pub fn add_gpx_track(
        &mut self,
        path: &std::path::Path,
        sha256: &str,
        name: Option<&str>,
        points: &[crate::locate::gpx::TrackPoint],
    ) -> Result<Option<i64>> {
        let tx = self.conn_mut().transaction()?;
        let exists: Option<i64> = tx
            .query_row(
                "SELECT id FROM gpx_tracks WHERE sha256 = ?1",
                [sha256],
                |r| r.get(0),
            )
            .optional()?;
        if exists.is_some() {
            return Ok(None);
        }
        tx.execute(
            "INSERT INTO gpx_tracks (path, name, sha256, points, start_ms, end_ms, imported_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![
                path_to_str(path)?,
                name,
                sha256,
                points.len() as i64,
                points.first().map(|p| p.t_ms).unwrap_or(0),
                points.last().map(|p| p.t_ms).unwrap_or(0),
                now_unix()
            ],
        )?;
        let id = tx.last_insert_rowid();
        {
            let mut put = tx.prepare_cached("INSERT INTO gpx_points (track_id, t_ms, lat, lon, ele) VALUES (?1, ?2, ?3, ?4, ?5)")?;
            for p in points {
                put.execute(params![id, p.t_ms, p.lat, p.lon, p.ele])?;
            }
        }
        tx.commit()?;
        Ok(Some(id))
    }

    pub fn gpx_tracks(&self) -> Result<Vec<GpxTrackRow>> {
        let mut stmt = self.conn().prepare(
            "SELECT id, path, name, points, start_ms, end_ms FROM gpx_tracks ORDER BY start_ms",
        )?;
        let rows = stmt.query_map([], |r| {
            Ok(GpxTrackRow {
                id: r.get(0)?,
                path: PathBuf::from(r.get::<_, String>(1)?),
                name: r.get(2)?,
                points: r.get::<_, i64>(3)? as u64,
                start_ms: r.get(4)?,
                end_ms: r.get(5)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn remove_gpx_track(&self, id: i64) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM gpx_tracks WHERE id = ?1", [id])?
            > 0)
    }

    /// Every track point of every track, by time.
    pub fn gpx_points(&self) -> Result<Vec<crate::locate::gpx::TrackPoint>> {
        let mut stmt = self
            .conn()
            .prepare("SELECT t_ms, lat, lon, ele FROM gpx_points ORDER BY t_ms")?;
        let rows = stmt.query_map([], |r| {
            Ok(crate::locate::gpx::TrackPoint {
                t_ms: r.get(0)?,
                lat: r.get(1)?,
                lon: r.get(2)?,
                ele: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- calibration and settings ----

    /// A stored verification of `query` against `reference` (content keys) under `settings`:
    /// (inliers, verified).
    pub fn verified_pair(
        &self,
        query: &[u8],
        reference: &[u8],
        settings: &str,
    ) -> Result<Option<(u32, bool)>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT inliers, verified FROM verified_pairs WHERE query = ?1 AND reference = ?2 AND settings = ?3",
                params![query, reference, settings],
                |r| Ok((r.get::<_, i64>(0)? as u32, r.get::<_, i64>(1)? != 0)),
            )
            .optional()?)
    }

    pub fn save_verified_pair(
        &self,
        query: &[u8],
        reference: &[u8],
        settings: &str,
        inliers: u32,
        verified: bool,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT INTO verified_pairs (query, reference, settings, inliers, verified, checked_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(query, reference, settings) DO UPDATE SET inliers = ?4, verified = ?5, checked_at = ?6",
            params![query, reference, settings, inliers as i64, verified as i64, now_unix()],
        )?;
        Ok(())
    }

    pub fn calibration(&self, model_hash: &str) -> Result<Option<serde_json::Value>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT calibration FROM calibrations WHERE model_hash = ?1",
                [model_hash],
                |r| r.get::<_, String>(0),
            )
            .optional()?
            .map(json))
    }

    pub fn set_calibration(
        &self,
        model_hash: &str,
        samples: usize,
        calibration: &serde_json::Value,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT INTO calibrations (model_hash, fitted_at, samples, calibration) VALUES (?1, ?2, ?3, ?4)
             ON CONFLICT(model_hash) DO UPDATE SET fitted_at = ?2, samples = ?3, calibration = ?4",
            params![model_hash, now_unix(), samples as i64, calibration.to_string()],
        )?;
        Ok(())
    }

    pub fn setting(&self, key: &str) -> Result<Option<serde_json::Value>> {
        Ok(self
            .conn()
            .query_row("SELECT value FROM settings WHERE key = ?1", [key], |r| {
                r.get::<_, String>(0)
            })
            .optional()?
            .map(json))
    }

    pub fn set_setting(&self, key: &str, value: &serde_json::Value) -> Result<()> {
        self.conn().execute(
            "INSERT INTO settings (key, value) VALUES (?1, ?2) ON CONFLICT(key) DO UPDATE SET value = ?2",
            params![key, value.to_string()],
        )?;
        Ok(())
    }
}
