//! Writing locations: on every photo of the corpus Pinpoint writes into, ExifTool sees only the
//! GPS tags change, the image data stays byte for byte, no new validation warning appears, and
//! undo restores the original bytes. Sidecars, faults, and bad cases.

mod common;

use std::collections::{BTreeMap, HashMap};
use std::path::{Path, PathBuf};
use std::time::Duration;

use common::*;
use pinpoint::library::format::format_from_extension;
use pinpoint::library::PhotoFormat;

fn exiftool_map(
    files: &[PathBuf],
    extra: &[&str],
) -> HashMap<PathBuf, BTreeMap<String, serde_json::Value>> {
    let mut args: Vec<String> = ["-a", "-G1", "-j", "-n", "-q", "-q"]
        .iter()
        .map(|s| s.to_string())
        .collect();
    args.extend(extra.iter().map(|s| s.to_string()));
    args.extend(files.iter().map(|p| p.display().to_string()));
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let v = exiftool_json(&refs);
    v.as_array()
        .unwrap()
        .iter()
        .map(|o| {
            let m: BTreeMap<String, serde_json::Value> = serde_json::from_value(o.clone()).unwrap();
            (PathBuf::from(m["SourceFile"].as_str().unwrap()), m)
        })
        .collect()
}

/// Every validation warning ExifTool gives for each file (its JSON keeps only the first).
fn exiftool_warnings(files: &[PathBuf]) -> HashMap<PathBuf, Vec<String>> {
    let mut out: HashMap<PathBuf, Vec<String>> = HashMap::new();
    for chunk in files.chunks(200) {
        let o = std::process::Command::new("exiftool")
            .args(["-a", "-validate", "-warning"])
            .args(chunk)
            .output()
            .expect("exiftool");
        let text = String::from_utf8_lossy(&o.stdout);
        let mut current: Option<PathBuf> = (chunk.len() == 1).then(|| chunk[0].clone());
        for line in text.lines() {
            if let Some(name) = line.strip_prefix("======== ") {
                current = Some(PathBuf::from(name.trim()));
            } else if let (Some(c), Some((k, v))) = (&current, line.split_once(':')) {
                if k.trim() == "Warning" {
                    out.entry(c.clone()).or_default().push(v.trim().to_string());
                }
            }
        }
    }
    out
}

/// Tags that may differ after a GPS write: the GPS group, what ExifTool computes from it, and the
/// file system's view of the file.
fn may_differ(key: &str) -> bool {
    key.starts_with("GPS:")
        || key.starts_with("System:")
        || key.starts_with("File:File")
        || key.starts_with("Composite:GPS")
        || key.starts_with("ExifTool:")
        || key == "SourceFile"
        // ExifTool reports where the GPS IFD sits.
        || key == "IFD0:GPSInfo"
        || key == "IFD0:GPSInfoIFDPointer"
        // Absolute file offsets ExifTool computes for the images of a multi-picture file: they
        // move with the segments after the EXIF one (the offsets stored in the file are relative).
        || key.ends_with(":MPImageStart")
}

/// The photos of the corpus in the formats Pinpoint writes into.
fn writable_corpus(into: &Path) -> Vec<(PathBuf, PathBuf)> {
    let mut out = Vec::new();
    for e in walkdir::WalkDir::new(exif_corpus())
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
    {
        let p = e.path();
        if matches!(
            format_from_extension(p),
            Some(
                PhotoFormat::Jpeg
                    | PhotoFormat::Tiff
                    | PhotoFormat::Png
                    | PhotoFormat::Webp
                    | PhotoFormat::Heif
            )
        ) {
            let rel = p.strip_prefix(exif_corpus()).unwrap();
            let flat = rel.to_string_lossy().replace('/', "__");
            let dst = into.join(flat);
            copy_into(p, &dst);
            out.push((p.to_path_buf(), dst));
        }
    }
    out.sort();
    out
}

