//! Crash safety under load, measured: the CLI is killed (SIGKILL) at 20 moments spread over a
//! 200-photo `accept` batch, a 200-photo `tag set` batch and a 1000-file scan, and at 10 moments
//! of a reference-database install.
//! After every kill each photo is wholly old or wholly new, `recover` settles the journal and
//! `undo` restores every original byte; a killed scan leaves a catalog that passes `check` and the
//! next scan finishes the work with the right counts; a killed install leaves nothing
//! half-installed and the next install succeeds.
//!
//! The kill moments are spread over the measured duration of an uninterrupted run (after the
//! measured start-up of the process), and each test asserts that most kills landed mid-way.
//! The figures are printed (`cargo test --test crash -- --nocapture`).

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::process::{Command, Stdio};
use std::sync::{Mutex, MutexGuard};
use std::time::{Duration, Instant, SystemTime};

use common::*;
use pinpoint::catalog::{PhotoFilter, ProposalRow};
use pinpoint::geo::GeoPoint;
use pinpoint::library::{LocationSource, PhotoFormat};
use pinpoint::Catalog;

const MOMENTS: u32 = 20;
const PHOTOS: usize = 200;

/// The kills are timed: one test at a time, so that another test's load does not shift them.
static SERIAL: Mutex<()> = Mutex::new(());

fn serial() -> MutexGuard<'static, ()> {
    SERIAL.lock().unwrap_or_else(|e| e.into_inner())
}

/// Starts `pinpoint` on `catalog` with no terminal attached.
fn spawn_pinpoint(catalog: &Path, args: &[String]) -> std::process::Child {
    Command::new(env!("CARGO_BIN_EXE_pinpoint"))
        .arg("--catalog")
        .arg(catalog)
        .arg("--quiet")
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::null())
        .spawn()
        .expect("start pinpoint")
}

