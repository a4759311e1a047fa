//! The reference database file: one SQLite file per database, self-describing.
//!
//! - `manifest(key, value)`: name, version, region bounding box, count, licence, attribution,
//!   creation date, the model it was described with (card name and weights SHA-256), descriptor
//!   dimension and type, whether images for re-description are included, the format version.
//! - `refs(id, lat, lon, heading, taken_at, source_id, licence, preview, image)`: a ~320 px JPEG
//!   preview for the review screen, and optionally a ~640 px JPEG to describe again with another model.
//! - `descriptors(id, vector)`: little-endian f16 or f32, unit length.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OpenFlags, OptionalExtension};
use serde::{Deserialize, Serialize};

use crate::error::{Error, Result};
use crate::geo::GeoPoint;

pub const FORMAT_VERSION: u32 = 1;
/// Far beyond any real database: a manifest claiming more is refused as absurd.
pub const MAX_REFERENCES: u64 = 200_000_000;
pub const MAX_DIM: usize = 65_536;

pub const SCHEMA: &str = "
CREATE TABLE IF NOT EXISTS manifest (key TEXT PRIMARY KEY, value TEXT NOT NULL);
CREATE TABLE IF NOT EXISTS refs (
    id INTEGER PRIMARY KEY,
    lat REAL NOT NULL CHECK (lat BETWEEN -90 AND 90),
    lon REAL NOT NULL CHECK (lon BETWEEN -180 AND 180),
    heading REAL,
    taken_at TEXT,
    source_id TEXT,
    licence TEXT,
    preview BLOB NOT NULL,
    image BLOB
);
CREATE TABLE IF NOT EXISTS descriptors (id INTEGER PRIMARY KEY REFERENCES refs(id), vector BLOB NOT NULL);
";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Manifest {
    pub name: String,
    pub version: String,
    /// [min_lat, min_lon, max_lat, max_lon]
    pub bbox: [f64; 4],
    pub count: u64,
    pub licence: String,
    pub attribution: String,
    pub created_at: String,
    pub model_name: String,
    pub model_sha256: String,
    pub descriptor_dim: usize,
    /// "f16" or "f32"
    pub descriptor_type: String,
    pub has_images: bool,
    pub format_version: u32,
}

/// One reference of a database.
#[derive(Debug, Clone, Serialize)]
pub struct RefRow {
    pub id: i64,
    pub location: GeoPoint,
    pub heading: Option<f64>,
    pub taken_at: Option<String>,
    pub source_id: Option<String>,
    pub licence: Option<String>,
}

pub struct RefDb {
    conn: Connection,
    pub manifest: Manifest,
    pub path: PathBuf,
}

pub fn encode_vector(v: &[f32], f16: bool) -> Vec<u8> {
    if f16 {
        v.iter()
            .flat_map(|x| half::f16::from_f32(*x).to_le_bytes())
            .collect()
    } else {
        v.iter().flat_map(|x| x.to_le_bytes()).collect()
    }
}

pub fn decode_vector(b: &[u8], f16: bool) -> Vec<f32> {
    if f16 {
        b.chunks_exact(2)
            .map(|c| half::f16::from_le_bytes([c[0], c[1]]).to_f32())
            .collect()
    } else {
        b.chunks_exact(4)
            .map(|c| f32::from_le_bytes([c[0], c[1], c[2], c[3]]))
            .collect()
    }
}

fn bad(path: &Path, why: impl Into<String>) -> Error {
    Error::invalid(format!(
        "{}: not a usable reference database: {}",
        path.display(),
        why.into()
    ))
}

impl Manifest {
    pub fn write(&self, conn: &Connection) -> Result<()> {
        let value = serde_json::to_value(self).expect("manifest serialises");
        let mut stmt =
            conn.prepare("INSERT OR REPLACE INTO manifest (key, value) VALUES (?1, ?2)")?;
        for (k, v) in value.as_object().expect("an object") {
            stmt.execute(params![k, v.to_string()])?;
        }
        Ok(())
    }

    fn read(conn: &Connection, path: &Path) -> Result<Manifest> {
        let mut stmt = conn
            .prepare("SELECT key, value FROM manifest")
            .map_err(|e| bad(path, format!("no manifest ({e})")))?;
        let mut map = serde_json::Map::new();
        for row in stmt.query_map([], |r| Ok((r.get::<_, String>(0)?, r.get::<_, String>(1)?)))? {
            let (k, v) = row?;
            map.insert(
                k,
                serde_json::from_str(&v)
                    .map_err(|e| bad(path, format!("manifest value {v:?}: {e}")))?,
            );
        }
        serde_json::from_value(serde_json::Value::Object(map))
            .map_err(|e| bad(path, format!("manifest: {e}")))
    }

