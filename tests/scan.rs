//! Scanning behaviour on real files: incremental rescans, edits, deletions, renames and moves,
//! sidecars, hidden folders, symlink loops, offline roots, and a scan killed midway.

mod common;

use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use common::*;
use pinpoint::catalog::{PhotoFilter, PhotoStatus};
use pinpoint::library::{scan, LocationSource, ScanOptions, ScanReport};
use pinpoint::progress::{CancelToken, NoProgress};
use pinpoint::Catalog;

struct Fixture {
    _dir: tempfile::TempDir,
    lib: PathBuf,
    catalog: Catalog,
}

fn fixture() -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("Photos");
    for (name, src) in gps_sample() {
        copy_into(&src, &lib.join("tuscany").join(&name));
    }
    copy_into(
        &exif_corpus().join("ianare-exif-samples/jpg/orientation/landscape_6.jpg"),
        &lib.join("misc/landscape_6.jpg"),
    );
    let catalog = Catalog::open(&dir.path().join("catalog.sqlite")).unwrap();
    catalog.add_root(&lib).unwrap();
    Fixture {
        _dir: dir,
        lib,
        catalog,
    }
}

fn rescan(f: &mut Fixture) -> ScanReport {
    scan(
        &mut f.catalog,
        &[],
        &ScanOptions::default(),
        &NoProgress,
        &CancelToken::new(),
    )
    .unwrap()
}

fn id_of(catalog: &Catalog, path: &Path) -> i64 {
    catalog
        .photo_by_path(path)
        .unwrap()
        .unwrap_or_else(|| panic!("{} not catalogued", path.display()))
        .id
}

fn set_mtime(path: &Path, t: SystemTime) {
    std::fs::File::options()
        .write(true)
        .open(path)
        .unwrap()
        .set_modified(t)
        .unwrap();
}

#[test]
fn first_scan_reads_everything_and_rescan_reads_nothing() {
    let mut f = fixture();
    let first = rescan(&mut f);
    assert_eq!(
        (first.files_seen, first.read, first.added),
        (10, 10, 10),
        "{first:?}"
    );
    assert!(first.errors.is_empty(), "{:?}", first.errors);
    let second = rescan(&mut f);
    assert_eq!(
        (second.files_seen, second.unchanged, second.read),
        (10, 10, 0),
        "{second:?}"
    );
    let (total, tagged, missing) = f.catalog.photo_counts().unwrap();
    assert_eq!((total, tagged, missing), (10, 9, 0));
    let p = f
        .catalog
        .photo_by_path(&f.lib.join("tuscany/DSCN0010.jpg"))
        .unwrap()
        .unwrap();
    let gps = p.gps.unwrap();
    assert!((gps.lat - 43.4674483333333).abs() < 1e-9 && (gps.lon - 11.8851266666639).abs() < 1e-9);
    assert_eq!(p.gps_source, Some(LocationSource::Exif));
    assert_eq!(
        (p.width, p.height, p.orientation),
        (Some(640), Some(480), Some(1))
    );
    assert_eq!(p.make.as_deref(), Some("NIKON"));
    assert_eq!(p.taken_at.unwrap().to_iso(), "2008-10-22T16:28:39");
}