/// Starts `pinpoint` and SIGKILLs it `after` its start; true when it was still running then.
fn kill_after(catalog: &Path, args: &[String], after: Duration) -> bool {
    let mut child = spawn_pinpoint(catalog, args);
    let start = Instant::now();
    loop {
        if child.try_wait().unwrap().is_some() {
            return false;
        }
        let left = after.saturating_sub(start.elapsed());
        if left.is_zero() {
            break;
        }
        std::thread::sleep(left.min(Duration::from_millis(2)));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    status.signal() == Some(9)
}

/// Starts `pinpoint`, waits until `started` says its work has begun, then SIGKILLs it `after` that
/// (or, with `after` None, lets it finish). Returns whether it was killed, and how long it ran
/// from the start of its work.
fn kill_after_start(
    catalog: &Path,
    args: &[String],
    started: &dyn Fn() -> bool,
    after: Option<Duration>,
) -> (bool, Duration) {
    let mut child = spawn_pinpoint(catalog, args);
    while !started() {
        if let Some(status) = child.try_wait().unwrap() {
            panic!("pinpoint {args:?} ended ({status}) before its work began");
        }
        std::thread::sleep(Duration::from_micros(500));
    }
    let t = Instant::now();
    loop {
        if let Some(status) = child.try_wait().unwrap() {
            assert!(status.success(), "pinpoint {args:?}: {status}");
            return (false, t.elapsed());
        }
        if after.is_some_and(|a| t.elapsed() >= a) {
            break;
        }
        std::thread::sleep(Duration::from_millis(1));
    }
    child.kill().unwrap(); // SIGKILL on Unix
    let status = child.wait().unwrap();
    use std::os::unix::process::ExitStatusExt;
    (status.signal() == Some(9), t.elapsed())
}

/// The moment `i` of `n`: spread evenly over the part of `full` after the start-up `startup`.
fn moment(i: u32, n: u32, startup: Duration, full: Duration) -> Duration {
    let work = full.saturating_sub(startup);
    startup + work * (2 * i + 1) / (2 * n)
}

/// A scratch folder, in memory where the system has one (`/dev/shm`): a SIGKILL does not depend on
/// the storage, and the 2-core CI machine spends its time on the kills instead of on fsync.
fn scratch() -> tempfile::TempDir {
    tempfile::Builder::new()
        .prefix("pinpoint-crash")
        .tempdir_in("/dev/shm")
        .or_else(|_| tempfile::tempdir())
        .unwrap()
}

fn timed<T>(f: impl FnOnce() -> T) -> (T, Duration) {
    let t = Instant::now();
    let v = f();
    (v, t.elapsed())
}

fn strings(args: &[&str]) -> Vec<String> {
    args.iter().map(|s| s.to_string()).collect()
}

/// Real JPEGs from the shared corpus and the sample library that Pinpoint can write into (no
/// sidecar next to them, at most 600 kB to keep the test cheap).
fn jpeg_pool() -> Vec<PathBuf> {
    let repo = Path::new(env!("CARGO_MANIFEST_DIR"));
    let dirs = [
        exif_corpus().join("ianare-exif-samples/jpg"),
        exif_corpus().join("ianare-exif-samples/jpg/gps"),
        exif_corpus().join("metadata-extractor-images/jpg_by_make"),
        repo.join("assets/sample-library/tuscany"),
        repo.join("assets/sample-library/sacre-coeur"),
    ];
    let probe = GeoPoint::new(12.5, 41.9);
    let mut pool = Vec::new();
    for d in dirs {
        let mut files: Vec<PathBuf> = std::fs::read_dir(&d)
            .unwrap_or_else(|e| panic!("{}: {e}", d.display()))
            .map(|e| e.unwrap().path())
            .filter(|p| {
                p.is_file()
                    && p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg"))
                    && std::fs::metadata(p).unwrap().len() <= 600_000
            })
            .collect();
        files.sort();
        for p in files {
            // ExifTool's Kodak ProBack sample is refused by the writer's own check (an EXIF field
            // outside GPS would read differently), and a photo with a sidecar gets two writes.
            let name = p.file_name().unwrap().to_string_lossy();
            if name.contains("Kodak ProBack") || pinpoint::library::xmp::find_sidecar(&p).is_some()
            {
                continue;
            }
            let Ok(bytes) = std::fs::read(&p) else {
                continue;
            };
            let readable = pinpoint::library::read_photo_metadata(&p, None).is_ok();
            let writable =
                pinpoint::tagging::containers::embed(PhotoFormat::Jpeg, &bytes, Some(&probe))
                    .is_ok_and(|new| new != bytes);
            if readable && writable {
                pool.push(p);
            }
        }
    }
    assert!(pool.len() >= 40, "only {} writable JPEGs found", pool.len());
    pool
}

fn catalog_files(db: &Path) -> Vec<PathBuf> {
    ["", "-wal", "-shm"]
        .iter()
        .map(|s| PathBuf::from(format!("{}{s}", db.display())))
        .collect()
}

/// Saves the catalog (with its WAL, if any) to put it back before each kill.
fn save_catalog(db: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for (i, f) in catalog_files(db).iter().enumerate() {
        let dst = to.join(i.to_string());
        let _ = std::fs::remove_file(&dst);
        if f.exists() {
            std::fs::copy(f, &dst).unwrap();
        }
    }
}

fn restore_catalog(db: &Path, from: &Path) {
    for (i, f) in catalog_files(db).iter().enumerate() {
        let _ = std::fs::remove_file(f);
        let src = from.join(i.to_string());
        if src.exists() {
            std::fs::copy(&src, f).unwrap();
        }
    }
}

/// A library of `n` renamed copies of real JPEGs, catalogued.
struct Library {
    _dir: tempfile::TempDir,
    root: PathBuf,
    lib: PathBuf,
    db: PathBuf,
    /// Canonical paths, in the order of the copies.
    files: Vec<PathBuf>,
    originals: Vec<Vec<u8>>,
    mtimes: Vec<SystemTime>,
    /// Each photo's location before any write, as catalogued.
    gps_before: HashMap<PathBuf, Option<GeoPoint>>,
    photo_ids: HashMap<PathBuf, i64>,
}

impl Library {
    fn new(n: usize) -> Library {
        let dir = scratch();
        let root = dir.path().canonicalize().unwrap();
        let lib = root.join("lib");
        let pool = jpeg_pool();
        let mut files = Vec::new();
        for i in 0..n {
            let src = &pool[i % pool.len()];
            let name = src.file_name().unwrap().to_string_lossy().replace(' ', "_");
            let dst = lib.join(format!("{}/IMG_{i:04}_{name}", i % 4));
            copy_into(src, &dst);
            files.push(dst);
        }
        let db = root.join("catalog.sqlite");
        let (code, scan) = pinpoint_json(&db, &["library", "add", lib.to_str().unwrap(), "--scan"]);
        assert_eq!(code, 0, "{scan}");
        let originals: Vec<Vec<u8>> = files.iter().map(|f| std::fs::read(f).unwrap()).collect();
        let mtimes = files
            .iter()
            .map(|f| std::fs::metadata(f).unwrap().modified().unwrap())
            .collect();
        let catalog = Catalog::open(&db).unwrap();
        let photos = catalog.photos(&PhotoFilter::default()).unwrap();
        assert_eq!(photos.len(), n, "every copy is catalogued");
        let gps_before = photos.iter().map(|p| (p.path.clone(), p.gps)).collect();
        let photo_ids = photos.iter().map(|p| (p.path.clone(), p.id)).collect();
        Library {
            _dir: dir,
            root,
            lib,
            db,
            files,
            originals,
            mtimes,
            gps_before,
            photo_ids,
        }
    }

    fn pristine(&self) -> PathBuf {
        self.root.join("pristine-catalog")
    }

    /// Every file of the library that is not one of the photos (temporary files, sidecars).
    fn strays(&self) -> Vec<PathBuf> {
        walkdir::WalkDir::new(&self.lib)
            .into_iter()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_type().is_file())
            .map(|e| e.path().to_path_buf())
            .filter(|p| !self.files.contains(p))
            .collect()
    }

    /// Puts the photos (bytes and times) and the catalog back as they were before any write.
    fn restore(&self) {
        for ((f, orig), mtime) in self.files.iter().zip(&self.originals).zip(&self.mtimes) {
            if std::fs::read(f).ok().as_ref() != Some(orig) {
                std::fs::write(f, orig).unwrap();
                let file = std::fs::File::options().write(true).open(f).unwrap();
                file.set_times(std::fs::FileTimes::new().set_modified(*mtime))
                    .unwrap();
            }
        }
        for s in self.strays() {
            std::fs::remove_file(s).unwrap();
        }
        restore_catalog(&self.db, &self.pristine());
    }

    /// Which photos hold the new bytes (`expected`), asserting every one is wholly old or new,
    /// and that every new one parses with exactly the new location.
    fn classify(&self, expected: &[Vec<u8>], points: &[GeoPoint], when: &str) -> Vec<bool> {
        self.files
            .iter()
            .enumerate()
            .map(|(i, f)| {
                let now = std::fs::read(f).unwrap_or_else(|e| panic!("{when}: {}: {e}", f.display()));
                if now == self.originals[i] {
                    false
                } else if now == expected[i] {
                    let md = pinpoint::library::read_photo_metadata(f, None)
                        .unwrap_or_else(|e| panic!("{when}: {} does not parse: {e}", f.display()));
                    let got = md
                        .location
                        .filter(|l| l.source == LocationSource::Exif)
                        .map(|l| l.point);
                    assert!(
                        got.is_some_and(|g| same(&g, &points[i], 1e-7)),
                        "{when}: {} reads back {got:?}, not {:?}",
                        f.display(),
                        points[i]
                    );
                    true
                } else {
                    panic!(
                        "{when}: {} is neither the original ({} bytes) nor the new file ({} bytes): {} bytes",
                        f.display(),
                        self.originals[i].len(),
                        expected[i].len(),
                        now.len()
                    )
                }
            })
            .collect()
    }

    /// The catalog's location of every photo agrees with its file: the new point for photos
    /// holding the new bytes, the old location for the others.
    fn catalog_agrees(&self, new: &[bool], points: &[GeoPoint], when: &str) {
        let catalog = Catalog::open(&self.db).unwrap();
        let rows: HashMap<PathBuf, Option<GeoPoint>> = catalog
            .photos(&PhotoFilter::default())
            .unwrap()
            .into_iter()
            .map(|p| (p.path, p.gps))
            .collect();
        assert_eq!(rows.len(), self.files.len(), "{when}");
        for (i, f) in self.files.iter().enumerate() {
            let want = if new[i] {
                Some(points[i])
            } else {
                self.gps_before[f]
            };
            let got = rows[f];
            let ok = match (got, want) {
                (None, None) => true,
                (Some(g), Some(w)) => same(&g, &w, 1e-6),
                _ => false,
            };
            assert!(
                ok,
                "{when}: the catalog says {got:?} for {} (file {}), expected {want:?}",
                f.display(),
                if new[i] { "new" } else { "old" }
            );
        }
    }
}

