//! Scanning library roots into the catalog: recursive, parallel, incremental, resumable.
//!
//! 1. Walk every root (following symlinks, skipping hidden folders) and stat each photo and sidecar.
//! 2. Compare with the catalog: an unchanged file (same size, mtime and sidecar mtime) is not read.
//! 3. Read new and changed files in parallel; the calling thread writes results in batches, one
//!    transaction each, so a scan killed at any moment leaves a consistent catalog and the next
//!    scan reads only what is still missing from it.
//! 4. A new path whose content hash matches a photo that vanished (its old path was not seen in
//!    this walk and no longer exists, or it was already marked missing) is that photo, moved or
//!    renamed: it keeps its id and everything attached to it. Moves between roots are found when
//!    both roots are scanned together (the default: all roots).
//! 5. Only after a complete walk of a root are its unseen photos marked missing (never deleted);
//!    photos under folders that could not be read are left alone.

use std::collections::{HashMap, HashSet};
use std::path::{Path, PathBuf};
use std::time::Instant;

use serde::Serialize;
use walkdir::WalkDir;

use super::format::format_from_extension;
use super::metadata::{mtime_ns, read_photo_metadata, PhotoMetadata};
use super::xmp::sidecar_candidates;
use crate::catalog::photos as rows;
use crate::catalog::{Catalog, LibraryRoot, PhotoStatus, PhotoUpdate};
use crate::contain::contain;
use crate::error::{Error, Result};
use crate::progress::{CancelToken, ProgressMeter, ProgressSink};

#[derive(Debug, Clone)]
pub struct ScanOptions {
    /// Also descend into folders whose name starts with a dot.
    pub include_hidden: bool,
    /// Reader threads; defaults to twice the cores (reads wait on the disk as much as the CPU).
    pub threads: Option<usize>,
    /// Files written per catalog transaction.
    pub batch_size: usize,
}

impl Default for ScanOptions {
    fn default() -> Self {
        ScanOptions {
            include_hidden: false,
            threads: None,
            batch_size: 256,
        }
    }
}