#[test]
fn edits_deletions_renames_and_moves_are_tracked() {
    let mut f = fixture();
    rescan(&mut f);
    let edited = f.lib.join("tuscany/DSCN0012.jpg");
    let deleted = f.lib.join("tuscany/DSCN0021.jpg");
    let renamed_from = f.lib.join("tuscany/DSCN0025.jpg");
    let renamed_to = f.lib.join("tuscany/renamed.jpg");
    let moved_from = f.lib.join("misc/landscape_6.jpg");
    let moved_to = f.lib.join("elsewhere/deeper/landscape_6.jpg");
    let (edited_id, deleted_id, renamed_id, moved_id) = (
        id_of(&f.catalog, &edited),
        id_of(&f.catalog, &deleted),
        id_of(&f.catalog, &renamed_from),
        id_of(&f.catalog, &moved_from),
    );

    // Edit: change bytes in the middle of the file and its mtime.
    let mut bytes = std::fs::read(&edited).unwrap();
    let n = bytes.len();
    bytes[n - 100] ^= 0xFF;
    std::fs::write(&edited, &bytes).unwrap();
    set_mtime(&edited, SystemTime::now() + Duration::from_secs(5));
    std::fs::remove_file(&deleted).unwrap();
    std::fs::rename(&renamed_from, &renamed_to).unwrap();
    std::fs::create_dir_all(moved_to.parent().unwrap()).unwrap();
    std::fs::rename(&moved_from, &moved_to).unwrap();

    let r = rescan(&mut f);
    assert_eq!(
        (r.updated, r.moved, r.added, r.marked_missing),
        (1, 2, 0, 1),
        "{r:?}"
    );
    assert_eq!(
        r.read, 3,
        "only the edited, renamed and moved files are read: {r:?}"
    );
    assert_eq!(id_of(&f.catalog, &edited), edited_id);
    assert_eq!(
        id_of(&f.catalog, &renamed_to),
        renamed_id,
        "a renamed file keeps its identity"
    );
    assert_eq!(
        id_of(&f.catalog, &moved_to),
        moved_id,
        "a moved file keeps its identity"
    );
    assert!(f.catalog.photo_by_path(&renamed_from).unwrap().is_none());
    let gone = f.catalog.photo(deleted_id).unwrap().unwrap();
    assert_eq!(
        gone.status,
        PhotoStatus::Missing,
        "a deleted file is marked missing, not forgotten"
    );
    assert!(gone.gps.is_some() && gone.missing_since.is_some());
    let missing = f
        .catalog
        .photos(&PhotoFilter {
            status: Some(PhotoStatus::Missing),
            ..Default::default()
        })
        .unwrap();
    assert_eq!(missing.len(), 1);

    // The deleted file comes back (restored from a backup, elsewhere): same identity, present again.
    let restored = f.lib.join("restored/DSCN0021.jpg");
    copy_into(
        &gps_sample()
            .into_iter()
            .find(|(n, _)| n == "DSCN0021.jpg")
            .unwrap()
            .1,
        &restored,
    );
    let r = rescan(&mut f);
    assert_eq!((r.moved, r.added), (1, 0), "{r:?}");
    let back = f.catalog.photo(deleted_id).unwrap().unwrap();
    assert_eq!(
        (back.status, back.path.clone()),
        (PhotoStatus::Present, restored.canonicalize().unwrap())
    );
    assert_eq!(rescan(&mut f).read, 0);
}

#[test]
fn a_copy_is_a_new_photo_not_a_move() {
    let mut f = fixture();
    rescan(&mut f);
    let src = f.lib.join("tuscany/DSCN0027.jpg");
    std::fs::copy(&src, f.lib.join("tuscany/copy.jpg")).unwrap();
    let r = rescan(&mut f);
    assert_eq!((r.added, r.moved), (1, 0), "{r:?}");
    assert!(f.catalog.photo_by_path(&src).unwrap().is_some());
}