fn same(a: &GeoPoint, b: &GeoPoint, eps: f64) -> bool {
    (a.lat - b.lat).abs() < eps
        && (a.lon - b.lon).abs() < eps
        && match (a.alt, b.alt) {
            (Some(x), Some(y)) => (x - y).abs() < 0.01,
            (None, None) => true,
            _ => false,
        }
}

#[derive(Clone, Copy, PartialEq, Debug)]
enum Batch {
    Accept,
    TagSet,
}

/// One kill moment of a write batch, for the figures.
struct Landed {
    delay_ms: u128,
    killed: bool,
    new: usize,
    temp_files: usize,
    settled: usize,
}

fn write_batch_survives_kills(kind: Batch) {
    let _serial = serial();
    let started = Instant::now();
    let fx = Library::new(PHOTOS);
    let points: Vec<GeoPoint> = match kind {
        // A different place for every photo, as proposals are.
        Batch::Accept => (0..PHOTOS)
            .map(|i| GeoPoint::new(43.0 + i as f64 * 0.001_37, 11.0 + i as f64 * 0.002_11))
            .collect(),
        Batch::TagSet => vec![
            GeoPoint {
                lat: -33.856_784_5,
                lon: 151.215_296_8,
                alt: Some(12.5)
            };
            PHOTOS
        ],
    };
    let args: Vec<String> = match kind {
        Batch::Accept => {
            let mut catalog = Catalog::open(&fx.db).unwrap();
            let rows: Vec<(ProposalRow, [u8; 32])> = catalog
                .photos(&PhotoFilter::default())
                .unwrap()
                .into_iter()
                .map(|p| {
                    let i = fx.files.iter().position(|f| *f == p.path).unwrap();
                    (
                        ProposalRow {
                            photo_id: p.id,
                            path: p.path.clone(),
                            model_hash: "crash-test".into(),
                            lat: points[i].lat,
                            lon: points[i].lon,
                            radius_m: 50.0,
                            confidence: 0.9,
                            sources: vec!["library".into()],
                            evidence: serde_json::json!([]),
                            alternatives: serde_json::json!([]),
                            status: "pending".into(),
                            created_at: 0,
                        },
                        p.content_hash,
                    )
                })
                .collect();
            catalog.save_proposals(&rows).unwrap();
            strings(&["accept", "--min-confidence", "0"])
        }
        Batch::TagSet => {
            let p = points[0];
            let mut a = strings(&["tag", "set", "--lat"]);
            a.push(p.lat.to_string());
            a.push("--lon".into());
            a.push(p.lon.to_string());
            a.push("--alt".into());
            a.push(p.alt.unwrap().to_string());
            a.extend(fx.files.iter().map(|f| f.display().to_string()));
            a
        }
    };
    save_catalog(&fx.db, &fx.pristine());

    // The start-up (process, catalog, journal check) and one uninterrupted batch, which gives the
    // expected new bytes of every photo.
    let (_, startup) = timed(|| assert!(pinpoint(&fx.db, &["recover"]).status.success()));
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let ((code, report), full) = timed(|| pinpoint_json(&fx.db, &refs));
    assert_eq!(
        report["errors"].as_array().unwrap().len(),
        0,
        "{}",
        report["errors"]
    );
    assert_eq!(code, 0);
    assert_eq!(report["written"].as_array().unwrap().len(), PHOTOS);
    let expected: Vec<Vec<u8>> = fx.files.iter().map(|f| std::fs::read(f).unwrap()).collect();
    let all_new = fx.classify(&expected, &points, "uninterrupted run");
    assert!(all_new.iter().all(|n| *n));
    for (e, o) in expected.iter().zip(&fx.originals) {
        assert_ne!(e, o);
    }
    fx.restore();
    // The first run meets cold caches: a second one, warm like the killed runs, times the batch.
    let ((code, _), again) = timed(|| pinpoint_json(&fx.db, &refs));
    assert_eq!(code, 0);
    assert_eq!(
        fx.files
            .iter()
            .map(|f| std::fs::read(f).unwrap())
            .collect::<Vec<_>>(),
        expected
    );
    let full = full.min(again);
    fx.restore();

    let mut landed = Vec::new();
    for i in 0..MOMENTS {
        let delay = moment(i, MOMENTS, startup, full);
        let when = format!("{kind:?} killed after {} ms", delay.as_millis());
        let killed = kill_after(&fx.db, &args, delay);
        let new = fx.classify(&expected, &points, &when);
        let temp_files = fx.strays().len();

        let (code, settled) = pinpoint_json(&fx.db, &["recover"]);
        assert_eq!(code, 0, "{when}: recover: {settled}");
        let settled = settled.as_array().unwrap().len();
        assert!(
            fx.strays().is_empty(),
            "{when}: left after recover: {:?}",
            fx.strays()
        );
        {
            let catalog = Catalog::open(&fx.db).unwrap();
            let pending = catalog.pending_edits().unwrap();
            assert!(
                pending.is_empty(),
                "{when}: still pending after recover: {pending:?}"
            );
        }
        // Recover settles the journal without touching a photo, and the catalog follows the files.
        assert_eq!(
            fx.classify(&expected, &points, &when),
            new,
            "{when}: recover changed a photo"
        );
        fx.catalog_agrees(&new, &points, &format!("{when}, after recover"));

        let n_new = new.iter().filter(|n| **n).count();
        if n_new > 0 {
            let (code, undo) = pinpoint_json(&fx.db, &["undo"]);
            assert_eq!(code, 0, "{when}: undo: {undo}");
            let restored = undo[0]["written"].as_array().unwrap().len();
            assert_eq!(
                restored, n_new,
                "{when}: undo restored {restored} of {n_new} new files"
            );
        } else {
            // Nothing was written: no journal entry may claim otherwise.
            let catalog = Catalog::open(&fx.db).unwrap();
            for b in catalog.batches(100).unwrap() {
                assert!(
                    b.edits.iter().all(|e| e.state != "done"),
                    "{when}: a done edit but no new file: {:?}",
                    b.edits
                );
            }
        }
        for (j, f) in fx.files.iter().enumerate() {
            assert!(
                std::fs::read(f).unwrap() == fx.originals[j],
                "{when}: {} differs from the original after undo",
                f.display()
            );
            assert_eq!(
                std::fs::metadata(f).unwrap().modified().unwrap(),
                fx.mtimes[j],
                "{when}: {} lost its modification time",
                f.display()
            );
        }
        assert!(
            fx.strays().is_empty(),
            "{when}: left after undo: {:?}",
            fx.strays()
        );
        fx.catalog_agrees(
            &vec![false; PHOTOS],
            &points,
            &format!("{when}, after undo"),
        );
        if kind == Batch::Accept {
            // Proposals of photos that had no location are back in (or never left) the review queue.
            let catalog = Catalog::open(&fx.db).unwrap();
            for (f, gps) in &fx.gps_before {
                if gps.is_none() {
                    let p = catalog.proposal(fx.photo_ids[f]).unwrap().unwrap();
                    assert_eq!(p.status, "pending", "{when}: {}", f.display());
                }
            }
        }
        landed.push(Landed {
            delay_ms: delay.as_millis(),
            killed,
            new: n_new,
            temp_files,
            settled,
        });
        fx.restore();
    }

    let mid = landed
        .iter()
        .filter(|l| l.new > 0 && l.new < PHOTOS)
        .count();
    eprintln!(
        "{kind:?}: start-up {} ms, uninterrupted batch of {PHOTOS} photos {} ms; {mid} of {MOMENTS} kills landed mid-batch; test {:.1} s",
        startup.as_millis(),
        full.as_millis(),
        started.elapsed().as_secs_f64()
    );
    for l in &landed {
        eprintln!(
            "  kill at {:>5} ms{}: {:>3} new, {:>3} old, {} temporary file(s), {} pending edit(s) settled",
            l.delay_ms,
            if l.killed { "" } else { " (had finished)" },
            l.new,
            PHOTOS - l.new,
            l.temp_files,
            l.settled
        );
    }
    assert!(
        mid * 2 > MOMENTS as usize,
        "only {mid} of {MOMENTS} kills landed mid-batch"
    );
}