/// A file or folder that could not be handled, and why.
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct FileProblem {
    pub path: PathBuf,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ScanReport {
    pub roots: Vec<PathBuf>,
    /// Roots that could not be opened (an unplugged drive): left untouched.
    pub offline_roots: Vec<FileProblem>,
    pub files_seen: u64,
    pub unchanged: u64,
    pub read: u64,
    pub added: u64,
    pub updated: u64,
    pub moved: u64,
    pub marked_missing: u64,
    /// Files that are not readable photos, and folders that could not be walked.
    pub errors: Vec<FileProblem>,
    /// Problems in files that were still catalogued (bad EXIF, GPS 0,0, ...).
    pub warnings: Vec<FileProblem>,
    pub cancelled: bool,
    pub seconds: f64,
}

struct WalkedFile {
    path: PathBuf,
    size: u64,
    mtime_ns: i64,
}

struct RootWalk {
    root: LibraryRoot,
    photos: Vec<WalkedFile>,
    sidecars: HashMap<PathBuf, i64>,
    failed_dirs: Vec<PathBuf>,
}

struct ToRead {
    root_id: i64,
    path: PathBuf,
    size: u64,
    mtime_ns: i64,
    sidecar: Option<(PathBuf, i64)>,
    existing_id: Option<i64>,
}

struct ReadOutcome {
    job: ToRead,
    result: Result<PhotoMetadata>,
}

fn is_hidden(name: &std::ffi::OsStr) -> bool {
    name.to_str()
        .is_some_and(|s| s.starts_with('.') && s != "." && s != "..")
}

fn walk_root(
    root: &LibraryRoot,
    opts: &ScanOptions,
    exclude: &Path,
    meter: &mut ProgressMeter,
    cancel: &CancelToken,
    errors: &mut Vec<FileProblem>,
) -> Result<RootWalk> {
    let mut walk = RootWalk {
        root: root.clone(),
        photos: Vec::new(),
        sidecars: HashMap::new(),
        failed_dirs: Vec::new(),
    };
    let iter = WalkDir::new(&root.path)
        .follow_links(true)
        .into_iter()
        .filter_entry(|e| {
            e.depth() == 0
                || ((opts.include_hidden || !is_hidden(e.file_name())) && e.path() != exclude)
        });
    for entry in iter {
        cancel.check()?;
        let entry = match entry {
            Ok(e) => e,
            Err(err) => {
                let path = err
                    .path()
                    .map(Path::to_path_buf)
                    .unwrap_or_else(|| root.path.clone());
                let reason = if let Some(ancestor) = err.loop_ancestor() {
                    format!("symlink loop back to {}; not followed", ancestor.display())
                } else if let Some(io) = err.io_error() {
                    format!("cannot read: {io}")
                } else {
                    err.to_string()
                };
                if err.loop_ancestor().is_none() {
                    walk.failed_dirs.push(path.clone());
                }
                errors.push(FileProblem { path, reason });
                meter.error();
                continue;
            }
        };
        if !entry.file_type().is_file() {
            continue;
        }
        let path = entry.path();
        let is_sidecar = path
            .extension()
            .is_some_and(|e| e.eq_ignore_ascii_case("xmp"));
        if !is_sidecar && format_from_extension(path).is_none() {
            continue;
        }
        let md = match entry.metadata() {
            Ok(m) => m,
            Err(e) => {
                errors.push(FileProblem {
                    path: path.to_path_buf(),
                    reason: format!("cannot stat: {e}"),
                });
                walk.failed_dirs.push(path.to_path_buf());
                meter.error();
                continue;
            }
        };
        if is_sidecar {
            walk.sidecars.insert(path.to_path_buf(), mtime_ns(&md));
        } else {
            walk.photos.push(WalkedFile {
                path: path.to_path_buf(),
                size: md.len(),
                mtime_ns: mtime_ns(&md),
            });
            meter.advance(1);
        }
    }
    Ok(walk)
}

/// Scans `roots` (all library roots when empty) into the catalog.
pub fn scan(
    catalog: &mut Catalog,
    roots: &[PathBuf],
    opts: &ScanOptions,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<ScanReport> {
    let started = Instant::now();
    let selected: Vec<LibraryRoot> = if roots.is_empty() {
        catalog.roots()?
    } else {
        roots
            .iter()
            .map(|r| catalog.find_root(r))
            .collect::<Result<_>>()?
    };
    if selected.is_empty() {
        return Err(Error::invalid(
            "no library roots: add one with `pinpoint library add FOLDER`",
        ));
    }
    let scan_id = catalog.begin_scan()?;
    let mut report = ScanReport {
        roots: selected.iter().map(|r| r.path.clone()).collect(),
        ..Default::default()
    };
    let mut meter = ProgressMeter::new(progress, "scan");
    let outcome = run_scan(catalog, &selected, opts, &mut meter, cancel, &mut report);
    report.seconds = started.elapsed().as_secs_f64();
    let status = match &outcome {
        Ok(()) => "completed",
        Err(Error::Cancelled) => "cancelled",
        Err(_) => "failed",
    };
    catalog.end_scan(
        scan_id,
        status,
        report.files_seen,
        report.read,
        report.errors.len() as u64,
    )?;
    meter.finish();
    match outcome {
        Ok(()) => Ok(report),
        Err(Error::Cancelled) => {
            report.cancelled = true;
            Ok(report)
        }
        Err(e) => Err(e),
    }
}

fn run_scan(
    catalog: &mut Catalog,
    roots: &[LibraryRoot],
    opts: &ScanOptions,
    meter: &mut ProgressMeter,
    cancel: &CancelToken,
    report: &mut ScanReport,
) -> Result<()> {
    let exclude = catalog.cache_dir();
    meter.stage("walking", None);
    let mut walks = Vec::new();
    for root in roots {
        if let Err(e) = std::fs::read_dir(&root.path) {
            report.offline_roots.push(FileProblem {
                path: root.path.clone(),
                reason: format!("cannot open: {e}"),
            });
            continue;
        }
        walks.push(walk_root(
            root,
            opts,
            &exclude,
            meter,
            cancel,
            &mut report.errors,
        )?);
    }

    // Classify against the catalog.
    let mut to_read = Vec::new();
    let mut seen: HashSet<PathBuf> = HashSet::new();
    for walk in &walks {
        seen.extend(walk.photos.iter().map(|f| f.path.clone()));
    }
    // Photos that may have moved: missing ones, and those of the walked roots not seen now.
    let mut vanished: HashMap<[u8; 32], Vec<(i64, PathBuf)>> = HashMap::new();
    for (hash, id, path) in rows::missing_photos(catalog.conn())? {
        vanished.entry(hash).or_default().push((id, path));
    }
    for walk in &walks {
        let known = rows::fingerprints(catalog.conn(), walk.root.id)?;
        for (path, k) in &known {
            if k.status == PhotoStatus::Present && !seen.contains(path) {
                vanished
                    .entry(k.content_hash)
                    .or_default()
                    .push((k.id, path.clone()));
            }
        }
        let unreadable = rows::unreadable_fingerprints(catalog.conn(), walk.root.id)?;
        let unreadable_reasons: HashMap<PathBuf, String> = catalog
            .unreadable_files(Some(walk.root.id))?
            .into_iter()
            .map(|u| (u.path, u.reason))
            .collect();
        for f in &walk.photos {
            report.files_seen += 1;
            let sidecar = sidecar_candidates(&f.path)
                .into_iter()
                .find_map(|p| walk.sidecars.get(&p).map(|m| (p, *m)));
            if unreadable.get(&f.path) == Some(&(f.size, f.mtime_ns)) {
                let reason = unreadable_reasons.get(&f.path).cloned().unwrap_or_default();
                report.errors.push(FileProblem {
                    path: f.path.clone(),
                    reason,
                });
                continue;
            }
            let existing = known.get(&f.path);
            let unchanged = existing.is_some_and(|k| {
                k.status == PhotoStatus::Present
                    && k.size == f.size
                    && k.mtime_ns == f.mtime_ns
                    && k.sidecar_path.as_deref() == sidecar.as_ref().map(|s| s.0.as_path())
                    && k.sidecar_mtime_ns == sidecar.as_ref().map(|s| s.1)
            });
            if unchanged {
                report.unchanged += 1;
                continue;
            }
            to_read.push(ToRead {
                root_id: walk.root.id,
                path: f.path.clone(),
                size: f.size,
                mtime_ns: f.mtime_ns,
                sidecar,
                existing_id: existing.map(|k| k.id),
            });
        }
    }

    read_and_write(catalog, to_read, &mut vanished, opts, meter, cancel, report)?;

    // Mark what a complete walk did not see as missing; forget unreadable files that are gone.
    for walk in &walks {
        let failed = |p: &Path| walk.failed_dirs.iter().any(|d| p.starts_with(d));
        let known = rows::fingerprints(catalog.conn(), walk.root.id)?;
        let gone: Vec<i64> = known
            .iter()
            .filter(|(p, k)| k.status == PhotoStatus::Present && !seen.contains(*p) && !failed(p))
            .map(|(_, k)| k.id)
            .collect();
        let tx = catalog.conn_mut().transaction()?;
        rows::mark_missing(&tx, &gone)?;
        rows::forget_unreadable_gone(&tx, walk.root.id, &|p| seen.contains(p) || failed(p))?;
        tx.commit()?;
        report.marked_missing += gone.len() as u64;
        catalog.set_root_scanned(walk.root.id, crate::catalog::now_unix())?;
    }
    Ok(())
}

type Vanished = HashMap<[u8; 32], Vec<(i64, PathBuf)>>;

fn read_and_write(
    catalog: &mut Catalog,
    to_read: Vec<ToRead>,
    vanished: &mut Vanished,
    opts: &ScanOptions,
    meter: &mut ProgressMeter,
    cancel: &CancelToken,
    report: &mut ScanReport,
) -> Result<()> {
    meter.stage("reading", Some(to_read.len() as u64));
    if to_read.is_empty() {
        return Ok(());
    }
    let cores = std::thread::available_parallelism()
        .map(|n| n.get())
        .unwrap_or(2);
    let threads = opts.threads.unwrap_or((cores * 2).max(4));
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .thread_name(|i| format!("pinpoint-scan-{i}"))
        .build()
        .map_err(|e| Error::invalid(format!("cannot start reader threads: {e}")))?;
    let (tx, rx) = crossbeam_channel::bounded::<ReadOutcome>(opts.batch_size * 2);
    let batch_size = opts.batch_size.max(1);

    std::thread::scope(|scope| -> Result<()> {
        scope.spawn(move || {
            use rayon::prelude::*;
            pool.install(|| {
                to_read.into_par_iter().for_each_with(tx, |tx, job| {
                    if cancel.is_cancelled() {
                        return;
                    }
                    let sidecar = job.sidecar.as_ref().map(|s| s.0.clone());
                    let result = contain(|| read_photo_metadata(&job.path, sidecar.as_deref()))
                        .unwrap_or_else(|panic| {
                            Err(Error::metadata(
                                &job.path,
                                format!("reader crashed: {panic}"),
                            ))
                        });
                    let _ = tx.send(ReadOutcome { job, result });
                });
            });
        });
        let mut batch = Vec::with_capacity(batch_size);
        let mut write_result = Ok(());
        for outcome in rx.iter() {
            batch.push(outcome);
            if batch.len() >= batch_size {
                if let Err(e) = write_batch(catalog, &mut batch, vanished, meter, report) {
                    write_result = Err(e);
                    cancel.cancel();
                    break;
                }
            }
        }
        // Drain so the readers can finish after a failure or cancellation.
        if write_result.is_err() {
            for _ in rx.iter() {}
        }
        write_result?;
        write_batch(catalog, &mut batch, vanished, meter, report)?;
        cancel.check()
    })
}

fn write_batch(
    catalog: &mut Catalog,
    batch: &mut Vec<ReadOutcome>,
    vanished: &mut Vanished,
    meter: &mut ProgressMeter,
    report: &mut ScanReport,
) -> Result<()> {
    if batch.is_empty() {
        return Ok(());
    }
    let tx = catalog.conn_mut().transaction()?;
    let mut n_errors = 0;
    for ReadOutcome { job, result } in batch.iter() {
        report.read += 1;
        match result {
            Ok(md) => {
                for w in &md.warnings {
                    report.warnings.push(FileProblem {
                        path: job.path.clone(),
                        reason: w.clone(),
                    });
                }
                let update = PhotoUpdate {
                    root_id: job.root_id,
                    path: &job.path,
                    metadata: md,
                    sidecar_mtime_ns: job.sidecar.as_ref().map(|s| s.1),
                };
                if let Some(id) = job.existing_id {
                    rows::update_photo(&tx, id, &update)?;
                    report.updated += 1;
                } else {
                    let moved_from = vanished.get_mut(&md.content_hash).and_then(|candidates| {
                        let i = candidates.iter().position(|(_, old)| !old.exists())?;
                        Some(candidates.swap_remove(i))
                    });
                    match moved_from {
                        Some((id, _)) => {
                            rows::update_photo(&tx, id, &update)?;
                            report.moved += 1;
                        }
                        None => {
                            rows::insert_photo(&tx, &update)?;
                            report.added += 1;
                        }
                    }
                }
                rows::forget_unreadable(&tx, &job.path)?;
            }
            Err(e) => {
                n_errors += 1;
                let reason = match e {
                    Error::Metadata { reason, .. } => reason.clone(),
                    Error::Io { source, .. } => source.to_string(),
                    other => other.to_string(),
                };
                rows::record_unreadable(
                    &tx,
                    job.root_id,
                    &job.path,
                    job.size,
                    job.mtime_ns,
                    &reason,
                )?;
                report.errors.push(FileProblem {
                    path: job.path.clone(),
                    reason,
                });
            }
        }
    }
    tx.commit()?;
    let n = batch.len() as u64;
    batch.clear();
    meter.errors += n_errors;
    meter.advance(n);
    Ok(())
}