#[test]
fn corpus_writes_change_only_gps_and_undo_restores_bytes() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    let files = writable_corpus(&lib);
    assert!(files.len() > 150, "{}", files.len());
    let originals: HashMap<PathBuf, Vec<u8>> = files
        .iter()
        .map(|(_, d)| (d.clone(), std::fs::read(d).unwrap()))
        .collect();
    let db = dir.path().join("c.sqlite");
    pinpoint(&db, &["library", "add", lib.to_str().unwrap(), "--scan"]);
    let catalogued: Vec<PathBuf> = pinpoint_json(&db, &["photos", "list"])
        .1
        .as_array()
        .unwrap()
        .iter()
        .map(|p| PathBuf::from(p["path"].as_str().unwrap()))
        .collect();
    let paths: Vec<PathBuf> = files
        .iter()
        .map(|(_, d)| d.canonicalize().unwrap())
        .filter(|d| catalogued.contains(d))
        .collect();
    let before = exiftool_map(&paths, &[]);
    let warnings_before = exiftool_warnings(&paths);

    let (lat, lon, alt) = (-33.856_784_5, 151.215_296_8, 12.5);
    let mut args = vec![
        "tag".to_string(),
        "set".into(),
        "--lat".into(),
        lat.to_string(),
        "--lon".into(),
        lon.to_string(),
        "--alt".into(),
        alt.to_string(),
    ];
    args.extend(paths.iter().map(|p| p.display().to_string()));
    let refs: Vec<&str> = args.iter().map(|s| s.as_str()).collect();
    let (_, report) = pinpoint_json(&db, &refs);
    let written: Vec<PathBuf> = report["written"]
        .as_array()
        .unwrap()
        .iter()
        .filter(|w| w["target"] == "embedded")
        .map(|w| PathBuf::from(w["path"].as_str().unwrap()))
        .collect();
    let errors = report["errors"].as_array().unwrap();
    // Damaged files are refused, never half-written; the rest of the batch goes on.
    for e in errors {
        let p = PathBuf::from(e["path"].as_str().unwrap());
        assert!(
            std::fs::read(&p).unwrap() == originals[&p],
            "{} changed although refused",
            p.display()
        );
        let reason = e["reason"].as_str().unwrap();
        assert!(
            reason.contains("damaged")
                || reason.contains("EXIF")
                || reason.contains("verification failed"),
            "{e}"
        );
    }
    let by_format = |f: PhotoFormat| {
        written
            .iter()
            .filter(|p| format_from_extension(p) == Some(f))
            .count()
    };
    assert!(
        by_format(PhotoFormat::Jpeg) > 150,
        "JPEGs written: {}",
        by_format(PhotoFormat::Jpeg)
    );
    assert!(
        by_format(PhotoFormat::Tiff) >= 5
            && by_format(PhotoFormat::Png) >= 1
            && by_format(PhotoFormat::Webp) >= 2,
        "{report}"
    );

    let after = exiftool_map(&written, &[]);
    let warnings_after = exiftool_warnings(&written);
    let mut failures = Vec::new();
    for p in &written {
        let (b, a) = (&before[p], &after[p]);
        let flagged_before = |key: &str| {
            // ExifTool already reported this tag's pointer as bad in the original: what it reads
            // through that pointer now is not data Pinpoint changed.
            let name = key.split(':').nth(1).unwrap_or(key);
            warnings_before.get(p).is_some_and(|w| {
                w.iter()
                    .any(|s| s.contains("Bad offset") && s.contains(name))
            })
        };
        for key in b.keys().chain(a.keys()) {
            if !may_differ(key)
                && b.get(key) != a.get(key)
                && !(b.get(key).is_none() && flagged_before(key))
            {
                failures.push(format!(
                    "{}: {key}: {:?} -> {:?}",
                    p.display(),
                    b.get(key),
                    a.get(key)
                ));
            }
        }
        let got = |k: &str| a.get(k).and_then(|v| v.as_f64());
        match (
            got("Composite:GPSLatitude"),
            got("Composite:GPSLongitude"),
            got("Composite:GPSAltitude"),
        ) {
            (Some(la), Some(lo), Some(al)) => {
                if (la - lat).abs() > 1e-7 || (lo - lon).abs() > 1e-7 || (al - alt).abs() > 0.01 {
                    failures.push(format!("{}: exiftool reads {la}, {lo}, {al}", p.display()));
                }
            }
            other => failures.push(format!(
                "{}: exiftool reads no position: {other:?}",
                p.display()
            )),
        }
        // No new validation warning. A warning about the same thing worded differently (a pointer
        // the original file already had wrong, now reading Pinpoint's appended bytes instead of
        // running off the end) is the same problem, not a new one.
        let warns = |m: &HashMap<PathBuf, Vec<String>>| -> Vec<String> {
            m.get(p).cloned().unwrap_or_default()
        };
        let subject = |w: &str| w.split_whitespace().take(3).collect::<Vec<_>>().join(" ");
        let (wb, wa) = (warns(&warnings_before), warns(&warnings_after));
        for w in &wa {
            if !wb.iter().any(|b| b == w || subject(b) == subject(w)) {
                failures.push(format!("{}: new warning {w}", p.display()));
            }
        }
        // Image data byte for byte.
        let (old, new) = (&originals[p], std::fs::read(p).unwrap());
        let fmt = format_from_extension(p).unwrap();
        match pinpoint::tagging::containers::untouched_parts(fmt, old) {
            Some(parts) => {
                if Some(parts) != pinpoint::tagging::containers::untouched_parts(fmt, &new) {
                    failures.push(format!(
                        "{}: data outside the EXIF block changed",
                        p.display()
                    ));
                }
            }
            None => {
                let changed = old.iter().zip(&new).filter(|(x, y)| x != y).count();
                if changed > 16 || new.len() < old.len() {
                    failures.push(format!(
                        "{}: {changed} bytes of the TIFF changed in place",
                        p.display()
                    ));
                }
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} problems:\n{}",
        failures.len(),
        failures.join("\n")
    );

    // Undo: every file back, byte for byte (sidecars written for the rest are removed).
    let (code, undo) = pinpoint_json(&db, &["undo"]);
    assert_eq!(code, 0, "{undo}");
    for (_, d) in &files {
        assert!(
            std::fs::read(d).unwrap() == originals[d],
            "{} not restored",
            d.display()
        );
    }
    let stray: Vec<_> = walkdir::WalkDir::new(&lib)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| {
            e.path()
                .extension()
                .is_some_and(|x| x == "xmp" || x == "tmp")
        })
        .collect();
    assert!(stray.is_empty(), "{stray:?}");
}

