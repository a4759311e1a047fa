//! Reference databases: downloadable sets of geotagged images (descriptors, locations, previews)
//! that cover the places a user's own photos do not.
//!
//! Install: download (resuming with Range) or copy into a staging file beside the install folder,
//! check its SHA-256, open it (SQLite integrity, manifest sanity, counts), check its model —
//! describing it again from its stored images when it was made with another model — build its
//! index, and only then rename database and index into place (under names of their own, so that an
//! installed version stays whole until the record switches) and record them. Any failure leaves
//! nothing half-installed; a crash leaves files that no record names, which the next install or
//! `recover` removes. One install runs at a time per catalog (a lock on the staging folder).

pub mod build;
pub mod download;
pub mod format;

use std::path::{Path, PathBuf};
use std::sync::Mutex;

use serde::{Deserialize, Serialize};

use crate::catalog::{Catalog, InstalledDb};
use crate::error::{Error, IoContext, Result};
use crate::index::{ExactIndex, HnswIndex, HnswParams};
use crate::locate::references::{RefInfo, RefLookup, ReferenceSet, SearchIndex, HNSW_THRESHOLD};
use crate::model::{sha256_file, LoadedModel};
use crate::progress::{CancelToken, ProgressMeter, ProgressSink};
use format::{RefDb, RefRow};

/// An entry of a published catalog of databases (what `pinpoint refdb publish` writes).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CatalogEntry {
    pub name: String,
    pub version: String,
    /// [min_lat, min_lon, max_lat, max_lon]
    pub region: [f64; 4],
    pub bytes: u64,
    pub count: u64,
    pub sha256: String,
    pub url: String,
    pub model_name: String,
    pub model_sha256: String,
    pub descriptor_dim: usize,
    pub licence: String,
    pub attribution: String,
}

/// Writes the catalog entries for `files`, to be served next to them under `base_url`.
pub fn publish(files: &[PathBuf], base_url: &str) -> Result<Vec<CatalogEntry>> {
    files
        .iter()
        .map(|f| {
            let db = RefDb::open(f)?;
            let m = &db.manifest;
            let name = f
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Ok(CatalogEntry {
                name: m.name.clone(),
                version: m.version.clone(),
                region: m.bbox,
                bytes: std::fs::metadata(f).at(f)?.len(),
                count: m.count,
                sha256: sha256_file(f)?,
                url: format!("{}/{}", base_url.trim_end_matches('/'), name),
                model_name: m.model_name.clone(),
                model_sha256: m.model_sha256.clone(),
                descriptor_dim: m.descriptor_dim,
                licence: m.licence.clone(),
                attribution: m.attribution.clone(),
            })
        })
        .collect()
}

/// The databases a published catalog offers.
pub fn available(catalog_url: &str) -> Result<Vec<CatalogEntry>> {
    let text = download::get_text(catalog_url)?;
    serde_json::from_str(&text)
        .map_err(|e| Error::invalid(format!("{catalog_url}: not a database catalog: {e}")))
}

/// What to install.
#[derive(Debug, Clone)]
pub enum InstallSource {
    /// A database of a published catalog, by name.
    Name { name: String, catalog_url: String },
    /// A database at a URL, with the SHA-256 it must have when known.
    Url { url: String, sha256: Option<String> },
    /// A local file.
    File(PathBuf),
}

#[derive(Debug, Clone, Serialize)]
pub struct InstallReport {
    pub installed: InstalledDb,
    pub redescribed: bool,
    pub index: String,
    pub seconds: f64,
}

/// Whether `s` names an HTTP(S) resource.
pub fn is_url(s: &str) -> bool {
    s.starts_with("http://") || s.starts_with("https://")
}

