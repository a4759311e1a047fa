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
        "-QuickTime:Rotation",
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
        // Orientation. A HEIF file's is its primary item's rotation (`irot`, which ExifTool
        // reports as QuickTime:Rotation, anticlockwise), whatever its EXIF tag says.
        let heif_rotation = e
            .get("QuickTime:Rotation")
            .and_then(|v| v.as_u64())
            .filter(|_| md.format == pinpoint::library::PhotoFormat::Heif);
        let expected = match heif_rotation {
            Some(0) => Some(1),
            Some(90) => Some(8),
            Some(180) => Some(3),
            Some(270) => Some(6),
            _ => e.get("IFD0:Orientation").and_then(|v| v.as_u64()),
        };
        if let Some(o) = expected.filter(|o| (1..=8).contains(o)) {
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

fn files_with_extension(exts: &[&str]) -> Vec<PathBuf> {
    all_files(&exif_corpus())
        .into_iter()
        .filter(|p| {
            p.extension()
                .and_then(|e| e.to_str())
                .is_some_and(|e| exts.contains(&e.to_ascii_lowercase().as_str()))
        })
        .collect()
}

/// Every HEIC/HEIF/AVIF photo of the corpus decodes through libheif at the size ExifTool reports,
/// turned by the rotation the file declares (`irot`), so upright; the catalog's orientation
/// agrees. The two files libheif itself cannot read are refused with a reason naming them.
#[test]
fn heif_and_avif_photos_decode_upright() {
    use pinpoint::library::PhotoFormat;
    let files = files_with_extension(&["heic", "heif", "hif", "avif"]);
    let mut args = vec![
        "-n",
        "-j",
        "-q",
        "-q",
        "-G1",
        "-a",
        "-File:ImageWidth",
        "-File:ImageHeight",
        "-QuickTime:Rotation",
    ];
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    args.extend(names.iter().map(|s| s.as_str()));
    let reference = exiftool_json(&args);
    // Damaged in the corpus itself (libheif's own heif-convert refuses them too): a file cut off in
    // the middle of its image data, and one with no `meta` box.
    let damaged = [
        "exiftool-t-images/QuickTime.heic",
        "IllegalArgumentException.HeifReader.processBoxes.heif",
    ];
    let mut decoded = 0;
    let mut failures = Vec::new();
    for e in reference.as_array().unwrap() {
        let path = PathBuf::from(e["SourceFile"].as_str().unwrap());
        let md = read_photo_metadata(&path, None).unwrap();
        assert_eq!(md.format, PhotoFormat::Heif, "{}", path.display());
        let result = decode_upright(&path, md.orientation);
        if damaged.iter().any(|d| path.to_string_lossy().ends_with(d)) {
            let err = result.expect_err("a damaged file decoded").to_string();
            assert!(
                err.contains(&*path.to_string_lossy()) && err.contains("HEIF"),
                "{err}"
            );
            continue;
        }
        let img = match result {
            Ok(img) => img,
            Err(err) => {
                failures.push(format!("{}: {err}", path.display()));
                continue;
            }
        };
        decoded += 1;
        let (w, h) = (
            e["File:ImageWidth"].as_u64().unwrap() as u32,
            e["File:ImageHeight"].as_u64().unwrap() as u32,
        );
        if (md.width, md.height) != (Some(w), Some(h)) {
            failures.push(format!(
                "{}: catalog size {:?}x{:?}, exiftool {w}x{h}",
                path.display(),
                md.width,
                md.height
            ));
        }
        let turned = matches!(
            e.get("QuickTime:Rotation").and_then(|v| v.as_u64()),
            Some(90 | 270)
        );
        let upright = if turned { (h, w) } else { (w, h) };
        if (img.width(), img.height()) != upright {
            failures.push(format!(
                "{}: decoded {}x{}, upright is {}x{} (rotation {:?})",
                path.display(),
                img.width(),
                img.height(),
                upright.0,
                upright.1,
                e.get("QuickTime:Rotation")
            ));
        }
        // The catalog's orientation says the same: turned sizes swap.
        if matches!(md.orientation, Some(5..=8)) != turned {
            failures.push(format!(
                "{}: orientation {:?} but rotation {:?}",
                path.display(),
                md.orientation,
                e.get("QuickTime:Rotation")
            ));
        }
    }
    assert!(failures.is_empty(), "{}", failures.join("\n"));
    assert!(decoded >= 10, "only {decoded} HEIF/AVIF files decoded");
}

/// The corpus's videos: capture time, place, duration and frame size as ExifTool reads them (its
/// CreateDate is the movie header's UTC time, printed as is).
#[test]
fn videos_agree_with_exiftool() {
    use pinpoint::library::PhotoFormat;
    let files = files_with_extension(&["mov", "mp4", "m4v", "3gp"]);
    assert!(files.len() >= 3, "{files:?}");
    let mut args = vec![
        "-n",
        "-j",
        "-q",
        "-q",
        "-G1",
        "-a",
        "-QuickTime:CreateDate",
        "-Keys:CreationDate",
        "-Composite:GPSLatitude",
        "-Composite:GPSLongitude",
        "-QuickTime:Duration",
        "-Track1:ImageWidth",
        "-Track1:ImageHeight",
        "-Composite:Rotation",
    ];
    let names: Vec<String> = files.iter().map(|p| p.display().to_string()).collect();
    args.extend(names.iter().map(|s| s.as_str()));
    let mut with_gps = 0;
    for e in exiftool_json(&args).as_array().unwrap() {
        let path = PathBuf::from(e["SourceFile"].as_str().unwrap());
        let md = read_photo_metadata(&path, None).unwrap();
        let at = path.display();
        assert_eq!(md.format, PhotoFormat::Video, "{at}");
        let time = md.taken_at.expect("a capture time");
        match e.get("Keys:CreationDate").and_then(|v| v.as_str()) {
            Some(local) => assert_eq!(
                time.local.format("%Y:%m:%d %H:%M:%S").to_string(),
                local[..19],
                "{at}"
            ),
            None => {
                let utc = e["QuickTime:CreateDate"].as_str().unwrap();
                assert_eq!(
                    time.to_iso(),
                    format!("{}+00:00", utc.replacen(':', "-", 2).replacen(' ', "T", 1)),
                    "{at}"
                );
            }
        }
        let duration = e["QuickTime:Duration"].as_f64().unwrap();
        assert!(
            (md.duration_s.unwrap() - duration).abs() < 1e-3,
            "{at}: {:?} vs {duration}",
            md.duration_s
        );
        let (w, h) = (
            e["Track1:ImageWidth"].as_u64().unwrap() as u32,
            e["Track1:ImageHeight"].as_u64().unwrap() as u32,
        );
        let turned = matches!(e["Composite:Rotation"].as_u64(), Some(90 | 270));
        assert_eq!(
            (md.width, md.height),
            if turned {
                (Some(h), Some(w))
            } else {
                (Some(w), Some(h))
            },
            "{at}"
        );
        match (
            e.get("Composite:GPSLatitude").and_then(num),
            e.get("Composite:GPSLongitude").and_then(num),
        ) {
            (Some(lat), Some(lon)) if (lat, lon) != (0.0, 0.0) => {
                with_gps += 1;
                let p = md.location.expect("a position").point;
                assert!(
                    (p.lat - lat).abs() < 1e-6 && (p.lon - lon).abs() < 1e-6,
                    "{at}: {p:?} vs {lat},{lon}"
                );
            }
            (Some(_), Some(_)) => {
                assert!(md.location.is_none(), "{at}");
                assert!(
                    md.warnings.iter().any(|w| w.contains("GPS")),
                    "{at}: {:?}",
                    md.warnings
                );
            }
            _ => assert!(md.location.is_none(), "{at}"),
        }
    }
    assert!(with_gps >= 1);
}

/// Videos get an upright poster frame (ffmpeg applies the track's rotation) at the size the
/// catalog shows them; a video ffmpeg cannot read is refused with its name and the reason.
#[test]
fn videos_get_upright_poster_frames() {
    assert!(
        pinpoint::library::video::poster_frames_available(),
        "ffmpeg is missing: scripts/install-deps.sh installs it"
    );
    let mut framed = 0;
    for path in files_with_extension(&["mov", "mp4", "m4v", "3gp"]) {
        let md = read_photo_metadata(&path, None).unwrap();
        let at = path.display();
        match decode_upright(&path, md.orientation) {
            Ok(img) => {
                framed += 1;
                assert_eq!(
                    (Some(img.width()), Some(img.height())),
                    (md.width, md.height),
                    "{at}"
                );
                // A real picture, not a black or grey frame.
                let rgb = img.to_rgb8();
                let n = rgb.as_raw().len() as f64;
                let mean = rgb.as_raw().iter().map(|&v| v as f64).sum::<f64>() / n;
                let var = rgb
                    .as_raw()
                    .iter()
                    .map(|&v| (v as f64 - mean).powi(2))
                    .sum::<f64>()
                    / n;
                assert!(var.sqrt() > 10.0, "{at}: flat frame (sd {:.1})", var.sqrt());
            }
            Err(e) => {
                // ExifTool's QuickTime.mov sample is cut to its metadata: no frame to decode.
                let text = e.to_string();
                assert!(
                    path.ends_with("exiftool-t-images/QuickTime.mov"),
                    "{at}: {text}"
                );
                assert!(
                    text.contains("QuickTime.mov") && text.contains("video frame"),
                    "{text}"
                );
            }
        }
    }
    // A portrait phone clip (ftyp3gp5.mp4, rotation 90) among them.
    assert!(framed >= 2, "{framed}");
    let portrait = exif_corpus().join("metadata-extractor-images/gps/ftyp3gp5.mp4");
    let img = decode_upright(&portrait, None).unwrap();
    assert!(
        img.height() > img.width(),
        "{}x{}",
        img.width(),
        img.height()
    );
}

/// Finds the IFD0 entry for `tag` in a little- or big-endian TIFF block: (entry offset, value).
fn ifd0_entry(tiff: &[u8], tag: u16) -> Option<(usize, u32)> {
    let le = tiff.starts_with(b"II");
    let u16_at = |at: usize| {
        let b = [tiff[at], tiff[at + 1]];
        if le {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        }
    };
    let u32_at = |at: usize| {
        let b: [u8; 4] = tiff[at..at + 4].try_into().unwrap();
        if le {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        }
    };
    let ifd0 = u32_at(4) as usize;
    (0..u16_at(ifd0) as usize)
        .map(|i| ifd0 + 2 + 12 * i)
        .find(|&at| u16_at(at) == tag)
        .map(|at| (at, u32_at(at + 8)))
}

/// A TIFF block whose EXIF IFD pointer is broken so that it points at the GPS IFD (the shape of
/// metadata-extractor's "Issue 151" and -dotnet #304): a strict reader walks the GPS IFD as EXIF
/// tags, then refuses to visit it again as GPS. Pinpoint reads the GPS IFD on its own, with a
/// warning, and finds the position ExifTool reads in the undamaged file.
#[test]
fn a_broken_ifd_pointer_does_not_cost_the_gps() {
    let dir = tempfile::tempdir().unwrap();
    let sources = [
        exif_corpus().join("metadata-extractor-images/gps/Issue 555 (1).tif"),
        exif_corpus().join("metadata-extractor-images/gps/Apple iPhone 6.jpg"),
    ];
    for src in &sources {
        let original = read_photo_metadata(src, None).unwrap();
        let truth = original.location.expect("the undamaged file has GPS").point;
        let mut bytes = std::fs::read(src).unwrap();
        // The TIFF block: the whole TIFF file, or the JPEG's APP1 segment after "Exif\0\0".
        let start = if bytes.starts_with(&[0xFF, 0xD8]) {
            bytes.windows(6).position(|w| w == b"Exif\0\0").unwrap() + 6
        } else {
            0
        };
        let (exif_at, _) = ifd0_entry(&bytes[start..], 0x8769).expect("an EXIF IFD pointer");
        let (_, gps) = ifd0_entry(&bytes[start..], 0x8825).expect("a GPS IFD pointer");
        let le = bytes[start..].starts_with(b"II");
        let value = if le {
            gps.to_le_bytes()
        } else {
            gps.to_be_bytes()
        };
        bytes[start + exif_at + 8..start + exif_at + 12].copy_from_slice(&value);
        let damaged = dir.path().join(src.file_name().unwrap());
        std::fs::write(&damaged, &bytes).unwrap();

        // The strict reading loses the position: the fallback below is what keeps it.
        let mut strict = exif::Reader::new();
        strict.continue_on_error(true);
        let strict = match strict.read_from_container(&mut std::io::BufReader::new(
            std::fs::File::open(&damaged).unwrap(),
        )) {
            Ok(e) => Some(e),
            Err(e) => e.distill_partial_result(|_| {}).ok(),
        };
        assert!(
            strict.is_none_or(|e| e
                .get_field(exif::Tag::GPSLatitude, exif::In::PRIMARY)
                .is_none()),
            "{}: the damage did not hide the GPS IFD",
            damaged.display()
        );

        let md = read_photo_metadata(&damaged, None).unwrap();
        let got = md
            .location
            .unwrap_or_else(|| panic!("{}: no GPS: {:?}", damaged.display(), md.warnings))
            .point;
        assert!(
            (got.lat - truth.lat).abs() < 1e-9 && (got.lon - truth.lon).abs() < 1e-9,
            "{got:?} vs {truth:?}"
        );
        assert_eq!(got.alt.is_some(), truth.alt.is_some());
        assert!(
            md.warnings
                .iter()
                .any(|w| w.contains("GPS read from its own IFD")),
            "{:?}",
            md.warnings
        );
    }
}

/// RAW files decode from their largest embedded JPEG preview that is whole and decodes (the
/// corpus's "NEF" files are JPEGs named .nef: they decode as the JPEGs they are).
#[test]
fn raw_files_decode_from_a_preview_that_decodes() {
    use pinpoint::library::decode::embedded_jpeg_previews;
    let files = files_with_extension(&["nef", "cr2", "dng", "raf", "rw2", "arw", "orf", "pef"]);
    let mut decoded = 0;
    for path in &files {
        let bytes = std::fs::read(path).unwrap();
        let previews = embedded_jpeg_previews(&bytes);
        let md = read_photo_metadata(path, None).unwrap();
        match decode_upright(path, md.orientation) {
            Ok(_) if md.format == pinpoint::library::PhotoFormat::Jpeg => decoded += 1,
            Ok(img) => {
                decoded += 1;
                let (w, h) = (img.width(), img.height());
                assert!(
                    previews.iter().any(|(_, s)| *s == (w, h) || *s == (h, w)),
                    "{}: {w}x{h} is none of the previews {previews:?}",
                    path.display()
                );
            }
            Err(e) => {
                assert!(e.to_string().contains(&*path.to_string_lossy()), "{e}");
                assert!(
                    previews.is_empty()
                        || e.to_string().contains("no embedded JPEG preview decodes"),
                    "{e}"
                );
            }
        }
    }
    assert!(
        decoded >= 3,
        "{decoded} of {} RAW files decoded",
        files.len()
    );
}