#[test]
fn sidecars_are_read_by_exiftool_and_keep_other_tags() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    let photo = lib.join("raw.nef");
    copy_into(&exif_corpus().join("exiftool-t-images/Nikon.nef"), &photo);
    let jpeg = lib.join("photo.jpg");
    copy_into(&gps_sample()[0].1, &jpeg);
    // A digiKam-style sidecar with a rating and keywords.
    std::fs::write(
        lib.join("photo.jpg.xmp"),
        r#"<?xml version="1.0" encoding="UTF-8"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/" x:xmptk="XMP Core 4.4.0-Exiv2">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:dc="http://purl.org/dc/elements/1.1/" xmp:Rating="4">
   <dc:subject><rdf:Bag><rdf:li>holiday</rdf:li><rdf:li>tuscany</rdf:li></rdf:Bag></dc:subject>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>"#,
    )
    .unwrap();
    let db = dir.path().join("c.sqlite");
    pinpoint(&db, &["library", "add", lib.to_str().unwrap(), "--scan"]);
    let nef_before = std::fs::read(&photo).unwrap();
    let (code, r) = pinpoint_json(
        &db,
        &[
            "tag",
            "set",
            photo.to_str().unwrap(),
            jpeg.to_str().unwrap(),
            "--lat",
            "45.4642035",
            "--lon",
            "9.189982",
            "--mode",
            "sidecar",
        ],
    );
    assert_eq!(code, 0, "{r}");
    assert!(
        std::fs::read(&photo).unwrap() == nef_before,
        "sidecar mode never touches the photo"
    );
    let sidecar = lib.join("raw.nef.xmp");
    let e = exiftool_map(&[sidecar.clone(), lib.join("photo.jpg.xmp")], &[]);
    for (p, m) in &e {
        let lat = m
            .get("XMP-exif:GPSLatitude")
            .and_then(|v| v.as_f64())
            .unwrap_or_else(|| panic!("{}: {m:?}", p.display()));
        let lon = m["XMP-exif:GPSLongitude"].as_f64().unwrap();
        assert!(
            (lat - 45.4642035).abs() < 1e-7 && (lon - 9.189982).abs() < 1e-7,
            "{}: {lat} {lon}",
            p.display()
        );
    }
    let kept = &e[&lib.join("photo.jpg.xmp").canonicalize().unwrap()];
    assert_eq!(kept["XMP-xmp:Rating"], 4);
    assert_eq!(
        kept["XMP-dc:Subject"],
        serde_json::json!(["holiday", "tuscany"])
    );
    // The catalog now reads the sidecar's location for both.
    let shown = pinpoint_json(&db, &["show", photo.to_str().unwrap()]).1;
    assert_eq!(shown["gps_source"], "user");
    // A RAW file in embed mode goes to a sidecar too, with a note.
    let (_, r) = pinpoint_json(
        &db,
        &[
            "tag",
            "set",
            photo.to_str().unwrap(),
            "--lat",
            "1",
            "--lon",
            "2",
        ],
    );
    assert!(
        r["notes"][0]["reason"]
            .as_str()
            .unwrap()
            .contains("sidecar"),
        "{r}"
    );
    assert!(std::fs::read(&photo).unwrap() == nef_before);
}