#[test]
fn sidecar_location_wins_and_sidecar_changes_are_noticed() {
    let mut f = fixture();
    let photo = f.lib.join("misc/landscape_6.jpg");
    rescan(&mut f);
    assert!(f
        .catalog
        .photo_by_path(&photo)
        .unwrap()
        .unwrap()
        .gps
        .is_none());
    let sidecar = f.lib.join("misc/landscape_6.xmp");
    std::fs::write(
        &sidecar,
        r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="52,31.134N" exif:GPSLongitude="13,24.018E"/>
</rdf:RDF></x:xmpmeta>"#,
    )
    .unwrap();
    let r = rescan(&mut f);
    assert_eq!(r.read, 1, "{r:?}");
    let p = f.catalog.photo_by_path(&photo).unwrap().unwrap();
    assert_eq!(p.gps_source, Some(LocationSource::Sidecar));
    assert!((p.gps.unwrap().lat - 52.5189).abs() < 1e-9);

    // A sidecar also wins over the embedded GPS of a tagged photo.
    let tagged = f.lib.join("tuscany/DSCN0010.jpg");
    std::fs::write(
        f.lib.join("tuscany/DSCN0010.jpg.xmp"),
        r#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/">
<exif:GPSLatitude>48,51.5N</exif:GPSLatitude><exif:GPSLongitude>2,21W</exif:GPSLongitude></rdf:Description></rdf:RDF>"#,
    )
    .unwrap();
    rescan(&mut f);
    let p = f.catalog.photo_by_path(&tagged).unwrap().unwrap();
    assert_eq!(p.gps_source, Some(LocationSource::Sidecar));
    assert!((p.gps.unwrap().lon + 2.35).abs() < 1e-9);

    // Removing the sidecar brings back the embedded location.
    std::fs::remove_file(f.lib.join("tuscany/DSCN0010.jpg.xmp")).unwrap();
    rescan(&mut f);
    let p = f.catalog.photo_by_path(&tagged).unwrap().unwrap();
    assert_eq!(p.gps_source, Some(LocationSource::Exif));
}

#[test]
fn hidden_folders_symlink_loops_and_dangling_links_are_not_fatal() {
    let mut f = fixture();
    copy_into(&gps_sample()[0].1, &f.lib.join(".hidden/secret.jpg"));
    std::os::unix::fs::symlink(&f.lib, f.lib.join("misc/loop")).unwrap();
    std::os::unix::fs::symlink(f.lib.join("nowhere"), f.lib.join("misc/dangling")).unwrap();
    let r = rescan(&mut f);
    assert_eq!(
        r.files_seen, 10,
        "hidden folder skipped, loop not followed: {r:?}"
    );
    assert!(
        r.errors.iter().any(|e| e.reason.contains("symlink loop")),
        "{:?}",
        r.errors
    );
    assert!(
        r.errors.iter().any(|e| e.path.ends_with("dangling")),
        "{:?}",
        r.errors
    );
    let with_hidden = scan(
        &mut f.catalog,
        &[],
        &ScanOptions {
            include_hidden: true,
            ..Default::default()
        },
        &NoProgress,
        &CancelToken::new(),
    )
    .unwrap();
    assert_eq!(with_hidden.files_seen, 11);
}

#[test]
fn an_offline_root_is_left_as_it_was() {
    let mut f = fixture();
    rescan(&mut f);
    let parked = f.lib.with_file_name("parked");
    std::fs::rename(&f.lib, &parked).unwrap();
    let r = rescan(&mut f);
    assert_eq!(r.offline_roots.len(), 1, "{r:?}");
    assert_eq!(r.marked_missing, 0);
    assert_eq!(f.catalog.photo_counts().unwrap(), (10, 9, 0));
    std::fs::rename(&parked, &f.lib).unwrap();
    assert_eq!(rescan(&mut f).read, 0);
}

#[test]
fn unreadable_files_are_reported_each_scan_but_read_once() {
    let mut f = fixture();
    std::fs::write(f.lib.join("misc/broken.jpg"), b"this is not a jpeg").unwrap();
    copy_into(
        &exif_corpus().join("piexif-tests/notjpeg.jpg"),
        &f.lib.join("misc/empty.jpg"),
    );
    let r = rescan(&mut f);
    assert_eq!(r.errors.len(), 2, "{:?}", r.errors);
    assert!(r
        .errors
        .iter()
        .any(|e| e.path.ends_with("broken.jpg") && e.reason.contains("not a JPEG")));
    let r = rescan(&mut f);
    assert_eq!(r.read, 0, "{r:?}");
    assert_eq!(r.errors.len(), 2, "still reported: {:?}", r.errors);
    std::fs::remove_file(f.lib.join("misc/broken.jpg")).unwrap();
    assert_eq!(rescan(&mut f).errors.len(), 1);
    assert_eq!(f.catalog.unreadable_files(None).unwrap().len(), 1);
}

