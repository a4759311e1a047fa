//! Writing locations without ever harming a photo.
//!
//! Every write goes through the same steps:
//! 1. The new bytes are made in memory (`containers` for the photo's own EXIF, `sidecar` for XMP)
//!    and checked there: everything outside the metadata block is identical, every EXIF field but
//!    the GPS ones reads back the same.
//! 2. The journal records the write — file, hashes before and after, and the reverse patch that
//!    restores the old bytes — and is committed before the file is touched.
//! 3. The bytes go to a temporary file in the same folder, which is fsynced, read back and
//!    verified (hash, position read back exactly, other metadata unchanged), given the original's
//!    permissions and modification time, then renamed over the original, and the folder is fsynced.
//! 4. The journal marks the write done and the catalog takes the new location.
//!
//! A crash at any moment leaves the file wholly old or wholly new (rename is atomic); on the next
//! start `recover` settles each pending write by the file's hash. Undo applies the reverse patches
//! (checking hashes on both sides) as a new batch, which can itself be undone.

pub mod containers;
pub mod patch;
pub mod sidecar;
pub mod tiff_gps;

use std::io::Write;
use std::path::{Path, PathBuf};

use serde::Serialize;

use crate::catalog::{Catalog, EditRow, NewEdit, PhotoRecord};
use crate::error::{Error, IoContext, Result};
use crate::geo::GeoPoint;
use crate::library::{FileProblem, LocationSource, PhotoFormat};
use crate::progress::{CancelToken, ProgressMeter, ProgressSink};
use patch::Reverse;

/// Where locations are written.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum WriteMode {
    /// Into the photo's own metadata; a sidecar for formats without a safe writer, RAW files and
    /// read-only files.
    Embed,
    /// Into an XMP sidecar only; the photo is never opened for writing.
    Sidecar,
    /// Both.
    Both,
}

impl std::str::FromStr for WriteMode {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "embed" => WriteMode::Embed,
            "sidecar" => WriteMode::Sidecar,
            "both" => WriteMode::Both,
            other => {
                return Err(Error::invalid(format!(
                    "write mode {other:?}: use embed, sidecar or both"
                )))
            }
        })
    }
}

#[derive(Debug, Clone)]
pub struct TagOptions {
    pub mode: WriteMode,
    /// Keep each file's modification time (default): photo organizers sort by it.
    pub preserve_mtime: bool,
}

impl Default for TagOptions {
    fn default() -> Self {
        TagOptions {
            mode: WriteMode::Embed,
            preserve_mtime: true,
        }
    }
}

impl TagOptions {
    /// The write mode saved in the catalog's settings, if any.
    pub fn from_catalog(catalog: &Catalog) -> Result<Self> {
        let mut o = TagOptions::default();
        if let Some(m) = catalog
            .setting("write.mode")?
            .and_then(|v| v.as_str().map(str::to_string))
        {
            o.mode = m.parse()?;
        }
        if let Some(p) = catalog
            .setting("write.preserve_mtime")?
            .and_then(|v| v.as_bool())
        {
            o.preserve_mtime = p;
        }
        Ok(o)
    }
}

/// Set (`Some`) or clear (`None`) one photo's location.
#[derive(Debug, Clone)]
pub struct TagRequest {
    pub photo_id: i64,
    pub point: Option<GeoPoint>,
    pub source: LocationSource,
}