#[test]
fn accept_killed_at_20_moments_leaves_every_photo_old_or_new_and_undoable() {
    write_batch_survives_kills(Batch::Accept);
}

#[test]
fn tag_set_killed_at_20_moments_leaves_every_photo_old_or_new_and_undoable() {
    write_batch_survives_kills(Batch::TagSet);
}

/// The catalog's view of every photo, to compare a scan finished after a kill with a clean one.
fn catalog_rows(db: &Path) -> BTreeMap<PathBuf, (u64, [u8; 32], Option<(i64, i64)>)> {
    Catalog::open(db)
        .unwrap()
        .photos(&PhotoFilter::default())
        .unwrap()
        .into_iter()
        .map(|p| {
            let gps = p
                .gps
                .map(|g| ((g.lat * 1e7).round() as i64, (g.lon * 1e7).round() as i64));
            (p.path, (p.size, p.content_hash, gps))
        })
        .collect()
}

#[test]
fn scan_killed_at_20_moments_leaves_a_sound_catalog_and_the_next_scan_finishes() {
    let _serial = serial();
    let started = Instant::now();
    // 1000 paths (hard links to real JPEGs: no disk cost), four catalog transactions of 256.
    const N: usize = 1000;
    let dir = scratch();
    let root = dir.path().canonicalize().unwrap();
    let lib = root.join("lib");
    let pool = jpeg_pool();
    let originals = root.join("originals");
    for (k, src) in pool.iter().enumerate() {
        copy_into(src, &originals.join(format!("{k}.jpg")));
    }
    for i in 0..N {
        let k = i % pool.len();
        let dst = lib.join(format!("{}/{}/P{i:05}.jpg", i % 7, i % 3));
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::hard_link(originals.join(format!("{k}.jpg")), &dst).unwrap();
    }
    let db = root.join("catalog.sqlite");
    let (code, r) = pinpoint_json(&db, &["library", "add", lib.to_str().unwrap()]);
    assert_eq!(code, 0, "{r}");
    let pristine = root.join("pristine-catalog");
    save_catalog(&db, &pristine);

    let args = strings(&["scan"]);
    let (_, startup) = timed(|| assert!(pinpoint(&db, &["library", "list"]).status.success()));
    let ((code, clean), full) = timed(|| pinpoint_json(&db, &["scan"]));
    assert_eq!(code, 0, "{clean}");
    assert_eq!(clean["added"], N as u64, "{clean}");
    let clean_rows = catalog_rows(&db);
    assert_eq!(clean_rows.len(), N);

    let mut landed = Vec::new();
    for i in 0..MOMENTS {
        restore_catalog(&db, &pristine);
        let delay = moment(i, MOMENTS, startup, full);
        let when = format!("scan killed after {} ms", delay.as_millis());
        let killed = kill_after(&db, &args, delay);
        let (code, check) = pinpoint_json(&db, &["check"]);
        assert_eq!(code, 0, "{when}: check: {check}");
        assert_eq!(
            check["problems"].as_array().unwrap().len(),
            0,
            "{when}: {check}"
        );
        let before = catalog_rows(&db);
        // What the killed scan committed is right, photo by photo.
        for (p, row) in &before {
            assert_eq!(clean_rows.get(p), Some(row), "{when}: {}", p.display());
        }
        let (code, again) = pinpoint_json(&db, &["scan"]);
        assert_eq!(code, 0, "{when}: next scan: {again}");
        let done = before.len() as u64;
        assert_eq!(again["files_seen"], N as u64, "{when}: {again}");
        assert_eq!(again["added"], N as u64 - done, "{when}: {again}");
        assert_eq!(again["unchanged"], done, "{when}: {again}");
        for key in ["updated", "moved", "marked_missing"] {
            assert_eq!(again[key], 0, "{when}: {key}: {again}");
        }
        assert_eq!(
            again["errors"].as_array().unwrap().len(),
            0,
            "{when}: {again}"
        );
        assert_eq!(
            catalog_rows(&db),
            clean_rows,
            "{when}: the finished catalog differs"
        );
        let (code, check) = pinpoint_json(&db, &["check"]);
        assert_eq!(code, 0, "{when}: check after the next scan: {check}");
        landed.push((delay.as_millis(), killed, done));
    }
    let mid = landed
        .iter()
        .filter(|(_, killed, done)| *killed && *done < N as u64)
        .count();
    let partial = landed
        .iter()
        .filter(|(_, _, done)| *done > 0 && *done < N as u64)
        .count();
    eprintln!(
        "scan: start-up {} ms, uninterrupted scan of {N} files {} ms; {mid} of {MOMENTS} kills landed mid-scan, {partial} with part of it committed; test {:.1} s",
        startup.as_millis(),
        full.as_millis(),
        started.elapsed().as_secs_f64()
    );
    for (ms, killed, done) in &landed {
        eprintln!(
            "  kill at {ms:>5} ms{}: {done:>4} of {N} photos catalogued",
            if *killed { "" } else { " (had finished)" }
        );
    }
    assert!(
        mid * 2 > MOMENTS as usize && partial * 4 >= MOMENTS as usize,
        "only {mid} of {MOMENTS} kills landed mid-scan, {partial} after a commit"
    );
}

