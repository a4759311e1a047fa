//! Models and descriptors in the catalog.

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{now_unix, Catalog};
use crate::error::Result;

/// A photo that needs a descriptor for a model.
#[derive(Debug, Clone)]
pub struct DescribeTarget {
    pub photo_id: i64,
    pub path: std::path::PathBuf,
    pub orientation: Option<u8>,
    pub content_hash: [u8; 32],
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct DescriptorCounts {
    pub described: u64,
    pub failed: u64,
    pub lacking: u64,
    /// Photos whose format this build cannot decode (HEIF).
    pub undecodable: u64,
}

fn to_blob(v: &[f32]) -> Vec<u8> {
    v.iter().flat_map(|x| x.to_le_bytes()).collect()
}

pub fn descriptors_from_blob(b: &[u8]) -> Vec<f32> {
    b.chunks_exact(4)
        .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
        .collect()
}

/// Formats whose pixels Pinpoint decodes (directly or through an embedded preview).
const DESCRIBABLE: &str = "('jpeg', 'png', 'tiff', 'webp', 'heif', 'raw', 'raf')";

impl Catalog {
    /// Records a model (idempotent).
    pub fn register_model(
        &self,
        hash: &str,
        name: &str,
        version: &str,
        dim: usize,
        card_json: &str,
    ) -> Result<()> {
        self.conn().execute(
            "INSERT INTO models (hash, name, version, dim, card, first_used_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
             ON CONFLICT(hash) DO NOTHING",
            params![hash, name, version, dim as i64, card_json, now_unix()],
        )?;
        Ok(())
    }

    /// Present photos without a current descriptor (or recorded failure) for `model_hash`.
    pub fn photos_to_describe(&self, model_hash: &str) -> Result<Vec<DescribeTarget>> {
        let sql = format!(
            "SELECT p.id, p.path, p.orientation, p.content_hash FROM photos p
             WHERE p.status = 'present' AND p.format IN {DESCRIBABLE}
               AND NOT EXISTS (SELECT 1 FROM descriptors d WHERE d.photo_id = p.id AND d.model_hash = ?1
                               AND d.content_hash = p.content_hash)
               AND NOT EXISTS (SELECT 1 FROM describe_failures f WHERE f.photo_id = p.id AND f.model_hash = ?1
                               AND f.content_hash = p.content_hash)
             ORDER BY p.path"
        );
        let mut stmt = self.conn().prepare(&sql)?;
        let rows = stmt.query_map([model_hash], |r| {
            let hash: Vec<u8> = r.get(3)?;
            let mut content_hash = [0u8; 32];
            if hash.len() == 32 {
                content_hash.copy_from_slice(&hash);
            }
            Ok(DescribeTarget {
                photo_id: r.get(0)?,
                path: std::path::PathBuf::from(r.get::<_, String>(1)?),
                orientation: r.get(2)?,
                content_hash,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Stores descriptors and failures of one batch in one transaction.
    pub fn store_descriptions(
        &mut self,
        model_hash: &str,
        done: &[(DescribeTarget, std::result::Result<Vec<f32>, String>)],
    ) -> Result<()> {
        let tx = self.conn_mut().transaction()?;
        {
            let mut ok = tx.prepare_cached(
                "INSERT INTO descriptors (photo_id, model_hash, content_hash, dim, vector, computed_at) VALUES (?1, ?2, ?3, ?4, ?5, ?6)
                 ON CONFLICT(photo_id, model_hash) DO UPDATE SET content_hash = ?3, dim = ?4, vector = ?5, computed_at = ?6",
            )?;
            let mut failed = tx.prepare_cached(
                "INSERT INTO describe_failures (photo_id, model_hash, content_hash, reason, at) VALUES (?1, ?2, ?3, ?4, ?5)
                 ON CONFLICT(photo_id, model_hash) DO UPDATE SET content_hash = ?3, reason = ?4, at = ?5",
            )?;
            let mut clear = tx.prepare_cached(
                "DELETE FROM describe_failures WHERE photo_id = ?1 AND model_hash = ?2",
            )?;
            let now = now_unix();
            for (t, r) in done {
                match r {
                    Ok(v) => {
                        ok.execute(params![
                            t.photo_id,
                            model_hash,
                            &t.content_hash[..],
                            v.len() as i64,
                            to_blob(v),
                            now
                        ])?;
                        clear.execute(params![t.photo_id, model_hash])?;
                    }
                    Err(reason) => {
                        failed.execute(params![
                            t.photo_id,
                            model_hash,
                            &t.content_hash[..],
                            reason,
                            now
                        ])?;
                    }
                }
            }
        }
        tx.commit()?;
        Ok(())
    }

    /// Current descriptors of present photos for a model: (photo id, vector).
    pub fn descriptors(&self, model_hash: &str) -> Result<Vec<(i64, Vec<f32>)>> {
        let mut stmt = self.conn().prepare(
            "SELECT d.photo_id, d.vector FROM descriptors d JOIN photos p ON p.id = d.photo_id
             WHERE d.model_hash = ?1 AND p.status = 'present' AND d.content_hash = p.content_hash ORDER BY d.photo_id",
        )?;
        let rows = stmt.query_map([model_hash], |r| {
            Ok((r.get(0)?, descriptors_from_blob(r.get_ref(1)?.as_blob()?)))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn descriptor(&self, photo_id: i64, model_hash: &str) -> Result<Option<Vec<f32>>> {
        Ok(self
            .conn()
            .query_row(
                "SELECT vector FROM descriptors WHERE photo_id = ?1 AND model_hash = ?2",
                params![photo_id, model_hash],
                |r| Ok(descriptors_from_blob(r.get_ref(0)?.as_blob()?)),
            )
            .optional()?)
    }

    pub fn descriptor_counts(&self, model_hash: &str) -> Result<DescriptorCounts> {
        let lacking = self.photos_to_describe(model_hash)?.len() as u64;
        let (described, failed, undecodable) = self.conn().query_row(
            &format!(
                "SELECT
                   (SELECT COUNT(*) FROM descriptors d JOIN photos p ON p.id = d.photo_id
                     WHERE d.model_hash = ?1 AND p.status = 'present' AND d.content_hash = p.content_hash),
                   (SELECT COUNT(*) FROM describe_failures f JOIN photos p ON p.id = f.photo_id
                     WHERE f.model_hash = ?1 AND p.status = 'present' AND f.content_hash = p.content_hash),
                   (SELECT COUNT(*) FROM photos WHERE status = 'present' AND format NOT IN {DESCRIBABLE})"
            ),
            [model_hash],
            |r| Ok((r.get::<_, i64>(0)? as u64, r.get::<_, i64>(1)? as u64, r.get::<_, i64>(2)? as u64)),
        )?;
        Ok(DescriptorCounts {
            described,
            failed,
            lacking,
            undecodable,
        })
    }

    /// Reasons the model could not describe photos: (path, reason).
    pub fn describe_failures(&self, model_hash: &str) -> Result<Vec<(std::path::PathBuf, String)>> {
        let mut stmt = self.conn().prepare(
            "SELECT p.path, f.reason FROM describe_failures f JOIN photos p ON p.id = f.photo_id
             WHERE f.model_hash = ?1 AND p.status = 'present' AND f.content_hash = p.content_hash ORDER BY p.path",
        )?;
        let rows = stmt.query_map([model_hash], |r| {
            Ok((std::path::PathBuf::from(r.get::<_, String>(0)?), r.get(1)?))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}