#[derive(Debug, Clone, Serialize)]
pub struct Written {
    pub photo_id: Option<i64>,
    pub path: PathBuf,
    pub target: String,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct TagReport {
    pub batch_id: i64,
    pub written: Vec<Written>,
    /// Photos whose location was already as asked.
    pub unchanged: usize,
    pub errors: Vec<FileProblem>,
    pub notes: Vec<FileProblem>,
    pub cancelled: bool,
}

fn full_hash(bytes: &[u8]) -> [u8; 32] {
    *blake3::hash(bytes).as_bytes()
}

/// Marks a file that does not exist (a sidecar created by a write, or removed by an undo).
const ABSENT: [u8; 32] = [0; 32];

fn temp_path(path: &Path, edit_id: i64) -> PathBuf {
    let name = path
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default();
    path.with_file_name(format!(".{name}.pinpoint-{edit_id}.tmp"))
}

/// Writes `bytes` over `path` atomically: temp file, fsync, read back and check, permissions and
/// times of the original, rename, fsync of the folder. `check` verifies the written temp file.
fn write_atomic(
    path: &Path,
    bytes: &[u8],
    edit_id: i64,
    preserve_mtime: bool,
    check: &dyn Fn(&Path) -> std::result::Result<(), String>,
) -> Result<()> {
    let tmp = temp_path(path, edit_id);
    let original = std::fs::metadata(path).ok();
    let result = (|| -> Result<()> {
        let mut f = std::fs::OpenOptions::new()
            .write(true)
            .create_new(true)
            .open(&tmp)
            .at(&tmp)?;
        f.write_all(bytes).at(&tmp)?;
        if let Some(md) = &original {
            f.set_permissions(md.permissions()).at(&tmp)?;
            if preserve_mtime {
                let mut times = std::fs::FileTimes::new();
                if let Ok(m) = md.modified() {
                    times = times.set_modified(m);
                }
                if let Ok(a) = md.accessed() {
                    times = times.set_accessed(a);
                }
                f.set_times(times).at(&tmp)?;
            }
        }
        f.sync_all().at(&tmp)?;
        drop(f);
        let back = std::fs::read(&tmp).at(&tmp)?;
        if full_hash(&back) != full_hash(bytes) {
            return Err(Error::metadata(
                path,
                "the written file does not read back as written",
            ));
        }
        check(&tmp).map_err(|why| {
            Error::metadata(
                path,
                format!("verification failed, original left untouched: {why}"),
            )
        })?;
        std::fs::rename(&tmp, path).at(path)?;
        if let Some(dir) = path.parent() {
            if let Ok(d) = std::fs::File::open(dir) {
                let _ = d.sync_all();
            }
        }
        Ok(())
    })();
    if result.is_err() {
        let _ = std::fs::remove_file(&tmp);
    }
    result
}

/// Every EXIF field outside GPS, as (ifd, tag, value) text: they must read back the same.
fn exif_fields(bytes: &[u8]) -> Option<Vec<String>> {
    let mut reader = exif::Reader::new();
    reader.continue_on_error(true);
    let exif = match reader.read_from_container(&mut std::io::Cursor::new(bytes)) {
        Ok(e) => e,
        Err(e) => e.distill_partial_result(|_| {}).ok()?,
    };
    let mut out: Vec<String> = exif
        .fields()
        .filter(|f| f.tag.context() != exif::Context::Gps && f.tag != exif::Tag::GPSInfoIFDPointer)
        .map(|f| format!("{:?} {} {:?}", f.ifd_num, f.tag, f.value))
        .collect();
    out.sort();
    Some(out)
}

/// The in-memory checks of a photo rewrite (step 1).
fn check_rewrite(format: PhotoFormat, old: &[u8], new: &[u8]) -> std::result::Result<(), String> {
    match format {
        PhotoFormat::Tiff => {
            if new.len() < old.len() {
                return Err("the TIFF file would shrink".into());
            }
            let changed = old.iter().zip(new).filter(|(a, b)| a != b).count();
            if changed > 16 {
                return Err(format!(
                    "{changed} bytes of the TIFF file would change in place"
                ));
            }
        }
        f => {
            if containers::untouched_parts(f, old) != containers::untouched_parts(f, new) {
                return Err("data outside the EXIF block would change".into());
            }
        }
    }
    if exif_fields(old).unwrap_or_default() != exif_fields(new).unwrap_or_default() {
        return Err("EXIF fields other than GPS would change".into());
    }
    Ok(())
}

fn same_point(a: Option<&GeoPoint>, b: Option<&GeoPoint>) -> bool {
    match (a, b) {
        (None, None) => true,
        (Some(a), Some(b)) => {
            (a.lat - b.lat).abs() < 1e-7
                && (a.lon - b.lon).abs() < 1e-7
                && match (a.alt, b.alt) {
                    (Some(x), Some(y)) => (x - y).abs() < 0.01,
                    (None, None) => true,
                    _ => false,
                }
        }
        _ => false,
    }
}

/// Refuses paths that are symbolic links leading out of every library root.
fn check_inside_roots(catalog: &Catalog, path: &Path) -> Result<PathBuf> {
    let real = std::fs::canonicalize(path).at(path)?;
    let roots = catalog.roots()?;
    if !roots.iter().any(|r| real.starts_with(&r.path)) {
        return Err(Error::invalid(format!(
            "{}: resolves to {}, outside every library root; not written",
            path.display(),
            real.display()
        )));
    }
    Ok(real)
}

/// The photo must be as the catalog last saw it: someone else may have changed it since.
fn check_unchanged(photo: &PhotoRecord, path: &Path) -> Result<()> {
    let md = std::fs::metadata(path).at(path)?;
    if md.len() == photo.size && crate::library::metadata::mtime_ns(&md) == photo.mtime_ns {
        return Ok(());
    }
    let mut f = std::fs::File::open(path).at(path)?;
    let hash = crate::library::metadata::content_hash(&mut f, md.len()).at(path)?;
    if hash != photo.content_hash {
        return Err(Error::metadata(
            path,
            "changed on disk since the last scan; rescan before writing",
        ));
    }
    Ok(())
}

struct Planned {
    path: PathBuf,
    target: &'static str,
    old: Option<Vec<u8>>,
    new: Vec<u8>,
}

/// The sidecar a location goes to: the photo's existing one, else `photo.ext.xmp` (digiKam's name,
/// which cannot clash between a RAW file and its JPEG).
fn sidecar_for(photo: &PhotoRecord) -> PathBuf {
    photo
        .sidecar_path
        .clone()
        .filter(|p| p.is_file())
        .or_else(|| crate::library::xmp::find_sidecar(&photo.path))
        .unwrap_or_else(|| {
            let name = photo
                .path
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            photo.path.with_file_name(format!("{name}.xmp"))
        })
}

/// What a photographer must know when a sidecar takes a position the file's own EXIF contradicts.
fn stale_note(photo: &PhotoRecord, point: Option<&GeoPoint>) -> &'static str {
    let embedded = photo.gps_source == Some(LocationSource::Exif) || photo.embedded_gps_stale;
    match (embedded, point) {
        (true, Some(_)) => {
            " (the file itself keeps its old GPS tag: programs that read only EXIF still show the old place)"
        }
        (true, None) => " (the file itself keeps its GPS tag: programs that read only EXIF still show it)",
        (false, _) => "",
    }
}