/// What a killed install left, before anything settles it.
#[derive(Debug, PartialEq, Clone, Copy)]
enum InstallState {
    /// Nothing in the install folder yet.
    Untouched,
    /// Work files in the staging folder, or database/index files not recorded.
    Midway,
    /// Recorded in the catalog.
    Installed,
}

fn install_state(db: &Path) -> InstallState {
    let catalog = Catalog::open(db).unwrap();
    if !catalog.refdbs().unwrap().is_empty() {
        return InstallState::Installed;
    }
    let dir = catalog.refdb_dir();
    let mut files = Vec::new();
    for e in walkdir::WalkDir::new(&dir)
        .into_iter()
        .filter_map(|e| e.ok())
    {
        if e.file_type().is_file() {
            files.push(e.path().to_path_buf());
        }
    }
    if files.is_empty() {
        InstallState::Untouched
    } else {
        InstallState::Midway
    }
}

/// Everything in the install folder (relative paths, files and folders).
fn install_folder(db: &Path) -> Vec<String> {
    let dir = PathBuf::from(format!("{}.refdbs", db.display()));
    let mut out: Vec<String> = walkdir::WalkDir::new(&dir)
        .min_depth(1)
        .max_depth(2)
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|e| e.path().strip_prefix(&dir).unwrap().display().to_string())
        .collect();
    out.sort();
    out
}

