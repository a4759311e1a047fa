//! Metadata reading on the shared EXIF corpus, judged against ExifTool, the reference reader.

mod common;

use std::path::{Path, PathBuf};

use common::*;
use pinpoint::contain::contain;
use pinpoint::library::decode::decode_upright;
use pinpoint::library::format::format_from_extension;
use pinpoint::library::read_photo_metadata;
use pinpoint::library::xmp::find_sidecar;

fn all_files(dir: &Path) -> Vec<PathBuf> {
    let mut out: Vec<PathBuf> = walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect();
    out.sort();
    out
}

/// Every file of the corpus — fuzzer crashers, broken EXIF, non-photos — is either read or refused
/// with an error naming the file and a one-line reason. Nothing panics (not even contained), and
/// decoding pixels never panics either.
#[test]
fn every_corpus_file_parses_or_reports_a_reason() {
    let files = all_files(&exif_corpus());
    assert!(
        files.len() > 500,
        "corpus looks incomplete: {} files",
        files.len()
    );
    let mut read = 0;
    let mut refused = 0;
    let mut panics = Vec::new();
    for path in &files {
        let sidecar = find_sidecar(path);
        match contain(|| read_photo_metadata(path, sidecar.as_deref())) {
            Ok(Ok(md)) => {
                read += 1;
                for w in &md.warnings {
                    assert!(
                        !w.contains('\n') && !w.is_empty(),
                        "{}: warning not one line: {w:?}",
                        path.display()
                    );
                }
            }
            Ok(Err(e)) => {
                refused += 1;
                let msg = e.to_string();
                assert!(
                    msg.contains(&*path.to_string_lossy()),
                    "error does not name the file: {msg}"
                );
                assert!(!msg.contains('\n'), "error is not one line: {msg:?}");
            }
            Err(panic) => panics.push(format!("{}: metadata: {panic}", path.display())),
        }
        if let Err(panic) = contain(|| decode_upright(path, None)) {
            panics.push(format!("{}: decode: {panic}", path.display()));
        }
    }
    assert!(panics.is_empty(), "panics:\n{}", panics.join("\n"));
    assert!(
        read > 250 && refused > 100,
        "read {read}, refused {refused}"
    );
}

fn num(v: &serde_json::Value) -> Option<f64> {
    v.as_f64()
}

