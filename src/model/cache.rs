//! A cache of descriptors for files outside the catalog (evaluation datasets, reference database
//! builds), keyed by model, path, size, modification time and input size, so that evaluating
//! the same images twice describes them once.

use std::path::{Path, PathBuf};

use rusqlite::{params, Connection, OptionalExtension};

use super::describe::{describe_stream, DescribeJob, DescribeOptions};
use super::{LoadedModel, Stage};
use crate::error::{Error, IoContext, Result};
use crate::progress::{CancelToken, ProgressSink};

pub struct DescriptorCache {
    conn: Connection,
}

fn key(path: &Path) -> Result<(String, i64, i64)> {
    let md = std::fs::metadata(path).at(path)?;
    let p = path.canonicalize().unwrap_or_else(|_| path.to_path_buf());
    Ok((
        p.display().to_string(),
        md.len() as i64,
        crate::library::metadata::mtime_ns(&md),
    ))
}

impl DescriptorCache {
    pub fn open(file: &Path) -> Result<DescriptorCache> {
        if let Some(dir) = file.parent() {
            std::fs::create_dir_all(dir).at(dir)?;
        }
        let conn = Connection::open(file).map_err(|source| Error::Catalog {
            path: file.to_path_buf(),
            source,
        })?;
        conn.execute_batch(
            "PRAGMA journal_mode = WAL;
             CREATE TABLE IF NOT EXISTS cached (
                model_hash TEXT NOT NULL, stage TEXT NOT NULL, long_side INTEGER NOT NULL, path TEXT NOT NULL,
                size INTEGER NOT NULL, mtime_ns INTEGER NOT NULL, vector BLOB NOT NULL,
                PRIMARY KEY (model_hash, stage, long_side, path));",
        )?;
        Ok(DescriptorCache { conn })
    }

    fn get(
        &self,
        model: &str,
        stage: &str,
        long_side: u32,
        path: &Path,
    ) -> Result<Option<Vec<f32>>> {
        let (p, size, mtime) = key(path)?;
        Ok(self
            .conn
            .query_row(
                "SELECT vector FROM cached WHERE model_hash = ?1 AND stage = ?2 AND long_side = ?3 AND path = ?4 AND size = ?5 AND mtime_ns = ?6",
                params![model, stage, long_side, p, size, mtime],
                |r| Ok(crate::catalog::descriptors_from_blob(r.get_ref(0)?.as_blob()?)),
            )
            .optional()?)
    }

    fn put(&self, model: &str, stage: &str, long_side: u32, path: &Path, v: &[f32]) -> Result<()> {
        let (p, size, mtime) = key(path)?;
        let blob: Vec<u8> = v.iter().flat_map(|x| x.to_le_bytes()).collect();
        self.conn.execute(
            "INSERT OR REPLACE INTO cached (model_hash, stage, long_side, path, size, mtime_ns, vector) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)",
            params![model, stage, long_side, p, size, mtime, blob],
        )?;
        Ok(())
    }

    /// Descriptors of `paths` (computed for those not cached yet), in order; a file that cannot be
    /// described is an error naming it.
    pub fn describe(
        &self,
        model: &LoadedModel,
        paths: &[PathBuf],
        opts: &DescribeOptions,
        progress: &dyn ProgressSink,
        cancel: &CancelToken,
    ) -> Result<Vec<Vec<f32>>> {
        let stage = match opts.stage {
            Stage::NetVlad => "netvlad",
            Stage::Descriptor => "descriptor",
        };
        let mut out: Vec<Option<Vec<f32>>> = Vec::with_capacity(paths.len());
        let mut missing = Vec::new();
        for (i, p) in paths.iter().enumerate() {
            let hit = self.get(&model.hash, stage, opts.long_side, p)?;
            if hit.is_none() {
                missing.push(i);
            }
            out.push(hit);
        }
        let jobs: Vec<DescribeJob> = missing
            .iter()
            .map(|&i| DescribeJob {
                path: paths[i].clone(),
                orientation: None,
            })
            .collect();
        let mut failure: Option<Error> = None;
        describe_stream(model, &jobs, opts, progress, cancel, |j, r| {
            let i = missing[j];
            match r {
                Ok(v) => {
                    self.put(&model.hash, stage, opts.long_side, &paths[i], &v)?;
                    out[i] = Some(v);
                }
                Err(e) => {
                    failure.get_or_insert(e);
                }
            }
            Ok(())
        })?;
        if let Some(e) = failure {
            return Err(e);
        }
        Ok(out
            .into_iter()
            .map(|v| v.expect("every path described"))
            .collect())
    }
}