/// A reference database large enough to be indexed (HNSW) at install: two real references
/// built from sample photos, then 5000 more rows made from them in the same file: their
/// descriptors perturbed and renormalised, their positions moved a little, and as preview a tiny
/// real JPEG (ExifTool's Casio test image) to keep the file at a few MB.
fn large_database(dir: &Path) -> (PathBuf, u64) {
    let tuscany = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample-library/tuscany");
    let mut csv = String::from("path,lat,lon,source_id,licence\n");
    for (n, name) in ["DSCN0010.jpg", "DSCN0012.jpg"].iter().enumerate() {
        csv.push_str(&format!(
            "{},{},{},tuscany/{name},CC0\n",
            tuscany.join(name).display(),
            43.46 + n as f64 * 0.01,
            11.88
        ));
    }
    let csv_path = dir.join("sources.csv");
    std::fs::write(&csv_path, csv).unwrap();
    let out = dir.join("crashdb.pinpointdb");
    let (code, r) = pinpoint_json(
        &dir.join("builder.sqlite"),
        &[
            "refdb",
            "build",
            "--csv",
            csv_path.to_str().unwrap(),
            "--name",
            "crashdb",
            "--out",
            out.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["references"], 2, "{r}");

    const EXTRA: u64 = 5000;
    let tiny_preview = std::fs::read(exif_corpus().join("exiftool-t-images/Casio.jpg")).unwrap();
    let conn = rusqlite::Connection::open(&out).unwrap();
    let base: Vec<(f64, f64, i64, Vec<u8>)> = conn
        .prepare("SELECT r.lat, r.lon, r.id, d.vector FROM refs r JOIN descriptors d ON d.id = r.id ORDER BY r.id")
        .unwrap()
        .query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?)))
        .unwrap()
        .collect::<rusqlite::Result<_>>()
        .unwrap();
    let f16: bool = {
        let t: String = conn
            .query_row(
                "SELECT value FROM manifest WHERE key = 'descriptor_type'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        t.contains("f16")
    };
    let mut seed: u64 = 0x9E37_79B9_7F4A_7C15;
    let mut noise = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64 - 0.5
    };
    let tx = conn.unchecked_transaction().unwrap();
    for k in 0..EXTRA {
        let (lat, lon, _, vector) = &base[(k % base.len() as u64) as usize];
        let mut v = pinpoint::refdb::format::decode_vector(vector, f16);
        for x in v.iter_mut() {
            *x += (noise() * 0.02) as f32;
        }
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt();
        v.iter_mut().for_each(|x| *x /= norm);
        tx.execute(
            "INSERT INTO refs (lat, lon, preview, source_id, licence) VALUES (?1, ?2, ?3, ?4, 'CC0')",
            rusqlite::params![lat + noise() * 0.01, lon + noise() * 0.01, tiny_preview, format!("derived/{k}")],
        )
        .unwrap();
        let id = tx.last_insert_rowid();
        tx.execute(
            "INSERT INTO descriptors (id, vector) VALUES (?1, ?2)",
            rusqlite::params![id, pinpoint::refdb::format::encode_vector(&v, f16)],
        )
        .unwrap();
    }
    let (count, min_lat, min_lon, max_lat, max_lon): (i64, f64, f64, f64, f64) = tx
        .query_row(
            "SELECT COUNT(*), MIN(lat), MIN(lon), MAX(lat), MAX(lon) FROM refs",
            [],
            |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?, r.get(3)?, r.get(4)?)),
        )
        .unwrap();
    tx.execute(
        "UPDATE manifest SET value = ?1 WHERE key = 'count'",
        [count.to_string()],
    )
    .unwrap();
    tx.execute(
        "UPDATE manifest SET value = ?1 WHERE key = 'bbox'",
        [serde_json::json!([min_lat, min_lon, max_lat, max_lon]).to_string()],
    )
    .unwrap();
    tx.commit().unwrap();
    conn.execute_batch("PRAGMA journal_mode = DELETE; VACUUM;")
        .unwrap();
    drop(conn);
    (out, count as u64)
}