/// Decides and prepares the writes for one photo.
fn plan(
    photo: &PhotoRecord,
    real: &Path,
    point: Option<&GeoPoint>,
    opts: &TagOptions,
    notes: &mut Vec<FileProblem>,
) -> Result<Vec<Planned>> {
    let mut out = Vec::new();
    let readonly = std::fs::metadata(real).at(real)?.permissions().readonly();
    let mut want_sidecar = opts.mode != WriteMode::Embed;
    if opts.mode != WriteMode::Sidecar {
        let embeddable = containers::can_embed(photo.format) && !readonly;
        let attempt = if embeddable {
            let old = std::fs::read(real).at(real)?;
            match containers::embed(photo.format, &old, point) {
                Ok(new) => {
                    check_rewrite(photo.format, &old, &new)
                        .map_err(|why| Error::metadata(real, why))?;
                    Some((old, new))
                }
                Err(containers::EmbedError::Unsupported(why)) => {
                    notes.push(FileProblem {
                        path: real.to_path_buf(),
                        reason: format!(
                            "{why}; written to a sidecar instead{}",
                            stale_note(photo, point)
                        ),
                    });
                    None
                }
                Err(containers::EmbedError::Damaged(why)) => {
                    return Err(Error::metadata(
                        real,
                        format!("damaged file, not written: {why}"),
                    ));
                }
            }
        } else {
            let why = if readonly {
                "read-only file".to_string()
            } else {
                format!("{} files are not written", photo.format.as_str())
            };
            notes.push(FileProblem {
                path: real.to_path_buf(),
                reason: format!(
                    "{why}; written to a sidecar instead{}",
                    stale_note(photo, point)
                ),
            });
            None
        };
        match attempt {
            Some((old, new)) => {
                if old != new {
                    out.push(Planned {
                        path: real.to_path_buf(),
                        target: "embedded",
                        old: Some(old),
                        new,
                    });
                }
                // An existing sidecar with a location would shadow the embedded one: keep it in step.
                let existing = sidecar_for(photo);
                if existing.is_file() {
                    let bytes = std::fs::read(&existing).at(&existing)?;
                    if crate::library::xmp::parse_xmp(&bytes)
                        .map(|x| x.has_gps())
                        .unwrap_or(false)
                    {
                        want_sidecar = true;
                    }
                }
            }
            None => want_sidecar = true,
        }
    }
    if want_sidecar {
        let path = sidecar_for(photo);
        let old = if path.is_file() {
            Some(std::fs::read(&path).at(&path)?)
        } else {
            None
        };
        let new = match (&old, point) {
            (Some(bytes), p) => {
                sidecar::update_sidecar(bytes, p).map_err(|why| Error::metadata(&path, why))?
            }
            (None, Some(p)) => sidecar::new_sidecar(p),
            (None, None) => Vec::new(),
        };
        if old.as_deref() != Some(new.as_slice()) && !(old.is_none() && new.is_empty()) {
            out.push(Planned {
                path,
                target: "sidecar",
                old,
                new,
            });
        }
    }
    Ok(out)
}