/// Installs a reference database for `model` (see the module documentation for the steps).
pub fn install(
    catalog: &Catalog,
    source: &InstallSource,
    model: &LoadedModel,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<InstallReport> {
    let started = std::time::Instant::now();
    let dir = catalog.refdb_dir();
    std::fs::create_dir_all(&dir).at(&dir)?;
    let staging = dir.join(".staging");
    std::fs::create_dir_all(&staging).at(&staging)?;
    // One install at a time per catalog; what an interrupted one left goes first.
    let _lock = InstallLock::acquire(&staging, true)?;
    remove_leftovers(catalog, &dir)?;
    // 1. Get the bytes into a staging file.
    let (staged, expected) = match source {
        InstallSource::Name { name, catalog_url } => {
            let entry = available(catalog_url)?
                .into_iter()
                .find(|e| &e.name == name)
                .ok_or_else(|| {
                    Error::NotFound(format!("no database named {name:?} in {catalog_url}"))
                })?;
            let partial = staging.join(format!("{}.download", safe_name(&entry.url)));
            download::download(&entry.url, &partial, progress, cancel)?;
            (partial, Some(entry.sha256))
        }
        InstallSource::Url { url, sha256 } => {
            let partial = staging.join(format!("{}.download", safe_name(url)));
            download::download(url, &partial, progress, cancel)?;
            (partial, sha256.clone())
        }
        InstallSource::File(f) => {
            let copy = staging.join(format!("{}.copy", safe_name(&f.display().to_string())));
            std::fs::copy(f, &copy).map_err(|e| {
                let _ = std::fs::remove_file(&copy);
                Error::io(f, e)
            })?;
            (copy, None)
        }
    };
    // A local file's staged copy is ours to move; a download is kept until installed, to resume.
    let keep_staged = !matches!(source, InstallSource::File(_));
    let result = install_staged(
        catalog,
        &staged,
        expected.as_deref(),
        keep_staged,
        model,
        progress,
        cancel,
    );
    // A complete download is kept after a failure only when its bytes are known to be right (its
    // SHA-256 matches): anything else would be "resumed" into the same failure next time.
    let keep = result.is_err()
        && keep_staged
        && expected.is_some()
        && sha256_file(&staged).ok().as_deref() == expected.as_deref();
    if !keep {
        let _ = std::fs::remove_file(&staged);
    }
    let (installed, redescribed, index) = result?;
    Ok(InstallReport {
        installed,
        redescribed,
        index,
        seconds: started.elapsed().as_secs_f64(),
    })
}

/// Describes installed databases again with `model` (after `train` adopted a fine-tuned model, or
/// `model use` switched): `names`, or every installed database described with another model. Each
/// is installed anew from its own file — a staged copy described again and indexed, then moved
/// into place — so a failure or a cancel leaves the installed one as it was. Enabled or disabled,
/// each stays as the user had it.
pub fn redescribe_installed(
    catalog: &Catalog,
    names: &[String],
    model: &LoadedModel,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<Vec<InstallReport>> {
    let installed = catalog.refdbs()?;
    for name in names {
        if !installed.iter().any(|d| &d.name == name) {
            return Err(Error::NotFound(format!(
                "no installed reference database named {name:?}"
            )));
        }
    }
    let mut reports = Vec::new();
    for db in installed
        .into_iter()
        .filter(|d| names.is_empty() || names.contains(&d.name))
        .filter(|d| d.model_hash != model.hash)
    {
        cancel.check()?;
        let report = install(
            catalog,
            &InstallSource::File(db.path.clone()),
            model,
            progress,
            cancel,
        )?;
        if !db.enabled {
            catalog.set_refdb_enabled(&db.name, false)?;
        }
        reports.push(report);
    }
    Ok(reports)
}

/// An advisory lock on the staging folder, held for a whole install: a second install of the same
/// catalog waits, and `recover` leaves a running install's files alone. The system releases it
/// when the process ends, however it ends. Where a folder cannot be locked, installs go unlocked.
struct InstallLock(#[allow(dead_code)] Option<std::fs::File>);

impl InstallLock {
    /// `None` when `wait` is false and another process holds the lock.
    fn acquire(staging: &Path, wait: bool) -> Result<Option<InstallLock>> {
        use fs2::FileExt;
        let Ok(f) = std::fs::File::open(staging) else {
            return Ok(Some(InstallLock(None)));
        };
        if wait {
            return match f.lock_exclusive() {
                Ok(()) => Ok(Some(InstallLock(Some(f)))),
                Err(e) if e.kind() == std::io::ErrorKind::Unsupported => {
                    Ok(Some(InstallLock(None)))
                }
                Err(e) => Err(Error::io(staging, e)),
            };
        }
        Ok(match f.try_lock_exclusive() {
            Ok(()) => Some(InstallLock(Some(f))),
            Err(e) if e.kind() == std::io::ErrorKind::WouldBlock => None,
            Err(e) if e.raw_os_error() == fs2::lock_contended_error().raw_os_error() => None,
            Err(_) => Some(InstallLock(None)),
        })
    }
}

fn sync_dir(dir: &Path) {
    if let Ok(d) = std::fs::File::open(dir) {
        let _ = d.sync_all();
    }
}

/// Removes what interrupted installs left (the install lock held): every work file of the staging
/// folder but resumable downloads, and every database file or index in the install folder that no
/// installed database records. Returns what was removed.
fn remove_leftovers(catalog: &Catalog, dir: &Path) -> Result<Vec<PathBuf>> {
    let mut removed = Vec::new();
    let remove = |p: PathBuf, removed: &mut Vec<PathBuf>| -> Result<()> {
        let r = if p.is_dir() {
            std::fs::remove_dir_all(&p)
        } else {
            std::fs::remove_file(&p)
        };
        match r {
            Ok(()) => removed.push(p),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
            Err(e) => return Err(Error::io(&p, e)),
        }
        Ok(())
    };
    let staging = dir.join(".staging");
    if let Ok(entries) = std::fs::read_dir(&staging) {
        for e in entries.filter_map(|e| e.ok()) {
            if !e.file_name().to_string_lossy().ends_with(".download") {
                remove(e.path(), &mut removed)?;
            }
        }
    }
    let recorded: Vec<PathBuf> = catalog
        .refdbs()?
        .into_iter()
        .flat_map(|d| std::iter::once(d.path).chain(d.index_path))
        .collect();
    if let Ok(entries) = std::fs::read_dir(dir) {
        for e in entries.filter_map(|e| e.ok()) {
            let name = e.file_name().to_string_lossy().into_owned();
            let ours = name.ends_with(".pinpointdb") || name.ends_with(".index");
            if ours && !recorded.iter().any(|r| r == &e.path()) {
                remove(e.path(), &mut removed)?;
            }
        }
    }
    Ok(removed)
}

/// Settles installs a crash interrupted: removes their work files and any database or index they
/// had moved into place but not recorded (see [`install`]). An install running now is left alone.
pub fn recover(catalog: &Catalog) -> Result<Vec<PathBuf>> {
    let dir = catalog.refdb_dir();
    let staging = dir.join(".staging");
    if !staging.is_dir() {
        return Ok(Vec::new());
    }
    match InstallLock::acquire(&staging, false)? {
        Some(_lock) => remove_leftovers(catalog, &dir),
        None => Ok(Vec::new()),
    }
}

fn safe_name(s: &str) -> String {
    let h = blake3::hash(s.as_bytes()).to_hex();
    h[..16].to_string()
}

fn install_staged(
    catalog: &Catalog,
    staged: &Path,
    expected: Option<&str>,
    keep_staged: bool,
    model: &LoadedModel,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<(InstalledDb, bool, String)> {
    let mut meter = ProgressMeter::new(progress, "install");
    meter.stage("verifying", None);
    let sha = sha256_file(staged)?;
    if let Some(want) = expected {
        if want != sha {
            return Err(Error::invalid(format!(
                "downloaded file has SHA-256 {sha}, the catalog says {want}: not installed"
            )));
        }
    }
    meter.stage("checking", None);
    let manifest = RefDb::open(staged)?.manifest;
    // Everything is prepared under these two names; on any failure both are removed.
    let work = staged.with_extension("work");
    let stage_index = staged.with_extension("index");
    meter.stage("copying", None);
    let prepared = prepare(
        staged,
        &work,
        keep_staged,
        &stage_index,
        &sha,
        &manifest,
        model,
        progress,
        cancel,
    );
    let (final_manifest, redescribed, has_index) = match prepared {
        Ok(p) => p,
        Err(e) => {
            let _ = std::fs::remove_file(&work);
            let _ = std::fs::remove_dir_all(&stage_index);
            return Err(e);
        }
    };
    // Into place under names no installed database uses (an installed one of the same name stays
    // whole until the record switches): the index, the database, the folder synced, the record,
    // then the files of the version it replaces. A crash before the record leaves files no record
    // names, which the next install or `recover` removes.
    let dir = catalog.refdb_dir();
    let stem = format!(
        "{}-{}-{:x}",
        manifest.name,
        &sha[..sha.len().min(12)],
        std::time::SystemTime::now()
            .duration_since(std::time::UNIX_EPOCH)
            .map(|d| d.as_nanos())
            .unwrap_or_default()
    );
    let final_db = dir.join(format!("{stem}.pinpointdb"));
    let final_index = has_index.then(|| dir.join(format!("{stem}.index")));
    let placed = (|| -> Result<()> {
        if let Some(dest) = &final_index {
            std::fs::rename(&stage_index, dest).at(dest)?;
        }
        std::fs::rename(&work, &final_db).at(&final_db)?;
        sync_dir(&dir);
        Ok(())
    })();
    if let Err(e) = placed {
        let _ = std::fs::remove_file(&work);
        let _ = std::fs::remove_dir_all(&stage_index);
        let _ = std::fs::remove_file(&final_db);
        if let Some(i) = &final_index {
            let _ = std::fs::remove_dir_all(i);
        }
        return Err(e);
    }
    let replaced = catalog.refdb(&final_manifest.name)?;
    let installed = InstalledDb {
        name: final_manifest.name.clone(),
        version: final_manifest.version.clone(),
        path: final_db,
        index_path: final_index,
        sha256: sha,
        model_hash: final_manifest.model_sha256.clone(),
        count: final_manifest.count,
        manifest: serde_json::to_value(&final_manifest).expect("serialises"),
        enabled: true,
        installed_at: 0,
    };
    if let Err(e) = catalog.record_refdb(&installed) {
        let _ = std::fs::remove_file(&installed.path);
        if let Some(i) = &installed.index_path {
            let _ = std::fs::remove_dir_all(i);
        }
        return Err(e);
    }
    if let Some(old) = replaced {
        if old.path != installed.path {
            let _ = std::fs::remove_file(&old.path);
        }
        if let Some(i) = old
            .index_path
            .filter(|i| Some(i) != installed.index_path.as_ref())
        {
            let _ = std::fs::remove_dir_all(i);
        }
    }
    Ok((
        installed,
        redescribed,
        if has_index { "hnsw" } else { "exact" }.to_string(),
    ))
}

/// The working copy, described again if its model is not the active one, and its index.
#[allow(clippy::too_many_arguments)]
fn prepare(
    staged: &Path,
    work: &Path,
    keep_staged: bool,
    stage_index: &Path,
    sha: &str,
    manifest: &format::Manifest,
    model: &LoadedModel,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<(format::Manifest, bool, bool)> {
    if keep_staged {
        std::fs::copy(staged, work).at(work)?;
    } else {
        std::fs::rename(staged, work).at(work)?;
    }
    let mut redescribed = false;
    if manifest.model_sha256 != model.hash {
        if !manifest.has_images {
            return Err(Error::invalid(format!(
                "{} was described with model {} ({}), the active model is {} ({}), and it holds no images to describe again: install a version made for the active model",
                manifest.name,
                manifest.model_name,
                &manifest.model_sha256[..manifest.model_sha256.len().min(12)],
                model.card.name,
                &model.hash[..12]
            )));
        }
        redescribe(work, model, progress, cancel)?;
        redescribed = true;
    }
    // The staged file was checked in full; the copy again only when it was rewritten.
    let db = if redescribed {
        RefDb::open(work)?
    } else {
        RefDb::open_installed(work)?
    };
    let has_index = db.manifest.count as usize >= HNSW_THRESHOLD.min(5_000);
    if has_index {
        let items = db.descriptors()?;
        let mut meter = ProgressMeter::new(progress, "install");
        meter.stage("indexing", None);
        let index = HnswIndex::build(
            db.manifest.descriptor_dim,
            &items,
            HnswParams::default(),
            sha,
        )?;
        drop(items);
        index.save_for_search(stage_index, "index")?;
        meter.finish();
    }
    Ok((db.manifest.clone(), redescribed, has_index))
}

/// Describes every reference of `path` again with `model`, from its stored images.
fn redescribe(
    path: &Path,
    model: &LoadedModel,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<()> {
    let conn = rusqlite::Connection::open(path).map_err(|source| Error::Catalog {
        path: path.to_path_buf(),
        source,
    })?;
    let tmp = tempfile::Builder::new()
        .prefix("pinpoint-redescribe")
        .tempdir()
        .map_err(|e| Error::io(path, e))?;
    let ids: Vec<i64> = {
        let mut stmt = conn.prepare("SELECT id FROM refs ORDER BY id")?;
        let v = stmt
            .query_map([], |r| r.get(0))?
            .collect::<rusqlite::Result<_>>()?;
        v
    };
    let mut meter = ProgressMeter::new(progress, "install");
    meter.stage("describing again", Some(ids.len() as u64));
    let f16 = {
        let t: String = conn.query_row(
            "SELECT value FROM manifest WHERE key = 'descriptor_type'",
            [],
            |r| r.get(0),
        )?;
        t.contains("f16")
    };
    for chunk in ids.chunks(32) {
        cancel.check()?;
        let mut jobs = Vec::new();
        for id in chunk {
            let img: Option<Vec<u8>> =
                conn.query_row("SELECT image FROM refs WHERE id = ?1", [id], |r| r.get(0))?;
            let img = img.ok_or_else(|| {
                Error::invalid(format!(
                    "{}: reference {id} has no stored image",
                    path.display()
                ))
            })?;
            let p = tmp.path().join(format!("{id}.jpg"));
            std::fs::write(&p, img).at(&p)?;
            jobs.push(crate::model::describe::DescribeJob {
                path: p,
                orientation: Some(1),
            });
        }
        let opts = crate::model::describe::DescribeOptions {
            long_side: model.card.input.long_side,
            ..Default::default()
        };
        let results = crate::model::describe::describe_paths(
            model,
            &jobs,
            &opts,
            &crate::progress::NoProgress,
            cancel,
        )?;
        let tx = conn.unchecked_transaction()?;
        for (id, r) in chunk.iter().zip(results) {
            let v = r?;
            tx.execute(
                "UPDATE descriptors SET vector = ?2 WHERE id = ?1",
                rusqlite::params![id, format::encode_vector(&v, f16)],
            )?;
        }
        tx.commit()?;
        meter.advance(chunk.len() as u64);
    }
    let mut manifest = RefDb::open_installed(path).map(|d| d.manifest)?;
    manifest.model_name = model.card.name.clone();
    manifest.model_sha256 = model.hash.clone();
    manifest.descriptor_dim = model.net.descriptor_dim();
    manifest.write(&conn)?;
    meter.finish();
    Ok(())
}

/// The ~320 px JPEG preview of reference `id` of the installed database `name` (for evidence).
pub fn preview(catalog: &Catalog, name: &str, id: i64) -> Result<Vec<u8>> {
    let installed = catalog
        .refdb(name)?
        .ok_or_else(|| Error::NotFound(format!("no installed database named {name:?}")))?;
    RefDb::open_installed(&installed.path)?
        .preview(id)?
        .ok_or_else(|| Error::NotFound(format!("{name} has no reference #{id}")))
}

/// Removes an installed database and its index.
pub fn remove(catalog: &Catalog, name: &str) -> Result<()> {
    let db = catalog
        .refdb(name)?
        .ok_or_else(|| Error::NotFound(format!("no installed database named {name:?}")))?;
    catalog.forget_refdb(name)?;
    let _ = std::fs::remove_file(&db.path);
    if let Some(i) = &db.index_path {
        let _ = std::fs::remove_dir_all(i);
    }
    Ok(())
}

/// The enabled databases made for `model_hash`, as reference sets for proposals.
pub fn reference_sets(catalog: &Catalog, model_hash: &str) -> Result<Vec<ReferenceSet>> {
    let mut out = Vec::new();
    for installed in catalog
        .refdbs()?
        .into_iter()
        .filter(|d| d.enabled && d.model_hash == model_hash)
    {
        let db = RefDb::open_installed(&installed.path)?;
        let index = match &installed.index_path {
            Some(dir) => SearchIndex::Hnsw(Box::new(HnswIndex::open_for_search(dir, "index")?)),
            None => SearchIndex::Exact(ExactIndex::with_vectors(
                db.manifest.descriptor_dim,
                db.descriptors()?,
            )),
        };
        let attribution = Some(db.manifest.attribution.clone()).filter(|a| !a.is_empty());
        out.push(ReferenceSet {
            name: installed.name.clone(),
            index,
            refs: Box::new(DbRefs {
                db: Mutex::new(db),
                name: installed.name,
                attribution,
            }),
        });
    }
    Ok(out)
}

/// Looks references up in their database on demand (a million of them are never all loaded).
pub struct DbRefs {
    db: Mutex<RefDb>,
    name: String,
    attribution: Option<String>,
}

impl RefLookup for DbRefs {
    fn get(&self, id: i64) -> Option<RefInfo> {
        let db = self.db.lock().ok()?;
        let r: RefRow = db.reference(id).ok()??;
        Some(RefInfo {
            location: r.location,
            source: self.name.clone(),
            path_or_id: r.source_id.unwrap_or_else(|| format!("#{}", r.id)),
            photo_id: None,
            taken_at: None,
            camera: None,
            attribution: r
                .licence
                .map(|l| format!("{}; {l}", self.attribution.clone().unwrap_or_default()))
                .or(self.attribution.clone()),
            ref_id: Some(r.id),
        })
    }
}
