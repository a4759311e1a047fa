//! Installed reference databases.

use std::path::PathBuf;

use rusqlite::{params, OptionalExtension};
use serde::Serialize;

use super::{now_unix, path_to_str, Catalog};
use crate::error::Result;

#[derive(Debug, Clone, Serialize)]
pub struct InstalledDb {
    pub name: String,
    pub version: String,
    pub path: PathBuf,
    pub index_path: Option<PathBuf>,
    pub sha256: String,
    pub model_hash: String,
    pub count: u64,
    pub manifest: serde_json::Value,
    pub enabled: bool,
    pub installed_at: i64,
}

fn row(r: &rusqlite::Row) -> rusqlite::Result<InstalledDb> {
    Ok(InstalledDb {
        name: r.get(0)?,
        version: r.get(1)?,
        path: PathBuf::from(r.get::<_, String>(2)?),
        index_path: r.get::<_, Option<String>>(3)?.map(PathBuf::from),
        sha256: r.get(4)?,
        model_hash: r.get(5)?,
        count: r.get::<_, i64>(6)? as u64,
        manifest: serde_json::from_str(&r.get::<_, String>(7)?).unwrap_or(serde_json::Value::Null),
        enabled: r.get(8)?,
        installed_at: r.get(9)?,
    })
}

const COLUMNS: &str =
    "name, version, path, index_path, sha256, model_hash, count, manifest, enabled, installed_at";

impl Catalog {
    /// Where this catalog keeps installed reference databases.
    pub fn refdb_dir(&self) -> PathBuf {
        let name = self
            .path()
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.path().with_file_name(format!("{name}.refdbs"))
    }

    pub fn record_refdb(&self, db: &InstalledDb) -> Result<()> {
        self.conn().execute(
            &format!("INSERT OR REPLACE INTO reference_databases ({COLUMNS}) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8, ?9, ?10)"),
            params![
                db.name,
                db.version,
                path_to_str(&db.path)?,
                db.index_path.as_deref().map(path_to_str).transpose()?,
                db.sha256,
                db.model_hash,
                db.count as i64,
                db.manifest.to_string(),
                db.enabled,
                now_unix()
            ],
        )?;
        Ok(())
    }

    pub fn refdbs(&self) -> Result<Vec<InstalledDb>> {
        let mut stmt = self.conn().prepare(&format!(
            "SELECT {COLUMNS} FROM reference_databases ORDER BY name"
        ))?;
        let rows = stmt.query_map([], row)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn refdb(&self, name: &str) -> Result<Option<InstalledDb>> {
        Ok(self
            .conn()
            .query_row(
                &format!("SELECT {COLUMNS} FROM reference_databases WHERE name = ?1"),
                [name],
                row,
            )
            .optional()?)
    }

    pub fn set_refdb_enabled(&self, name: &str, enabled: bool) -> Result<bool> {
        Ok(self.conn().execute(
            "UPDATE reference_databases SET enabled = ?2 WHERE name = ?1",
            params![name, enabled],
        )? > 0)
    }

    pub fn forget_refdb(&self, name: &str) -> Result<bool> {
        Ok(self
            .conn()
            .execute("DELETE FROM reference_databases WHERE name = ?1", [name])?
            > 0)
    }
}