/// Performs one planned write with its journal entry, and returns the entry, still pending: it is
/// marked done once the catalog has taken the photo's new state, so that a crash in between leaves
/// it to `recover`, which settles it and refreshes the photo.
fn perform(
    catalog: &Catalog,
    batch_id: i64,
    photo_id: Option<i64>,
    p: &Planned,
    point: Option<&GeoPoint>,
    source: &str,
    preserve_mtime: bool,
) -> Result<i64> {
    let before = p.old.as_deref().map(full_hash);
    let after = full_hash(&p.new);
    let reverse = match &p.old {
        None => Reverse::Delete,
        Some(old) => patch::reverse(old, &p.new)
            .ok_or_else(|| Error::metadata(&p.path, "the change is too large to undo safely"))?,
    };
    if let Some(old) = &p.old {
        if patch::apply(&p.new, &reverse).as_deref() != Some(old.as_slice()) {
            return Err(Error::metadata(
                &p.path,
                "cannot build a faithful undo; not written",
            ));
        }
    }
    let new_location = serde_json::to_value(point).expect("serialises");
    let reverse_json = serde_json::to_string(&reverse).expect("serialises");
    let id = catalog.record_edit(&NewEdit {
        batch_id,
        photo_id,
        path: &p.path,
        target: p.target,
        before_hash: before,
        after_hash: after,
        reverse: &reverse_json,
        new_location: &new_location,
        source,
    })?;
    let target = p.target;
    let check = move |tmp: &Path| -> std::result::Result<(), String> {
        if target == "sidecar" {
            let x =
                crate::library::xmp::parse_xmp(&std::fs::read(tmp).map_err(|e| e.to_string())?)?;
            let got = match (x.gps_latitude, x.gps_longitude) {
                (Some(lat), Some(lon)) => Some(GeoPoint {
                    lat,
                    lon,
                    alt: x.gps_altitude,
                }),
                _ => None,
            };
            return if same_point(got.as_ref(), point) {
                Ok(())
            } else {
                Err(format!("sidecar reads back {got:?}"))
            };
        }
        let md = crate::library::read_photo_metadata(tmp, None).map_err(|e| e.to_string())?;
        let got = md
            .location
            .filter(|l| l.source == LocationSource::Exif)
            .map(|l| l.point);
        if same_point(got.as_ref(), point) {
            Ok(())
        } else {
            Err(format!("the file reads back {got:?} instead of {point:?}"))
        }
    };
    match write_atomic(&p.path, &p.new, id, preserve_mtime, &check) {
        Ok(()) => Ok(id),
        Err(e) => {
            catalog.finish_edit(id, "failed", Some(&e.to_string()))?;
            Err(e)
        }
    }
}

/// Reads a photo's file (and sidecar) again and updates its catalog row; `source` names who set
/// the location now in it.
pub fn refresh_photo(
    catalog: &mut Catalog,
    photo_id: i64,
    source: Option<LocationSource>,
) -> Result<()> {
    let Some(photo) = catalog.photo(photo_id)? else {
        return Ok(());
    };
    let sidecar = crate::library::xmp::find_sidecar(&photo.path);
    let md = crate::library::read_photo_metadata(&photo.path, sidecar.as_deref())?;
    let sidecar_mtime = sidecar
        .as_ref()
        .and_then(|s| std::fs::metadata(s).ok())
        .map(|m| crate::library::metadata::mtime_ns(&m));
    catalog.update_photo_from(photo_id, photo.root_id, &photo.path, &md, sidecar_mtime)?;
    if let (Some(src), Some(_)) = (source, md.location) {
        catalog.set_location_source(photo_id, src)?;
    }
    Ok(())
}