#[test]
fn bad_cases_are_reported_untouched_and_the_batch_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    let s = gps_sample();
    for (name, src) in &s[..4] {
        copy_into(src, &lib.join(name));
    }
    let db = dir.path().join("c.sqlite");
    pinpoint(&db, &["library", "add", lib.to_str().unwrap(), "--scan"]);
    let p = |i: usize| lib.join(&s[i].0);
    // 0: changed by another program after the scan. 1: read-only. 2: damaged after the scan
    // (and rescanned, so the catalog knows it as it is). 3: fine.
    let mut bytes = std::fs::read(p(0)).unwrap();
    bytes.push(0);
    std::fs::write(p(0), &bytes).unwrap();
    let mut perms = std::fs::metadata(p(1)).unwrap().permissions();
    perms.set_readonly(true);
    std::fs::set_permissions(p(1), perms).unwrap();
    // Damage the segment after the EXIF one: the metadata still reads, the structure does not.
    let mut broken = std::fs::read(p(2)).unwrap();
    let app1_end = 4 + u16::from_be_bytes([broken[4], broken[5]]) as usize;
    broken[app1_end + 2..app1_end + 4].copy_from_slice(&[0xFF, 0xFF]);
    std::fs::write(p(2), &broken).unwrap();
    pinpoint(&db, &["scan", lib.to_str().unwrap()]);
    std::fs::write(p(0), &bytes[..bytes.len() - 1]).unwrap(); // changed again after that scan
    let before: Vec<Vec<u8>> = (0..4).map(|i| std::fs::read(p(i)).unwrap()).collect();
    let paths: Vec<String> = (0..4).map(|i| p(i).display().to_string()).collect();
    let mut args = vec!["tag", "set", "--lat", "10", "--lon", "20"];
    args.extend(paths.iter().map(|s| s.as_str()));
    let (code, r) = pinpoint_json(&db, &args);
    assert_eq!(code, 1, "{r}");
    let reason = |i: usize| -> String {
        r["errors"]
            .as_array()
            .unwrap()
            .iter()
            .chain(r["notes"].as_array().unwrap())
            .find(|e| e["path"].as_str().unwrap().ends_with(&s[i].0))
            .map(|e| e["reason"].as_str().unwrap().to_string())
            .unwrap_or_default()
    };
    assert!(reason(0).contains("changed on disk"), "{r}");
    assert!(reason(1).contains("read-only"), "{r}");
    assert!(reason(2).contains("damaged"), "{r}");
    for i in 0..3 {
        assert!(
            std::fs::read(p(i)).unwrap() == before[i],
            "{} touched",
            s[i].0
        );
    }
    assert!(
        std::fs::read(p(3)).unwrap() != before[3],
        "the good photo was written"
    );
    assert!(
        lib.join(format!("{}.xmp", s[1].0)).is_file(),
        "the read-only photo's location went to a sidecar"
    );
}

