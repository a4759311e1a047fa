//! The edit journal: batches of file writes, their states, and what undoes each.

use std::path::PathBuf;

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{now_unix, path_to_str, Catalog};
use crate::error::Result;

#[derive(Debug, Clone, Serialize)]
pub struct EditRow {
    pub id: i64,
    pub batch_id: i64,
    pub photo_id: Option<i64>,
    pub path: PathBuf,
    pub target: String,
    #[serde(skip)]
    pub before_hash: Option<[u8; 32]>,
    #[serde(skip)]
    pub after_hash: [u8; 32],
    #[serde(skip)]
    pub reverse: String,
    pub new_location: serde_json::Value,
    pub source: String,
    pub state: String,
    pub error: Option<String>,
    pub created_at: i64,
}

#[derive(Debug, Clone, Serialize)]
pub struct BatchRow {
    pub id: i64,
    pub description: String,
    pub created_at: i64,
    pub undo_of: Option<i64>,
    pub undone_by: Option<i64>,
    pub edits: Vec<EditRow>,
}

/// A planned write, recorded before the file is touched.
pub struct NewEdit<'a> {
    pub batch_id: i64,
    pub photo_id: Option<i64>,
    pub path: &'a std::path::Path,
    pub target: &'a str,
    pub before_hash: Option<[u8; 32]>,
    pub after_hash: [u8; 32],
    pub reverse: &'a str,
    pub new_location: &'a serde_json::Value,
    pub source: &'a str,
}

fn hash32(b: Option<Vec<u8>>) -> Option<[u8; 32]> {
    b.filter(|v| v.len() == 32).map(|v| v.try_into().unwrap())
}

const EDIT_COLUMNS: &str =
    "id, batch_id, photo_id, path, target, before_hash, after_hash, reverse, new_location, source, state, error, created_at";

fn row_to_edit(r: &rusqlite::Row) -> rusqlite::Result<EditRow> {
    Ok(EditRow {
        id: r.get(0)?,
        batch_id: r.get(1)?,
        photo_id: r.get(2)?,
        path: PathBuf::from(r.get::<_, String>(3)?),
        target: r.get(4)?,
        before_hash: hash32(r.get(5)?),
        after_hash: hash32(r.get(6)?).unwrap_or([0; 32]),
        reverse: r.get(7)?,
        new_location: r
            .get::<_, Option<String>>(8)?
            .and_then(|s| serde_json::from_str(&s).ok())
            .unwrap_or(serde_json::Value::Null),
        source: r.get(9)?,
        state: r.get(10)?,
        error: r.get(11)?,
        created_at: r.get(12)?,
    })
}

impl Catalog {
    pub fn begin_batch(&self, description: &str, undo_of: Option<i64>) -> Result<i64> {
        self.conn().execute(
            "INSERT INTO edit_batches (description, created_at, undo_of) VALUES (?1, ?2, ?3)",
            params![description, now_unix(), undo_of],
        )?;
        let id = self.conn().last_insert_rowid();
        if let Some(original) = undo_of {
            self.conn().execute(
                "UPDATE edit_batches SET undone_by = ?2 WHERE id = ?1",
                params![original, id],
            )?;
        }
        Ok(id)
    }

    /// Records a write about to happen ('pending'); committed before the file is touched.
    pub fn record_edit(&self, e: &NewEdit) -> Result<i64> {
        self.conn().execute(
            "INSERT INTO edits (batch_id, photo_id, path, target, before_hash, after_hash, reverse, new_location, source, state, created_at)
             VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, 'pending', ?10)",
            params![
                e.batch_id,
                e.photo_id,
                path_to_str(e.path)?,
                e.target,
                e.before_hash.map(|h| h.to_vec()),
                e.after_hash.to_vec(),
                e.reverse,
                e.new_location.to_string(),
                e.source,
                now_unix()
            ],
        )?;
        Ok(self.conn().last_insert_rowid())
    }

    pub fn finish_edit(&self, id: i64, state: &str, error: Option<&str>) -> Result<()> {
        self.conn().execute(
            "UPDATE edits SET state = ?2, error = ?3, finished_at = ?4 WHERE id = ?1",
            params![id, state, error, now_unix()],
        )?;
        Ok(())
    }

    pub fn pending_edits(&self) -> Result<Vec<EditRow>> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {EDIT_COLUMNS} FROM edits WHERE state = 'pending' ORDER BY id"
        ))?;
        let rows = stmt.query_map([], row_to_edit)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn edit(&self, id: i64) -> Result<Option<EditRow>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {EDIT_COLUMNS} FROM edits WHERE id = ?1"),
                [id],
                row_to_edit,
            )
            .optional()?)
    }

    /// Batches, newest first, with their edits.
    pub fn batches(&self, limit: usize) -> Result<Vec<BatchRow>> {
        let mut stmt = self.conn().prepare(
            "SELECT id, description, created_at, undo_of, undone_by FROM edit_batches ORDER BY id DESC LIMIT ?1",
        )?;
        type Head = (i64, String, i64, Option<i64>, Option<i64>);
        let heads: Vec<Head> = stmt
            .query_map([limit as i64], |r| {
                Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?))
            })?
            .collect::<rusqlite::Result<_>>()?;
        let mut out = Vec::new();
        let mut edits = self.conn().prepare(&format!(
            "SELECT {EDIT_COLUMNS} FROM edits WHERE batch_id = ?1 ORDER BY id"
        ))?;
        for (id, description, created_at, undo_of, undone_by) in heads {
            let e = edits
                .query_map([id], row_to_edit)?
                .collect::<rusqlite::Result<_>>()?;
            out.push(BatchRow {
                id,
                description,
                created_at,
                undo_of,
                undone_by,
                edits: e,
            });
        }
        Ok(out)
    }

    pub fn batch(&self, id: i64) -> Result<Option<BatchRow>> {
        Ok(self
            .batches(usize::MAX >> 1)?
            .into_iter()
            .find(|b| b.id == id))
    }

    /// Records where a photo's location stands after a write (and its file's new identity).
    pub fn set_photo_location(
        &self,
        photo_id: i64,
        point: Option<&crate::geo::GeoPoint>,
        source: Option<&str>,
        file: Option<(u64, i64, [u8; 32])>,
    ) -> Result<()> {
        let (lat, lon, alt) = match point {
            Some(p) => (Some(p.lat), Some(p.lon), p.alt),
            None => (None, None, None),
        };
        self.conn().execute(
            "UPDATE photos SET lat = ?2, lon = ?3, alt = ?4, gps_source = ?5, updated_at = ?6 WHERE id = ?1",
            params![photo_id, lat, lon, alt, point.and(source), now_unix()],
        )?;
        if let Some((size, mtime, hash)) = file {
            self.conn().execute(
                "UPDATE photos SET size = ?2, mtime_ns = ?3, content_hash = ?4 WHERE id = ?1",
                params![photo_id, size as i64, mtime, &hash[..]],
            )?;
        }
        Ok(())
    }

    /// Records a photo's sidecar after Pinpoint wrote it.
    pub fn set_photo_sidecar(
        &self,
        photo_id: i64,
        sidecar: Option<(&std::path::Path, i64)>,
    ) -> Result<()> {
        let (p, m) = match sidecar {
            Some((p, m)) => (Some(path_to_str(p)?.to_string()), Some(m)),
            None => (None, None),
        };
        self.conn().execute(
            "UPDATE photos SET sidecar_path = ?2, sidecar_mtime_ns = ?3 WHERE id = ?1",
            params![photo_id, p, m],
        )?;
        Ok(())
    }
}