/// For every photo ExifTool reports GPS for, Pinpoint's position agrees within 1e-6 degrees (GPS
/// 0,0 and out-of-range values are "no location" for Pinpoint); capture time and orientation agree.
#[test]
fn gps_time_and_orientation_agree_with_exiftool() {
    let corpus = exif_corpus();
    let reference = exiftool_json(&[
        "-n",
        "-j",
        "-r",
        "-q",
        "-q",
        "-a",
        "-G1",
        "-Composite:GPSLatitude",
        "-Composite:GPSLongitude",
        "-DateTimeOriginal",
        "-CreateDate",
        "-DateCreated",
        "-TimeCreated",
        "-IFD0:Orientation",
        corpus.to_str().unwrap(),
    ]);
    let entries = reference.as_array().expect("exiftool JSON array");
    let mut compared_gps = 0;
    let mut compared_time = 0;
    let mut compared_orientation = 0;
    let mut failures = Vec::new();
    for e in entries {
        let path = PathBuf::from(e["SourceFile"].as_str().unwrap());
        if format_from_extension(&path).is_none() {
            continue; // not a photo Pinpoint scans (video, sidecar, document)
        }
        let sidecar = find_sidecar(&path);
        let md = match read_photo_metadata(&path, sidecar.as_deref()) {
            Ok(md) => md,
            Err(err) => {
                if e.get("Composite:GPSLatitude").is_some()
                    || e.get("ExifIFD:DateTimeOriginal").is_some()
                {
                    failures.push(format!(
                        "{}: exiftool reads it, Pinpoint refused: {err}",
                        path.display()
                    ));
                }
                continue;
            }
        };
        // GPS
        let theirs = match (
            e.get("Composite:GPSLatitude").and_then(num),
            e.get("Composite:GPSLongitude").and_then(num),
        ) {
            (Some(lat), Some(lon)) => Some((lat, lon)),
            _ => None,
        };
        let valid = theirs.filter(|(lat, lon)| {
            !(*lat == 0.0 && *lon == 0.0)
                && (-90.0..=90.0).contains(lat)
                && (-180.0..=180.0).contains(lon)
        });
        let ours = md.location.map(|l| (l.point.lat, l.point.lon));
        match (valid, ours) {
            (Some((a, b)), Some((c, d))) => {
                compared_gps += 1;
                if (a - c).abs() > 1e-6 || (b - d).abs() > 1e-6 {
                    failures.push(format!(
                        "{}: GPS exiftool {a},{b} pinpoint {c},{d}",
                        path.display()
                    ));
                }
            }
            (None, None) => {}
            (t, o) => failures.push(format!(
                "{}: GPS exiftool {t:?} (raw {theirs:?}) pinpoint {o:?}",
                path.display()
            )),
        }
        if theirs.is_some() && valid.is_none() {
            assert!(
                md.warnings.iter().any(|w| w.contains("GPS")),
                "{}: rejected GPS without a warning: {:?}",
                path.display(),
                md.warnings
            );
        }
        // Capture time, in Pinpoint's order of precedence. Maker-note dates are not read.
        let iptc = match (
            e.get("IPTC:DateCreated").and_then(|v| v.as_str()),
            e.get("IPTC:TimeCreated").and_then(|v| v.as_str()),
        ) {
            (Some(d), Some(t)) => Some(format!("{d} {t}")),
            _ => None,
        };
        let their_time = [
            "ExifIFD:DateTimeOriginal",
            "IFD0:DateTimeOriginal",
            "ExifIFD:CreateDate",
            "XMP-exif:DateTimeOriginal",
            "XMP-photoshop:DateCreated",
            "XMP-xmp:CreateDate",
        ]
        .iter()
        .filter_map(|k| e.get(*k).and_then(|v| v.as_str()).map(str::to_string))
        .chain(iptc)
        .map(|s| s.trim().to_string())
        .find(|s| {
            s.len() >= 19 && !s.starts_with("0000") && !s.trim_matches([' ', ':']).is_empty()
        });
        if let Some(t) = their_time {
            compared_time += 1;
            let ours = md
                .taken_at
                .map(|t| t.local.format("%Y:%m:%d %H:%M:%S").to_string());
            if ours.as_deref() != Some(&t[..19]) {
                failures.push(format!(
                    "{}: time exiftool {t} pinpoint {ours:?}",
                    path.display()
                ));
            }
        }
        // Orientation
        if let Some(o) = e
            .get("IFD0:Orientation")
            .and_then(|v| v.as_u64())
            .filter(|o| (1..=8).contains(o))
        {
            compared_orientation += 1;
            if md.orientation != Some(o as u8) {
                failures.push(format!(
                    "{}: orientation exiftool {o} pinpoint {:?}",
                    path.display(),
                    md.orientation
                ));
            }
        }
    }
    assert!(
        failures.is_empty(),
        "{} disagreements:\n{}",
        failures.len(),
        failures.join("\n")
    );
    assert!(compared_gps >= 35, "only {compared_gps} GPS comparisons");
    assert!(
        compared_time >= 150,
        "only {compared_time} time comparisons"
    );
    assert!(
        compared_orientation >= 100,
        "only {compared_orientation} orientation comparisons"
    );
}

/// Every orientation 1-8 of the corpus decodes upright: each of landscape_N / portrait_N looks like
/// landscape_1 / portrait_1 once its EXIF orientation is applied (they differ only in the digit
/// printed on them: a mean difference of about 13-15 levels, against 30-70 when the orientation is ignored).
#[test]
fn orientations_decode_upright() {
    use pinpoint::library::thumbnail::resize_rgb;
    let dir = exif_corpus().join("ianare-exif-samples/jpg/orientation");
    let small = |path: &Path, o: Option<u8>| {
        let img = decode_upright(path, o).unwrap();
        (
            (img.width(), img.height()),
            resize_rgb(&img.to_rgb8(), 24, 24),
        )
    };
    let diff = |a: &image::RgbImage, b: &image::RgbImage| {
        a.as_raw()
            .iter()
            .zip(b.as_raw())
            .map(|(x, y)| x.abs_diff(*y) as f64)
            .sum::<f64>()
            / a.as_raw().len() as f64
    };
    for kind in ["landscape", "portrait"] {
        let (size1, ref1) = small(&dir.join(format!("{kind}_1.jpg")), None);
        assert_eq!(size1.0 > size1.1, kind == "landscape");
        for o in 2..=8u8 {
            let path = dir.join(format!("{kind}_{o}.jpg"));
            let md = read_photo_metadata(&path, None).unwrap();
            assert_eq!(md.orientation, Some(o), "{}", path.display());
            let (size, upright) = small(&path, md.orientation);
            assert_eq!(size, size1, "{}", path.display());
            let d = diff(&upright, &ref1);
            assert!(
                d < 20.0,
                "{}: differs from {kind}_1 by {d:.1} once upright",
                path.display()
            );
            // Ignoring the orientation gives a visibly different picture, so the check above has teeth.
            let (_, raw) = small(&path, Some(1));
            assert!(
                diff(&raw, &ref1) > d + 10.0,
                "{}: orientation made no difference",
                path.display()
            );
        }
    }
}