/// A disk that fills up during the write: the file is reported and left as it was.
#[test]
fn a_full_disk_leaves_files_untouched() {
    let dir = tempfile::tempdir().unwrap();
    let mnt = dir.path().join("small");
    std::fs::create_dir(&mnt).unwrap();
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", "size=400k", "tmpfs"])
        .arg(&mnt)
        .status()
        .is_ok_and(|s| s.success());
    struct Unmount(PathBuf, bool);
    impl Drop for Unmount {
        fn drop(&mut self) {
            if self.1 {
                let _ = std::process::Command::new("umount").arg(&self.0).status();
            }
        }
    }
    let _guard = Unmount(mnt.clone(), mounted);
    let s = gps_sample();
    // Two photos of about 150 KB fill most of the 400 KB: a rewritten copy does not fit.
    for (name, src) in &s[..2] {
        copy_into(src, &mnt.join(name));
    }
    let db = dir.path().join("c.sqlite");
    pinpoint(&db, &["library", "add", mnt.to_str().unwrap(), "--scan"]);
    let before: Vec<Vec<u8>> = (0..2)
        .map(|i| std::fs::read(mnt.join(&s[i].0)).unwrap())
        .collect();
    let mut cmd = std::process::Command::new("sh");
    let tag = format!(
        "{} --catalog {} --quiet --json tag set {} {} --lat 1 --lon 2",
        env!("CARGO_BIN_EXE_pinpoint"),
        db.display(),
        mnt.join(&s[0].0).display(),
        mnt.join(&s[1].0).display()
    );
    // Without a tmpfs (no permission to mount), a file size limit makes writes fail the same way.
    let script = if mounted {
        tag
    } else {
        format!("ulimit -f 100; {tag}")
    };
    let out = cmd.arg("-c").arg(script).output().unwrap();
    let r: serde_json::Value = serde_json::from_slice(&out.stdout)
        .unwrap_or_else(|_| panic!("{}", String::from_utf8_lossy(&out.stderr)));
    let errors = r["errors"].as_array().unwrap();
    assert!(!errors.is_empty(), "{r}");
    for e in errors {
        assert!(e["path"].as_str().is_some() && !e["reason"].as_str().unwrap().is_empty());
    }
    for i in 0..2 {
        let now = std::fs::read(mnt.join(&s[i].0)).unwrap();
        let failed = errors
            .iter()
            .any(|e| e["path"].as_str().unwrap().ends_with(&s[i].0));
        if failed {
            assert!(now == before[i], "{} damaged by a failed write", s[i].0);
        }
    }
    let leftovers: Vec<_> = std::fs::read_dir(&mnt)
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}

/// Killed at random moments during a batch of 200 writes, again and again: every file is always
/// wholly old or wholly new, and the journal settles every interrupted write.
#[test]
fn killed_batches_leave_every_file_old_or_new() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    let s = gps_sample();
    for i in 0..200 {
        copy_into(&s[i % s.len()].1, &lib.join(format!("p{i:03}.jpg")));
    }
    let db = dir.path().join("c.sqlite");
    pinpoint(&db, &["library", "add", lib.to_str().unwrap(), "--scan"]);
    let files: Vec<PathBuf> = (0..200)
        .map(|i| lib.join(format!("p{i:03}.jpg")).canonicalize().unwrap())
        .collect();
    let hash = |b: &[u8]| *blake3::hash(b).as_bytes();
    let mut known: HashMap<PathBuf, Vec<[u8; 32]>> = files
        .iter()
        .map(|f| (f.clone(), vec![hash(&std::fs::read(f).unwrap())]))
        .collect();
    let mut rng = 0x5EED_u64;
    let mut killed_midway = 0;
    for round in 0..8 {
        let lat = 10.0 + round as f64;
        let mut cmd = std::process::Command::new(env!("CARGO_BIN_EXE_pinpoint"));
        cmd.args([
            "--catalog",
            db.to_str().unwrap(),
            "--quiet",
            "tag",
            "set",
            "--lat",
            &lat.to_string(),
            "--lon",
            "20",
        ]);
        cmd.args(&files);
        let mut child = cmd
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .spawn()
            .unwrap();
        rng = rng
            .wrapping_mul(6364136223846793005)
            .wrapping_add(1442695040888963407);
        std::thread::sleep(Duration::from_millis(150 + (rng >> 33) % 900));
        child.kill().unwrap();
        let status = child.wait().unwrap();
        if !status.success() {
            killed_midway += 1;
        }
        // Each file holds bytes it held before (any earlier round) or this round's bytes.
        for f in &files {
            let bytes = std::fs::read(f).unwrap();
            let md = pinpoint::library::read_photo_metadata(f, None)
                .unwrap_or_else(|e| panic!("round {round}: {} unreadable: {e}", f.display()));
            let h = hash(&bytes);
            let lat_now = md.location.map(|l| l.point.lat);
            let old = known[f].contains(&h);
            let new = lat_now.is_some_and(|l| (l - lat).abs() < 1e-9);
            assert!(
                old || new,
                "round {round}: {} is neither old nor new (lat {lat_now:?})",
                f.display()
            );
            if !old {
                known.get_mut(f).unwrap().push(h);
            }
        }
        // The next start settles the journal.
        let (code, _) = pinpoint_json(&db, &["recover"]);
        assert_eq!(code, 0);
        let c = rusqlite::Connection::open(&db).unwrap();
        let pending: i64 = c
            .query_row(
                "SELECT COUNT(*) FROM edits WHERE state = 'pending'",
                [],
                |r| r.get(0),
            )
            .unwrap();
        assert_eq!(
            pending, 0,
            "round {round}: pending writes left after recovery"
        );
        let leftovers = std::fs::read_dir(&lib)
            .unwrap()
            .filter_map(|e| e.ok())
            .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
            .count();
        assert_eq!(leftovers, 0);
        // The catalog agrees with the files.
        let cat = pinpoint::Catalog::open(&db).unwrap();
        for f in files.iter().step_by(17) {
            let rec = cat.photo_by_path(f).unwrap().unwrap();
            let md = pinpoint::library::read_photo_metadata(f, None).unwrap();
            assert_eq!(
                rec.gps.map(|g| (g.lat * 1e7).round()),
                md.location.map(|l| (l.point.lat * 1e7).round()),
                "round {round}: {}",
                f.display()
            );
        }
        pinpoint(&db, &["scan"]);
    }
    assert!(
        killed_midway >= 4,
        "only {killed_midway} of 8 rounds were interrupted"
    );
}