#[test]
fn cancelled_scan_commits_what_it_read_and_resumes() {
    let mut f = fixture();
    let cancel = CancelToken::new();
    cancel.cancel();
    let r = scan(
        &mut f.catalog,
        &[],
        &ScanOptions::default(),
        &NoProgress,
        &cancel,
    )
    .unwrap();
    assert!(r.cancelled);
    assert_eq!(f.catalog.scans(1).unwrap()[0].status, "cancelled");
    let r = rescan(&mut f);
    assert!(!r.cancelled);
    assert_eq!(f.catalog.photo_counts().unwrap().0, 10);
}

/// Writes `n` small, distinct, real JPEG files.
fn many_jpegs(dir: &Path, n: usize) {
    std::fs::create_dir_all(dir).unwrap();
    for i in 0..n {
        let img = image::RgbImage::from_fn(16, 16, |x, y| {
            image::Rgb([(i % 251) as u8, (i / 251) as u8, (x * 16 + y) as u8])
        });
        img.save(dir.join(format!("img_{i:05}.jpg"))).unwrap();
    }
}

/// A scan killed (SIGKILL) midway leaves a consistent catalog, and the next scan completes it.
#[test]
fn scan_killed_midway_leaves_a_consistent_catalog() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    let db = dir.path().join("catalog.sqlite");
    let mut n = 4000;
    for attempt in 0..4 {
        let _ = std::fs::remove_dir_all(&lib);
        for ext in ["", "-wal", "-shm"] {
            let _ = std::fs::remove_file(format!("{}{ext}", db.display()));
        }
        many_jpegs(&lib, n);
        assert!(pinpoint(&db, &["library", "add", lib.to_str().unwrap()])
            .status
            .success());
        let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_pinpoint"))
            .args([
                "--catalog",
                db.to_str().unwrap(),
                "--quiet",
                "scan",
                "--threads",
                "1",
            ])
            .spawn()
            .unwrap();
        // Kill as soon as the first batch is committed.
        let started = std::time::Instant::now();
        let mut at_kill = 0;
        while started.elapsed() < Duration::from_secs(60) {
            if let Ok(c) = rusqlite::Connection::open(&db) {
                at_kill = c
                    .query_row("SELECT COUNT(*) FROM photos", [], |r| r.get::<_, i64>(0))
                    .unwrap_or(0);
                if at_kill > 0 {
                    break;
                }
            }
            std::thread::sleep(Duration::from_millis(2));
        }
        child.kill().unwrap();
        let status = child.wait().unwrap();
        if status.success() {
            n *= 2; // finished before the kill: try a larger library
            eprintln!("attempt {attempt}: scan finished before the kill; retrying with {n} files");
            continue;
        }
        let catalog = Catalog::open(&db).unwrap();
        assert!(catalog.check_integrity().unwrap().is_empty());
        let (count, _, _) = catalog.photo_counts().unwrap();
        assert!(
            count >= at_kill as u64 && count <= n as u64,
            "after kill: {count} of {n}"
        );
        if count == n as u64 {
            n *= 2; // killed after the last batch: not midway
            continue;
        }
        drop(catalog);
        let (code, report) = pinpoint_json(&db, &["scan"]);
        assert_eq!(code, 0, "{report}");
        assert_eq!(
            report["read"].as_u64().unwrap() + count,
            n as u64,
            "the rescan reads only what is left"
        );
        let catalog = Catalog::open(&db).unwrap();
        assert_eq!(catalog.photo_counts().unwrap().0, n as u64);
        assert!(catalog.check_integrity().unwrap().is_empty());
        return;
    }
    panic!("could not kill a scan midway");
}
