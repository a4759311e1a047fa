//! The photo catalog: one SQLite file (WAL, foreign keys on, migrations by `user_version`).
//!
//! Only this module writes SQL. Other modules call its typed functions; multi-row changes take a
//! [`rusqlite::Transaction`] so that each batch is applied whole or not at all.

pub mod browse;
mod descriptors;
mod jobs;
mod journal;
mod locate;
pub(crate) mod photos;
mod refdbs;
mod schema;

use std::path::{Path, PathBuf};
use std::time::Duration;

use rusqlite::{params, Connection, OptionalExtension};
use serde::Serialize;

use crate::error::{Error, IoContext, Result};

pub use browse::{BrowseCounts, BrowseFilter, BrowseKind, BrowseRow, MapPoints, PlaceFilter};
pub use descriptors::{descriptors_from_blob, DescribeTarget, DescriptorCounts};
pub use jobs::JobRow;
pub use journal::{BatchRow, EditRow, NewEdit};
pub use locate::{GpxTrackRow, ProposalRow, SuspiciousRow};
pub use photos::{PhotoFilter, PhotoRecord, PhotoStatus, PhotoUpdate};
pub use refdbs::InstalledDb;

/// The catalog file used when none is given: `$XDG_DATA_HOME/pinpoint/catalog.sqlite` on Linux,
/// the platform's application-data folder elsewhere. `PINPOINT_CATALOG` overrides it.
pub fn default_catalog_path() -> Result<PathBuf> {
    if let Some(p) = std::env::var_os("PINPOINT_CATALOG") {
        return Ok(PathBuf::from(p));
    }
    let dirs = directories::ProjectDirs::from("", "", "pinpoint")
        .ok_or_else(|| Error::invalid("no home directory: pass --catalog PATH"))?;
    Ok(dirs.data_dir().join("catalog.sqlite"))
}

/// A library root: a folder whose photos Pinpoint manages.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct LibraryRoot {
    pub id: i64,
    pub path: PathBuf,
    pub added_at: i64,
    pub last_scan_completed_at: Option<i64>,
}

/// A scan as recorded in the catalog.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct ScanRecord {
    pub id: i64,
    pub started_at: i64,
    pub finished_at: Option<i64>,
    pub status: String,
    pub files_seen: u64,
    pub files_read: u64,
    pub errors: u64,
}

/// A file under a root that could not be read as a photo.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct UnreadableFile {
    pub path: PathBuf,
    pub size: u64,
    pub mtime_ns: i64,
    pub reason: String,
}

pub struct Catalog {
    conn: Connection,
    path: PathBuf,
}

pub fn now_unix() -> i64 {
    std::time::SystemTime::now()
        .duration_since(std::time::UNIX_EPOCH)
        .map(|d| d.as_secs() as i64)
        .unwrap_or(0)
}