/// Fills a JPEG's EXIF segment (with a UserComment, as phones fill it with maker data) until it
/// ends less than 100 bytes short of JPEG's 64 KB segment limit.
fn fill_exif_segment(path: &Path) {
    let segment_len = |p: &Path| {
        let b = std::fs::read(p).unwrap();
        assert_eq!(&b[2..4], &[0xFF, 0xE1], "{}: APP1 first", p.display());
        u16::from_be_bytes([b[4], b[5]]) as usize
    };
    let mut comment = 65_535 - segment_len(path) - 300;
    for _ in 0..4 {
        let before = std::fs::read(path).unwrap();
        let out = std::process::Command::new("exiftool")
            .args([
                "-q",
                "-overwrite_original",
                &format!("-EXIF:UserComment={}", "x".repeat(comment)),
            ])
            .arg(path)
            .output()
            .unwrap();
        let len = segment_len(path);
        if out.status.success() && (65_535 - 100..=65_535).contains(&len) {
            return;
        }
        // Too large for exiftool to write, or not full yet: aim again from the original.
        let grown = if out.status.success() {
            len as isize
        } else {
            65_600
        };
        std::fs::write(path, &before).unwrap();
        comment = (comment as isize + (65_535 - 40 - grown)) as usize;
    }
    panic!("could not fill the EXIF segment of {}", path.display());
}