    /// Refuses manifests with impossible values before anything is allocated from them.
    pub fn sanity_check(&self, path: &Path) -> Result<()> {
        if self.format_version != FORMAT_VERSION {
            return Err(bad(
                path,
                format!(
                    "format version {} (this build reads {FORMAT_VERSION})",
                    self.format_version
                ),
            ));
        }
        if self.count > MAX_REFERENCES {
            return Err(bad(
                path,
                format!("manifest claims {} references", self.count),
            ));
        }
        if self.descriptor_dim == 0 || self.descriptor_dim > MAX_DIM {
            return Err(bad(
                path,
                format!("descriptor dimension {}", self.descriptor_dim),
            ));
        }
        if self.descriptor_type != "f16" && self.descriptor_type != "f32" {
            return Err(bad(
                path,
                format!("descriptor type {:?}", self.descriptor_type),
            ));
        }
        let [a, b, c, d] = self.bbox;
        if !(-90.0..=90.0).contains(&a)
            || !(-90.0..=90.0).contains(&c)
            || !(-180.0..=180.0).contains(&b)
            || !(-180.0..=180.0).contains(&d)
            || a > c
        {
            return Err(bad(path, format!("bounding box {:?}", self.bbox)));
        }
        if self.name.is_empty() || self.name.contains(['/', '\\']) || self.name.len() > 100 {
            return Err(bad(path, format!("name {:?}", self.name)));
        }
        Ok(())
    }
}

impl RefDb {
    /// Opens a database read-only and checks it: SQLite's integrity check, the manifest, and that
    /// the manifest's count and dimension match the rows.
    pub fn open(path: &Path) -> Result<RefDb> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| bad(path, e.to_string()))?;
        let ok: String = conn
            .query_row("PRAGMA quick_check", [], |r| r.get(0))
            .map_err(|e| bad(path, e.to_string()))?;
        if ok != "ok" {
            return Err(bad(path, format!("damaged: {ok}")));
        }
        let manifest = Manifest::read(&conn, path)?;
        manifest.sanity_check(path)?;
        let (refs, descs): (i64, i64) = conn
            .query_row(
                "SELECT (SELECT COUNT(*) FROM refs), (SELECT COUNT(*) FROM descriptors)",
                [],
                |r| Ok((r.get(0)?, r.get(1)?)),
            )
            .map_err(|e| bad(path, e.to_string()))?;
        if refs as u64 != manifest.count || descs as u64 != manifest.count {
            return Err(bad(
                path,
                format!(
                    "manifest says {} references, the file holds {refs} (descriptors {descs})",
                    manifest.count
                ),
            ));
        }
        let width = if manifest.descriptor_type == "f16" {
            2
        } else {
            4
        };
        let wrong: i64 = conn.query_row(
            "SELECT COUNT(*) FROM descriptors WHERE length(vector) != ?1",
            [(manifest.descriptor_dim * width) as i64],
            |r| r.get(0),
        )?;
        if wrong > 0 {
            return Err(bad(
                path,
                format!(
                    "{wrong} descriptors are not {}-d {}",
                    manifest.descriptor_dim, manifest.descriptor_type
                ),
            ));
        }
        Ok(RefDb {
            conn,
            manifest,
            path: path.to_path_buf(),
        })
    }

    /// Opens an installed database, checked in full when it was installed: reads the manifest
    /// only, so that a proposal run does not scan a database of millions of references first.
    pub fn open_installed(path: &Path) -> Result<RefDb> {
        let conn = Connection::open_with_flags(
            path,
            OpenFlags::SQLITE_OPEN_READ_ONLY | OpenFlags::SQLITE_OPEN_NO_MUTEX,
        )
        .map_err(|e| bad(path, e.to_string()))?;
        let manifest = Manifest::read(&conn, path)?;
        manifest.sanity_check(path)?;
        Ok(RefDb {
            conn,
            manifest,
            path: path.to_path_buf(),
        })
    }

    pub fn connection(&self) -> &Connection {
        &self.conn
    }

    pub fn reference(&self, id: i64) -> Result<Option<RefRow>> {
        Ok(self
            .conn
            .prepare_cached("SELECT id, lat, lon, heading, taken_at, source_id, licence FROM refs WHERE id = ?1")?
            .query_row([id], row_to_ref)
            .optional()?)
    }

    pub fn preview(&self, id: i64) -> Result<Option<Vec<u8>>> {
        Ok(self
            .conn
            .query_row("SELECT preview FROM refs WHERE id = ?1", [id], |r| r.get(0))
            .optional()?)
    }

    /// All descriptors, in id order.
    pub fn descriptors(&self) -> Result<Vec<(i64, Vec<f32>)>> {
        let f16 = self.manifest.descriptor_type == "f16";
        let mut stmt = self
            .conn
            .prepare("SELECT id, vector FROM descriptors ORDER BY id")?;
        let rows = stmt.query_map([], |r| {
            Ok((r.get(0)?, decode_vector(r.get_ref(1)?.as_blob()?, f16)))
        })?;
        Ok(rows.collect::<rusqlite::Result<_>>()?)
    }
}

pub fn row_to_ref(r: &rusqlite::Row) -> rusqlite::Result<RefRow> {
    Ok(RefRow {
        id: r.get(0)?,
        location: GeoPoint::new(r.get(1)?, r.get(2)?),
        heading: r.get(3)?,
        taken_at: r.get(4)?,
        source_id: r.get(5)?,
        licence: r.get(6)?,
    })
}