/// The database is installed whole: recorded with every reference, its file and index in place,
/// nothing else left in the install folder.
fn installed_whole(db: &Path, count: u64, when: &str) {
    let (code, list) = pinpoint_json(db, &["refdb", "list"]);
    assert_eq!(code, 0, "{when}: {list}");
    let list = list.as_array().unwrap();
    assert_eq!(list.len(), 1, "{when}: {list:?}");
    assert_eq!(list[0]["count"], count, "{when}");
    let file = PathBuf::from(list[0]["path"].as_str().unwrap());
    assert!(file.is_file(), "{when}");
    let index = PathBuf::from(list[0]["index_path"].as_str().expect("an HNSW index"));
    assert!(index.is_dir(), "{when}");
    let dir = PathBuf::from(format!("{}.refdbs", db.display()));
    let name = |p: &Path| p.strip_prefix(&dir).unwrap().display().to_string();
    let (file, index) = (name(&file), name(&index));
    let left: Vec<String> = install_folder(db)
        .into_iter()
        .filter(|e| {
            *e != ".staging" && *e != file && *e != index && !e.starts_with(&format!("{index}/"))
        })
        .collect();
    assert!(
        left.is_empty(),
        "{when}: also in the install folder: {left:?}"
    );
}

/// Each install loads the model (seconds on 2 cores): fewer moments than the write batches.
const INSTALL_MOMENTS: u32 = 10;