/// A phone JPEG whose EXIF segment is full and which already has GPS takes the new position in
/// the file itself, in place: ExifTool reads it, every other tag (GPS time stamp included) is as
/// it was, the image data and the file's length are unchanged, and undo restores the bytes. One
/// whose GPS IFD has no room for the altitude asked gets a sidecar, and the catalog says its
/// embedded position is stale (in `show` and `photos list --json`) until undo removes the sidecar.
#[test]
fn a_full_exif_segment_takes_the_new_position_in_place() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    let src = exif_corpus().join("metadata-extractor-images/gps/Apple iPhone 6.jpg");
    let (full, no_alt) = (lib.join("full.jpg"), lib.join("no-altitude.jpg"));
    copy_into(&src, &full);
    copy_into(&src, &no_alt);
    let stripped = std::process::Command::new("exiftool")
        .args([
            "-q",
            "-overwrite_original",
            "-GPSAltitude=",
            "-GPSAltitudeRef=",
        ])
        .arg(&no_alt)
        .status()
        .unwrap();
    assert!(stripped.success());
    fill_exif_segment(&full);
    fill_exif_segment(&no_alt);
    let originals: Vec<Vec<u8>> = [&full, &no_alt]
        .iter()
        .map(|p| std::fs::read(p).unwrap())
        .collect();
    let db = dir.path().join("c.sqlite");
    pinpoint(&db, &["library", "add", lib.to_str().unwrap(), "--scan"]);
    let (full, no_alt) = (full.canonicalize().unwrap(), no_alt.canonicalize().unwrap());
    let before = exiftool_map(std::slice::from_ref(&full), &[]);

    let (lat, lon, alt) = (-33.856_784_5, 151.215_296_8, 12.5);
    let (code, report) = pinpoint_json(
        &db,
        &[
            "tag",
            "set",
            "--lat",
            &lat.to_string(),
            "--lon",
            &lon.to_string(),
            "--alt",
            &alt.to_string(),
            full.to_str().unwrap(),
            no_alt.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{report}");
    let target = |p: &Path| -> Vec<String> {
        report["written"]
            .as_array()
            .unwrap()
            .iter()
            .filter(|w| w["path"].as_str().unwrap().starts_with(p.to_str().unwrap()))
            .map(|w| w["target"].as_str().unwrap().to_string())
            .collect()
    };
    assert_eq!(target(&full), ["embedded"], "{report}");
    assert_eq!(target(&no_alt), ["sidecar"], "{report}");
    let note = report["notes"]
        .as_array()
        .unwrap()
        .iter()
        .find(|n| n["path"].as_str().unwrap().ends_with("no-altitude.jpg"))
        .expect("a note");
    let note = note["reason"].as_str().unwrap();
    assert!(
        note.contains("sidecar instead") && note.contains("old GPS tag"),
        "{note}"
    );

    // The full file: the new position, in place.
    let new = std::fs::read(&full).unwrap();
    assert_eq!(new.len(), originals[0].len(), "the file grew");
    assert_eq!(
        pinpoint::tagging::containers::untouched_parts(PhotoFormat::Jpeg, &originals[0]),
        pinpoint::tagging::containers::untouched_parts(PhotoFormat::Jpeg, &new),
        "data outside the EXIF block changed"
    );
    let after = exiftool_map(std::slice::from_ref(&full), &[]);
    let (b, a) = (&before[&full], &after[&full]);
    let got = |k: &str| a.get(k).and_then(|v| v.as_f64()).unwrap_or(f64::NAN);
    assert!((got("Composite:GPSLatitude") - lat).abs() < 1e-7, "{a:?}");
    assert!((got("Composite:GPSLongitude") - lon).abs() < 1e-7, "{a:?}");
    assert!((got("Composite:GPSAltitude") - alt).abs() < 0.01, "{a:?}");
    assert_eq!(
        b.get("GPS:GPSTimeStamp"),
        a.get("GPS:GPSTimeStamp"),
        "other GPS tags are kept"
    );
    for key in b.keys().chain(a.keys()) {
        if !may_differ(key) {
            assert_eq!(b.get(key), a.get(key), "{key} changed");
        }
    }

    // The other: untouched, its sidecar holds the position, and the catalog flags the old one.
    assert!(
        std::fs::read(&no_alt).unwrap() == originals[1],
        "written although no room"
    );
    let stale = |db: &Path| -> Vec<(String, bool)> {
        let mut v: Vec<(String, bool)> = pinpoint_json(db, &["photos", "list"])
            .1
            .as_array()
            .unwrap()
            .iter()
            .map(|p| {
                let name = Path::new(p["path"].as_str().unwrap())
                    .file_name()
                    .unwrap()
                    .to_string_lossy()
                    .into_owned();
                (name, p["embedded_gps_stale"].as_bool().unwrap())
            })
            .collect();
        v.sort();
        v
    };
    assert_eq!(
        stale(&db),
        [
            ("full.jpg".to_string(), false),
            ("no-altitude.jpg".to_string(), true)
        ]
    );
    let show = pinpoint(&db, &["show", no_alt.to_str().unwrap()]);
    let text = String::from_utf8_lossy(&show.stdout);
    assert!(text.contains("embedded GPS  stale"), "{text}");
    assert!(
        text.contains("no-altitude.jpg.xmp") && text.contains("(from user)"),
        "{text}"
    );

    let (code, undo) = pinpoint_json(&db, &["undo"]);
    assert_eq!(code, 0, "{undo}");
    assert!(
        std::fs::read(&full).unwrap() == originals[0],
        "undo did not restore the bytes"
    );
    assert!(std::fs::read(&no_alt).unwrap() == originals[1]);
    assert!(!lib.join("no-altitude.jpg.xmp").exists());
    assert_eq!(
        stale(&db),
        [
            ("full.jpg".to_string(), false),
            ("no-altitude.jpg".to_string(), false)
        ]
    );
}