/// Settles writes a crash left pending: done if the file holds the new bytes, rolled back if it
/// still holds the old ones, failed (and reported) if it holds something else. Leftover temporary
/// files are removed.
pub fn recover(catalog: &mut Catalog) -> Result<Vec<EditRow>> {
    let pending = catalog.pending_edits()?;
    for e in &pending {
        let _ = std::fs::remove_file(temp_path(&e.path, e.id));
        let current = std::fs::read(&e.path)
            .ok()
            .map(|b| full_hash(&b))
            .unwrap_or(ABSENT);
        let state = if current == e.after_hash {
            "done"
        } else if Some(current) == e.before_hash || (e.before_hash.is_none() && current == ABSENT) {
            "rolled_back"
        } else {
            "failed"
        };
        let note = (state == "failed").then_some("changed by another program during the write");
        catalog.finish_edit(e.id, state, note)?;
        if let Some(pid) = e.photo_id {
            let source = match e.source.as_str() {
                "proposal" => Some(LocationSource::Proposal),
                "user" => Some(LocationSource::User),
                _ => None,
            };
            let _ = refresh_photo(catalog, pid, if state == "done" { source } else { None });
        }
    }
    Ok(pending)
}

/// Writes the requested locations as one batch (one journal entry that undoes as a whole).
/// A photo that cannot be written is reported and left untouched; the batch goes on.
pub fn apply(
    catalog: &mut Catalog,
    requests: &[TagRequest],
    opts: &TagOptions,
    description: &str,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<TagReport> {
    recover(catalog)?;
    let batch_id = catalog.begin_batch(description, None)?;
    let mut report = TagReport {
        batch_id,
        ..Default::default()
    };
    let mut meter = ProgressMeter::new(progress, "write");
    meter.stage("writing", Some(requests.len() as u64));
    for r in requests {
        if cancel.is_cancelled() {
            report.cancelled = true;
            break;
        }
        let source = match r.source {
            LocationSource::Proposal => "proposal",
            _ => "user",
        };
        let outcome = (|| -> Result<usize> {
            let photo = catalog
                .photo(r.photo_id)?
                .ok_or_else(|| Error::NotFound(format!("photo {}", r.photo_id)))?;
            let real = check_inside_roots(catalog, &photo.path)?;
            check_unchanged(&photo, &real)?;
            let planned = plan(&photo, &real, r.point.as_ref(), opts, &mut report.notes)?;
            let mut written = Vec::new();
            let mut failure = None;
            for p in &planned {
                match perform(
                    catalog,
                    batch_id,
                    Some(photo.id),
                    p,
                    r.point.as_ref(),
                    source,
                    opts.preserve_mtime,
                ) {
                    Ok(id) => {
                        written.push(id);
                        report.written.push(Written {
                            photo_id: Some(photo.id),
                            path: p.path.clone(),
                            target: p.target.to_string(),
                        });
                    }
                    Err(e) => {
                        failure = Some(e);
                        break;
                    }
                }
            }
            // The catalog takes what is now on disk (also when a second write of the photo
            // failed after the first went through), then the writes are marked done.
            if !written.is_empty() || failure.is_none() {
                refresh_photo(catalog, photo.id, r.point.map(|_| r.source))?;
            }
            for id in written {
                catalog.finish_edit(id, "done", None)?;
            }
            if let Some(e) = failure {
                return Err(e);
            }
            if r.point.is_none() && catalog.photo(photo.id)?.is_some_and(|p| p.gps.is_some()) {
                report.notes.push(FileProblem {
                    path: photo.path.clone(),
                    reason: "still has a location in its own EXIF (a sidecar cannot hide it): clear with --mode embed".into(),
                });
            }
            Ok(planned.len())
        })();
        match outcome {
            Ok(0) => report.unchanged += 1,
            Ok(_) => {}
            Err(e) => {
                meter.error();
                let path = catalog
                    .photo(r.photo_id)
                    .ok()
                    .flatten()
                    .map(|p| p.path)
                    .unwrap_or_default();
                let reason = match e {
                    Error::Metadata { reason, .. } => reason,
                    Error::Io { source, .. } => source.to_string(),
                    other => other.to_string(),
                };
                report.errors.push(FileProblem { path, reason });
            }
        }
        meter.advance(1);
    }
    meter.finish();
    Ok(report)
}

/// Undoes a batch: each of its writes is reversed (newest first) as a new batch; a file that was
/// changed since is reported and left alone.
pub fn undo_batch(catalog: &mut Catalog, batch_id: i64, preserve_mtime: bool) -> Result<TagReport> {
    recover(catalog)?;
    let batch = catalog
        .batch(batch_id)?
        .ok_or_else(|| Error::NotFound(format!("edit batch {batch_id}")))?;
    if let Some(by) = batch.undone_by {
        return Err(Error::invalid(format!(
            "batch {batch_id} was already undone by batch {by}"
        )));
    }
    let undo_id = catalog.begin_batch(
        &format!("undo of batch {batch_id}: {}", batch.description),
        Some(batch_id),
    )?;
    let mut report = TagReport {
        batch_id: undo_id,
        ..Default::default()
    };
    let mut touched = Vec::new();
    for e in batch.edits.iter().rev().filter(|e| e.state == "done") {
        let outcome = (|| -> Result<()> {
            let current = match std::fs::read(&e.path) {
                Ok(b) => b,
                Err(err) if err.kind() == std::io::ErrorKind::NotFound => Vec::new(),
                Err(err) => return Err(Error::io(&e.path, err)),
            };
            let current_hash = if current.is_empty() && !e.path.exists() {
                ABSENT
            } else {
                full_hash(&current)
            };
            if current_hash != e.after_hash {
                return Err(Error::metadata(
                    &e.path,
                    "changed since Pinpoint wrote it; not undone",
                ));
            }
            let reverse: Reverse = serde_json::from_str(&e.reverse)
                .map_err(|err| Error::metadata(&e.path, format!("damaged journal entry: {err}")))?;
            let restored: Option<Vec<u8>> = match &reverse {
                Reverse::Delete => None,
                r => Some(patch::apply(&current, r).ok_or_else(|| {
                    Error::metadata(&e.path, "the undo record does not fit the file")
                })?),
            };
            if restored.as_deref().map(full_hash) != e.before_hash {
                return Err(Error::metadata(
                    &e.path,
                    "the restored bytes would not match the original; not undone",
                ));
            }
            // The undo is itself journaled, so a crash settles it and it can be undone (redo).
            let redo = match &restored {
                Some(old) => patch::reverse(old, &current)
                    .ok_or_else(|| Error::metadata(&e.path, "cannot journal the undo"))?,
                None => Reverse::Splice {
                    at: 0,
                    new_len: 0,
                    old: current.clone(),
                },
            };
            let id = catalog.record_edit(&NewEdit {
                batch_id: undo_id,
                photo_id: e.photo_id,
                path: &e.path,
                target: &e.target,
                before_hash: Some(current_hash).filter(|h| *h != ABSENT),
                after_hash: restored.as_deref().map(full_hash).unwrap_or(ABSENT),
                reverse: &serde_json::to_string(&redo).expect("serialises"),
                new_location: &serde_json::Value::Null,
                source: "undo",
            })?;
            let result = match &restored {
                Some(bytes) => write_atomic(&e.path, bytes, id, preserve_mtime, &|_| Ok(())),
                None => std::fs::remove_file(&e.path).at(&e.path),
            };
            match result {
                Ok(()) => {
                    catalog.finish_edit(id, "done", None)?;
                    catalog.finish_edit(e.id, "undone", None)?;
                    Ok(())
                }
                Err(err) => {
                    catalog.finish_edit(id, "failed", Some(&err.to_string()))?;
                    Err(err)
                }
            }
        })();
        match outcome {
            Ok(()) => {
                report.written.push(Written {
                    photo_id: e.photo_id,
                    path: e.path.clone(),
                    target: e.target.clone(),
                });
                touched.extend(e.photo_id);
            }
            Err(err) => report.errors.push(FileProblem {
                path: e.path.clone(),
                reason: err.to_string(),
            }),
        }
    }
    touched.sort();
    touched.dedup();
    for pid in touched {
        refresh_photo(catalog, pid, None)?;
    }
    Ok(report)
}