#[test]
fn refdb_install_killed_at_10_moments_leaves_nothing_half_installed() {
    let _serial = serial();
    let started = Instant::now();
    let dir = scratch();
    let root = dir.path().canonicalize().unwrap();
    let (file, count) = large_database(&root);
    let db = root.join("catalog.sqlite");
    assert!(pinpoint(&db, &["check"]).status.success());
    let pristine = root.join("pristine-catalog");
    save_catalog(&db, &pristine);
    let refdbs = PathBuf::from(format!("{}.refdbs", db.display()));
    let args = strings(&["refdb", "install", file.to_str().unwrap()]);

    // The install's own work begins when its staging copy appears (after the process, the catalog
    // and the model have started, which take seconds here and vary); the kills are timed from it.
    let staging = refdbs.join(".staging");
    let begun = || {
        std::fs::read_dir(&staging)
            .is_ok_and(|mut d| d.any(|e| e.is_ok_and(|e| e.path().is_file())))
    };
    let (_, window) = kill_after_start(&db, &args, &begun, None);
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    installed_whole(&db, count, "uninterrupted install");

    let mut landed = Vec::new();
    for i in 0..INSTALL_MOMENTS {
        let _ = std::fs::remove_dir_all(&refdbs);
        restore_catalog(&db, &pristine);
        let delay = moment(i, INSTALL_MOMENTS, Duration::ZERO, window);
        let when = format!("install killed {} ms into its work", delay.as_millis());
        let (killed, _) = kill_after_start(&db, &args, &begun, Some(delay));
        let state = install_state(&db);
        let left = install_folder(&db);
        // Every other time the journal is settled first; otherwise the next install does it.
        let via_recover = i % 2 == 0;
        if via_recover {
            let out = pinpoint(&db, &["recover"]);
            assert!(out.status.success(), "{when}: recover: {out:?}");
            if state == InstallState::Installed {
                installed_whole(&db, count, &when);
            } else {
                nothing_half_installed(&db);
            }
        }
        let (code, r) = pinpoint_json(&db, &refs);
        assert_eq!(code, 0, "{when}: the next install: {r}");
        installed_whole(&db, count, &format!("{when}, installed again"));
        landed.push((delay.as_millis(), killed, state, left, via_recover));
    }
    let mid = landed
        .iter()
        .filter(|l| l.2 == InstallState::Midway)
        .count();
    eprintln!(
        "refdb install: uninterrupted install of {count} references {} ms from its staging copy to the end; {mid} of {INSTALL_MOMENTS} kills landed mid-install; test {:.1} s",
        window.as_millis(),
        started.elapsed().as_secs_f64()
    );
    for (ms, killed, state, left, via_recover) in &landed {
        eprintln!(
            "  kill {ms:>5} ms into the install{}: {state:?}, left {left:?}; then {}",
            if *killed { "" } else { " (had finished)" },
            if *via_recover {
                "recover, install"
            } else {
                "install"
            }
        );
    }
    assert!(
        mid * 2 > INSTALL_MOMENTS as usize,
        "only {mid} of {INSTALL_MOMENTS} kills landed mid-install"
    );
}