impl Catalog {
    /// Opens (creating if needed) the catalog at `path` and brings its schema up to date.
    pub fn open(path: &Path) -> Result<Catalog> {
        if let Some(dir) = path.parent().filter(|d| !d.as_os_str().is_empty()) {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        let wrap = |source| Error::Catalog {
            path: path.to_path_buf(),
            source,
        };
        let conn = Connection::open(path).map_err(wrap)?;
        conn.busy_timeout(Duration::from_secs(10)).map_err(wrap)?;
        // journal_mode returns a row, so it is queried rather than executed.
        let mode: String = conn
            .query_row("PRAGMA journal_mode = WAL", [], |r| r.get(0))
            .map_err(wrap)?;
        if !mode.eq_ignore_ascii_case("wal") {
            return Err(Error::invalid(format!(
                "{}: cannot switch the catalog to WAL mode (got {mode})",
                path.display()
            )));
        }
        conn.execute_batch("PRAGMA foreign_keys = ON; PRAGMA synchronous = NORMAL;")
            .map_err(wrap)?;
        let mut catalog = Catalog {
            conn,
            path: path.to_path_buf(),
        };
        catalog.migrate()?;
        Ok(catalog)
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Folder for derived files (thumbnails): beside the catalog, so that each catalog has its own.
    pub fn cache_dir(&self) -> PathBuf {
        let name = self
            .path
            .file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_default();
        self.path.with_file_name(format!("{name}.cache"))
    }

    pub(crate) fn conn(&self) -> &Connection {
        &self.conn
    }

    pub(crate) fn conn_mut(&mut self) -> &mut Connection {
        &mut self.conn
    }

    pub fn schema_version(&self) -> Result<i64> {
        Ok(self
            .conn
            .query_row("PRAGMA user_version", [], |r| r.get(0))?)
    }

    fn migrate(&mut self) -> Result<()> {
        let known = schema::MIGRATIONS.len() as i64;
        let found = self.schema_version()?;
        if found > known {
            return Err(Error::CatalogTooNew {
                path: self.path.clone(),
                found,
                known,
            });
        }
        for (i, sql) in schema::MIGRATIONS.iter().enumerate().skip(found as usize) {
            let tx = self.conn.transaction()?;
            tx.execute_batch(sql)?;
            tx.pragma_update(None, "user_version", (i + 1) as i64)?;
            tx.commit()?;
        }
        Ok(())
    }

    // ---- library roots ----

    /// Adds a folder as a library root. The folder must exist; it may not lie inside, or contain,
    /// another root (each photo belongs to exactly one root).
    pub fn add_root(&self, folder: &Path) -> Result<LibraryRoot> {
        let canonical = std::fs::canonicalize(folder).at(folder)?;
        if !canonical.is_dir() {
            return Err(Error::invalid(format!(
                "{}: not a folder",
                folder.display()
            )));
        }
        for root in self.roots()? {
            if root.path == canonical {
                return Ok(root);
            }
            if canonical.starts_with(&root.path) {
                return Err(Error::invalid(format!(
                    "{}: already inside library root {}",
                    folder.display(),
                    root.path.display()
                )));
            }
            if root.path.starts_with(&canonical) {
                return Err(Error::invalid(format!(
                    "{}: contains library root {}; remove that root first",
                    folder.display(),
                    root.path.display()
                )));
            }
        }
        let path = path_to_str(&canonical)?;
        self.conn.execute(
            "INSERT INTO library_roots (path, added_at) VALUES (?1, ?2)",
            params![path, now_unix()],
        )?;
        self.root_by_path(&canonical)?
            .ok_or_else(|| Error::NotFound(path.to_string()))
    }

    /// Removes a root and forgets its photos. Returns how many photos were forgotten.
    pub fn remove_root(&mut self, folder: &Path) -> Result<usize> {
        let root = self.find_root(folder)?;
        let tx = self.conn.transaction()?;
        let n = tx.execute("DELETE FROM photos WHERE root_id = ?1", [root.id])?;
        tx.execute("DELETE FROM library_roots WHERE id = ?1", [root.id])?;
        tx.commit()?;
        Ok(n)
    }

    /// The root registered for `folder`, by its canonical path or as given.
    pub fn find_root(&self, folder: &Path) -> Result<LibraryRoot> {
        let canonical = std::fs::canonicalize(folder).unwrap_or_else(|_| folder.to_path_buf());
        self.root_by_path(&canonical)?
            .or(self.root_by_path(folder)?)
            .ok_or_else(|| Error::NotFound(format!("{} is not a library root", folder.display())))
    }

    fn root_by_path(&self, path: &Path) -> Result<Option<LibraryRoot>> {
        let Some(p) = path.to_str() else {
            return Ok(None);
        };
        Ok(self
            .conn
            .query_row(
                "SELECT id, path, added_at, last_scan_completed_at FROM library_roots WHERE path = ?1",
                [p],
                row_to_root,
            )
            .optional()?)
    }

    pub fn roots(&self) -> Result<Vec<LibraryRoot>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, path, added_at, last_scan_completed_at FROM library_roots ORDER BY path",
        )?;
        let rows = stmt.query_map([], row_to_root)?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    pub fn set_root_scanned(&self, root_id: i64, at: i64) -> Result<()> {
        self.conn.execute(
            "UPDATE library_roots SET last_scan_completed_at = ?2 WHERE id = ?1",
            params![root_id, at],
        )?;
        Ok(())
    }

    // ---- scans ----

    pub fn begin_scan(&self) -> Result<i64> {
        self.conn.execute(
            "INSERT INTO scans (started_at, status) VALUES (?1, 'running')",
            [now_unix()],
        )?;
        Ok(self.conn.last_insert_rowid())
    }

    pub fn end_scan(&self, id: i64, status: &str, seen: u64, read: u64, errors: u64) -> Result<()> {
        self.conn.execute(
            "UPDATE scans SET finished_at = ?2, status = ?3, files_seen = ?4, files_read = ?5, errors = ?6 WHERE id = ?1",
            params![id, now_unix(), status, seen as i64, read as i64, errors as i64],
        )?;
        Ok(())
    }

    pub fn scans(&self, limit: usize) -> Result<Vec<ScanRecord>> {
        let mut stmt = self.conn.prepare(
            "SELECT id, started_at, finished_at, status, files_seen, files_read, errors FROM scans ORDER BY id DESC LIMIT ?1",
        )?;
        let rows = stmt.query_map([limit as i64], |r| {
            Ok(ScanRecord {
                id: r.get(0)?,
                started_at: r.get(1)?,
                finished_at: r.get(2)?,
                status: r.get(3)?,
                files_seen: r.get::<_, i64>(4)? as u64,
                files_read: r.get::<_, i64>(5)? as u64,
                errors: r.get::<_, i64>(6)? as u64,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    // ---- unreadable files ----

    pub fn unreadable_files(&self, root_id: Option<i64>) -> Result<Vec<UnreadableFile>> {
        let mut stmt = self.conn.prepare(
            "SELECT path, size, mtime_ns, reason FROM unreadable_files WHERE ?1 IS NULL OR root_id = ?1 ORDER BY path",
        )?;
        let rows = stmt.query_map([root_id], |r| {
            Ok(UnreadableFile {
                path: PathBuf::from(r.get::<_, String>(0)?),
                size: r.get::<_, i64>(1)? as u64,
                mtime_ns: r.get(2)?,
                reason: r.get(3)?,
            })
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }

    /// Runs SQLite's own consistency checks: page structure and foreign keys.
    pub fn check_integrity(&self) -> Result<Vec<String>> {
        let mut problems = Vec::new();
        let mut stmt = self.conn.prepare("PRAGMA integrity_check")?;
        for row in stmt.query_map([], |r| r.get::<_, String>(0))? {
            let row = row?;
            if row != "ok" {
                problems.push(row);
            }
        }
        let mut stmt = self.conn.prepare("PRAGMA foreign_key_check")?;
        for row in stmt.query_map([], |r| {
            Ok(format!(
                "foreign key violation in {}",
                r.get::<_, String>(0)?
            ))
        })? {
            problems.push(row?);
        }
        Ok(problems)
    }
}

fn row_to_root(r: &rusqlite::Row) -> rusqlite::Result<LibraryRoot> {
    Ok(LibraryRoot {
        id: r.get(0)?,
        path: PathBuf::from(r.get::<_, String>(1)?),
        added_at: r.get(2)?,
        last_scan_completed_at: r.get(3)?,
    })
}

/// Paths are stored as UTF-8 text; a path that is not valid UTF-8 is refused with its name.
pub fn path_to_str(path: &Path) -> Result<&str> {
    path.to_str()
        .ok_or_else(|| Error::invalid(format!("{}: path is not valid UTF-8", path.display())))
}
