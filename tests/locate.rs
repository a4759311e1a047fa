//! Finding the place on real data: retrieval recall on the shared place sets, proposals for the
//! Berlin triplet, suspicious-tag detection, GPX correlation, leave-one-out and the JSON shapes.

mod common;

use std::path::{Path, PathBuf};

use candle_core::Device;
use common::*;
use pinpoint::catalog::PhotoFilter;
use pinpoint::locate::{
    held_out_samples, Candidate, EvidenceKind, LocateOptions, Locator, Reranker,
};
use pinpoint::model::{default_model_path, LoadedModel};
use pinpoint::Catalog;

fn recall(results: &serde_json::Value, search: &str, k: &str) -> f64 {
    results
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["search"] == search)
        .unwrap_or_else(|| panic!("no {search} in {results}"))["recall"][k]
        .as_f64()
        .unwrap()
}

/// Corridor (VPR-Bench ground truth) and IE-tower (floor labels): the built-in model's recall.
/// Measured on this model: corridor R@1 0.77 / R@5 0.96, IE-tower R@1 0.90 / R@5 1.00; the
/// thresholds leave room for float and decoder differences between machines, not for regressions.
#[test]
fn recall_on_corridor_and_ie_tower() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.sqlite");
    let per_query = dir.path().join("corridor-per-query.csv");
    let (code, corridor) = pinpoint_json(
        &db,
        &[
            "eval",
            "--no-rerank",
            places().join("corridor").to_str().unwrap(),
            "--per-query",
            per_query.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{corridor}");
    assert_eq!(corridor[0]["queries"], 111);
    assert!(
        corridor[0]["median_error_m"].is_null(),
        "label sets have no metric error"
    );
    let (r1, r5) = (
        recall(&corridor, "exact", "1"),
        recall(&corridor, "exact", "5"),
    );
    assert!(r1 >= 0.65 && r5 >= 0.9, "corridor R@1 {r1}, R@5 {r5}");
    assert!(
        recall(&corridor, "hnsw", "5") >= r5 - 0.02,
        "HNSW loses recall on 111 references"
    );
    // Each query's outcome, as the failures are looked at: the ranks give the same recall, and
    // every top-1 is a reference frame.
    let rows = per_query_rows(&per_query);
    assert_eq!(rows.len(), 111);
    let within = |k: usize| {
        rows.iter()
            .filter(|r| {
                r["first_correct_rank"]
                    .parse::<usize>()
                    .is_ok_and(|n| n <= k)
            })
            .count() as f64
            / 111.0
    };
    assert_eq!((within(1), within(5)), (r1, r5));
    for r in &rows {
        assert_eq!(r["answerable"], "true");
        assert!(r["top1"].contains("/corridor/ref/"), "{r:?}");
        let s: f32 = r["top1_similarity"].parse().unwrap();
        assert!((-1.0..=1.0001).contains(&s), "{r:?}");
        assert_eq!(r["top1_error_m"], "", "label sets have no metric error");
    }

    // IE-tower: dataset.csv rewritten in Pinpoint's CSV format (path,split,label).
    let rows: Vec<Vec<String>> = ie_tower_frames()
        .into_iter()
        .map(|f| {
            let split = if f.is_query { "query" } else { "database" };
            vec![f.path.display().to_string(), split.into(), f.label]
        })
        .collect();
    let csv_path = dir.path().join("ie-tower.csv");
    write_csv(&csv_path, &["path", "split", "label"], &rows);
    let (code, tower) = pinpoint_json(&db, &["eval", "--no-rerank", csv_path.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(tower[0]["queries"], 63);
    let (r1, r5) = (recall(&tower, "exact", "1"), recall(&tower, "exact", "5"));
    assert!(r1 >= 0.8 && r5 >= 0.95, "ie-tower R@1 {r1}, R@5 {r5}");
}

/// The rows of an `eval --per-query` file, by column name.
fn per_query_rows(file: &Path) -> Vec<std::collections::HashMap<String, String>> {
    csv::Reader::from_path(file)
        .unwrap()
        .deserialize()
        .map(|r| r.unwrap())
        .collect()
}

fn jpgs(dir: &Path) -> Vec<PathBuf> {
    let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("jpg" | "png")))
        .collect();
    v.sort();
    v
}

/// The Berlin triplet, the Tokyo pair and the Sacre-Coeur photos rank each other above unrelated
/// photos of the EXIF corpus.
#[test]
fn same_place_photos_outrank_unrelated_ones() {
    let model = LoadedModel::load(&default_model_path(), &Device::Cpu).unwrap();
    let dir = tempfile::tempdir().unwrap();
    let cache =
        pinpoint::model::cache::DescriptorCache::open(&dir.path().join("d.sqlite")).unwrap();
    let distractors: Vec<PathBuf> =
        walkdir::WalkDir::new(exif_corpus().join("ianare-exif-samples/jpg"))
            .into_iter()
            .filter_map(|e| e.ok())
            .map(|e| e.into_path())
            .filter(|p| {
                p.extension().is_some_and(|e| e == "jpg")
                    && image::image_dimensions(p).is_ok_and(|(w, h)| w.min(h) >= 200)
            })
            .filter(|p| !p.to_string_lossy().contains("/orientation/"))
            .collect();
    assert!(distractors.len() > 30);
    let opts = pinpoint::model::describe::DescribeOptions::default();
    let none = pinpoint::progress::NoProgress;
    let cancel = pinpoint::progress::CancelToken::new();
    let d = cache
        .describe(&model, &distractors, &opts, &none, &cancel)
        .unwrap();
    let dot = |a: &[f32], b: &[f32]| a.iter().zip(b).map(|(x, y)| x * y).sum::<f32>();
    let mut misses = Vec::new();
    let mut pairs = 0;
    // Each ordered pair of one place's photos: a miss when an unrelated photo is closer.
    let score_pairs = |set: &str,
                       members: &[PathBuf],
                       v: &[Vec<f32>],
                       pairs: &mut usize,
                       misses: &mut Vec<String>| {
        for (qi, q) in v.iter().enumerate() {
            let best_unrelated = d.iter().map(|x| dot(q, x)).fold(f32::MIN, f32::max);
            for (pi, p) in v.iter().enumerate() {
                if pi != qi {
                    *pairs += 1;
                    if dot(q, p) <= best_unrelated {
                        misses.push(format!(
                            "{set}: {} -> {}",
                            members[qi].display(),
                            members[pi].display()
                        ));
                    }
                }
            }
        }
    };
    for set in ["berlin-triplet", "tokyo-pair", "sacre-coeur"] {
        let members = jpgs(&places().join(set));
        let v = cache
            .describe(&model, &members, &opts, &none, &cancel)
            .unwrap();
        score_pairs(set, &members, &v, &mut pairs, &mut misses);
    }
    // The same places as iPhone-style HEIC files (HEVC through libheif's encoder): they match
    // each other above every unrelated photo, as the JPEGs do.
    let heic_dir = dir.path().join("heic");
    for set in ["berlin-triplet", "tokyo-pair"] {
        let members: Vec<PathBuf> = jpgs(&places().join(set))
            .iter()
            .map(|jpg| {
                let out = heic_dir.join(format!(
                    "{set}-{}.heic",
                    jpg.file_stem().unwrap().to_string_lossy()
                ));
                write_heic(jpg, &out, 1024);
                out
            })
            .collect();
        let v = cache
            .describe(&model, &members, &opts, &none, &cancel)
            .unwrap();
        score_pairs(
            &format!("{set} (HEIC)"),
            &members,
            &v,
            &mut pairs,
            &mut misses,
        );
    }
    // Berlin and Tokyo: every pair, JPEG and HEIC. Sacre-Coeur (90 pairs of very different Flickr
    // views, day and night, near and far): at least 70% (measured: about 80%).
    assert!(
        misses.iter().all(|m| m.starts_with("sacre-coeur")),
        "{misses:#?}"
    );
    assert_eq!(pairs, 6 + 2 + 90 + 6 + 2);
    assert!(
        misses.len() <= 27,
        "{} of 90 Sacre-Coeur pairs below an unrelated photo: {misses:#?}",
        misses.len()
    );
}

/// Encodes `jpg` (upright, long side at most `long_side`) as a HEIC file with libheif's HEVC
/// encoder, the way a phone stores its photos.
fn write_heic(jpg: &Path, out: &Path, long_side: u32) {
    use libheif_rs::{
        Channel, ColorSpace, CompressionFormat, EncoderQuality, HeifContext, Image, LibHeif,
        RgbChroma,
    };
    let img = pinpoint::library::decode::decode_upright(jpg, None).unwrap();
    let img = img
        .resize(long_side, long_side, image::imageops::FilterType::Triangle)
        .to_rgb8();
    let (w, h) = img.dimensions();
    let mut heif = Image::new(w, h, ColorSpace::Rgb(RgbChroma::Rgb)).unwrap();
    heif.create_plane(Channel::Interleaved, w, h, 8).unwrap();
    {
        let planes = heif.planes_mut();
        let plane = planes.interleaved.unwrap();
        let stride = plane.stride;
        for (y, row) in img.as_raw().chunks(w as usize * 3).enumerate() {
            plane.data[y * stride..y * stride + row.len()].copy_from_slice(row);
        }
    }
    let lib = LibHeif::new();
    let mut encoder = lib.encoder_for_format(CompressionFormat::Hevc).unwrap();
    encoder.set_quality(EncoderQuality::Lossy(90)).unwrap();
    let mut context = HeifContext::new().unwrap();
    context.encode_image(&heif, &mut encoder, None).unwrap();
    std::fs::create_dir_all(out.parent().unwrap()).unwrap();
    context.write_to_file(out.to_str().unwrap()).unwrap();
}

/// A library: the Berlin triplet, the Tuscany photos and the sample Sacre-Coeur photos (two tagged
/// by sidecar), scanned and described.
fn tagged_library(dir: &Path) -> (Catalog, PathBuf, String) {
    let lib = dir.join("lib");
    for p in jpgs(&places().join("berlin-triplet")) {
        copy_into(&p, &lib.join("berlin").join(p.file_name().unwrap()));
    }
    for (name, src) in gps_sample() {
        copy_into(&src, &lib.join("tuscany").join(name));
    }
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample-library/sacre-coeur");
    for e in std::fs::read_dir(&sample).unwrap() {
        let p = e.unwrap().path();
        copy_into(&p, &lib.join("sacre-coeur").join(p.file_name().unwrap()));
    }
    let db = dir.join("c.sqlite");
    assert!(
        pinpoint(&db, &["library", "add", lib.to_str().unwrap(), "--scan"])
            .status
            .success()
    );
    // One test describes the library at a time: with the test run's shared content cache the
    // second finds every photo described by the first instead of describing them alongside it.
    static DESCRIBING: std::sync::Mutex<()> = std::sync::Mutex::new(());
    let out = {
        let _one_at_a_time = DESCRIBING.lock().unwrap_or_else(|e| e.into_inner());
        pinpoint(&db, &["describe"])
    };
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let model = LoadedModel::load(&default_model_path(), &Device::Cpu).unwrap();
    (Catalog::open(&db).unwrap(), lib, model.hash)
}

/// Each Berlin photo, proposed from the rest of the library (the other two Berlin photos among
/// 20 references elsewhere), lands within 50 m of its true position; and `propose --json` has the
/// documented shape, placing the untagged Sacre-Coeur photos at the basilica.
#[test]
fn berlin_triplet_proposals_land_within_50_m() {
    let dir = tempfile::tempdir().unwrap();
    let (catalog, lib, hash) = tagged_library(dir.path());
    let locator = Locator::new(&catalog, &hash, Vec::new(), LocateOptions::default()).unwrap();
    let descriptors: std::collections::HashMap<i64, Vec<f32>> =
        catalog.descriptors(&hash).unwrap().into_iter().collect();
    for name in ["01.jpg", "02.jpg", "03.jpg"] {
        let photo = catalog
            .photo_by_path(&lib.join("berlin").join(name))
            .unwrap()
            .unwrap();
        let truth = photo.gps.unwrap();
        let m = locator.matches(&[descriptors[&photo.id].clone()], &|_, r| {
            r.photo_id == Some(photo.id)
        });
        let (best, _) = locator.visual_candidates(&m[0]).into_iter().next().unwrap();
        let d = truth.distance_m(&pinpoint::geo::GeoPoint::new(best.lat, best.lon));
        assert!(
            d <= 50.0,
            "{name}: proposed {:.6},{:.6}, {d:.0} m from the truth",
            best.lat,
            best.lon
        );
        assert!(
            best.evidence.len() >= 2,
            "both other Berlin photos are evidence"
        );
        assert!(
            best.confidence > 0.5,
            "{name}: confidence {}",
            best.confidence
        );
    }
    drop(catalog);
    let (code, proposals) = pinpoint_json(&dir.path().join("c.sqlite"), &["propose"]);
    assert_eq!(code, 0, "{proposals}");
    let list = proposals.as_array().unwrap();
    assert_eq!(
        list.len(),
        3,
        "the three untagged Sacre-Coeur photos: {proposals}"
    );
    let basilica = pinpoint::geo::GeoPoint::new(48.88671, 2.34305);
    for p in list {
        for key in ["path", "lat", "lon", "radius_m", "confidence", "evidence"] {
            assert!(p.get(key).is_some(), "{key} missing in {p}");
        }
        for e in p["evidence"].as_array().unwrap() {
            for key in ["source", "path_or_id", "lat", "lon", "similarity"] {
                assert!(e.get(key).is_some(), "{key} missing in evidence {e}");
            }
        }
        let c = p["confidence"].as_f64().unwrap();
        assert!((0.0..=1.0).contains(&c));
    }
    let best = &list[0];
    let at =
        pinpoint::geo::GeoPoint::new(best["lat"].as_f64().unwrap(), best["lon"].as_f64().unwrap());
    assert!(at.distance_m(&basilica) < 100.0, "best proposal {best}");
    assert!(best["evidence"][0]["path_or_id"]
        .as_str()
        .unwrap()
        .contains("sacre-coeur"));
}

/// A photo whose tag was moved 5 km is flagged, with the evidence, and the others are not.
#[test]
fn a_tag_moved_by_5_km_is_flagged() {
    let dir = tempfile::tempdir().unwrap();
    let (catalog, lib, _) = tagged_library(dir.path());
    let photo = lib.join("berlin/02.jpg");
    let truth = catalog.photo_by_path(&photo).unwrap().unwrap().gps.unwrap();
    drop(catalog);
    // 5 km north, written in a sidecar (which wins over the embedded GPS).
    let moved_lat = truth.lat + 5000.0 / 111_195.0;
    let xmp = format!(
        r#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
<rdf:Description rdf:about="" xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="{}" exif:GPSLongitude="{}"/></rdf:RDF></x:xmpmeta>"#,
        pinpoint::geo::format_xmp_coordinate(moved_lat, true),
        pinpoint::geo::format_xmp_coordinate(truth.lon, false)
    );
    std::fs::write(lib.join("berlin/02.jpg.xmp"), xmp).unwrap();
    let db = dir.path().join("c.sqlite");
    pinpoint(&db, &["scan"]);
    let (code, flagged) = pinpoint_json(&db, &["suspicious"]);
    assert_eq!(code, 0, "{flagged}");
    let flagged = flagged.as_array().unwrap();
    assert_eq!(flagged.len(), 1, "{flagged:#?}");
    let f = &flagged[0];
    assert!(f["path"].as_str().unwrap().ends_with("berlin/02.jpg"));
    let d = f["distance_m"].as_f64().unwrap();
    assert!((4900.0..5100.0).contains(&d), "{d}");
    let proposed =
        pinpoint::geo::GeoPoint::new(f["lat"].as_f64().unwrap(), f["lon"].as_f64().unwrap());
    assert!(proposed.distance_m(&truth) < 50.0);
    assert!(!f["evidence"].as_array().unwrap().is_empty());
}

/// GPX: photos without GPS are placed on the track at their capture time, using the time zone
/// (the photo records none) and the camera's clock offset; a photo outside the track is not.
#[test]
fn gpx_correlation_with_clock_offset_and_time_zone() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    let jpg = exif_corpus().join("ianare-exif-samples/jpg");
    copy_into(&jpg.join("Canon_40D.jpg"), &lib.join("Canon_40D.jpg")); // 2008-05-30 15:56:01 local
    copy_into(&jpg.join("Pentax_K10D.jpg"), &lib.join("Pentax_K10D.jpg")); // 2008-05-04: no track
    let db = dir.path().join("c.sqlite");
    pinpoint(&db, &["library", "add", lib.to_str().unwrap(), "--scan"]);
    let gpx = dir.path().join("walk.gpx");
    std::fs::write(
        &gpx,
        r#"<?xml version="1.0" encoding="UTF-8"?>
<gpx version="1.1" creator="pinpoint-test" xmlns="http://www.topografix.com/GPX/1/1"><trk><name>walk</name><trkseg>
<trkpt lat="48.0" lon="11.0"><time>2008-05-30T13:50:00Z</time></trkpt>
<trkpt lat="48.0" lon="11.01"><time>2008-05-30T13:58:00Z</time></trkpt>
</trkseg></trk></gpx>"#,
    )
    .unwrap();
    // UTC+2, camera 45 s fast: true time 13:55:16 UTC, 316 s into the 480 s between the points.
    let (code, imported) = pinpoint_json(
        &db,
        &[
            "gpx",
            "import",
            gpx.to_str().unwrap(),
            "--tz",
            "+02:00",
            "--clock-offset",
            "-45",
            "--max-gap",
            "600",
        ],
    );
    assert_eq!(code, 0, "{imported}");
    assert!(pinpoint(&db, &["describe"]).status.success());
    let (code, proposals) = pinpoint_json(&db, &["propose"]);
    assert_eq!(code, 0, "{proposals}");
    let list = proposals.as_array().unwrap();
    assert_eq!(
        list.len(),
        1,
        "only the Canon photo is on the track: {proposals}"
    );
    let p = &list[0];
    assert!(p["path"].as_str().unwrap().ends_with("Canon_40D.jpg"));
    assert_eq!(p["sources"][0], "gpx");
    let expected_lon = 11.0 + 0.01 * 316.0 / 480.0;
    assert!((p["lat"].as_f64().unwrap() - 48.0).abs() < 1e-9);
    assert!(
        (p["lon"].as_f64().unwrap() - expected_lon).abs() < 1e-7,
        "{p}"
    );
    // Without the clock correction the photo lands 45 s further along (about 70 m).
    let (_, _) = pinpoint_json(
        &db,
        &[
            "gpx",
            "import",
            gpx.to_str().unwrap(),
            "--clock-offset",
            "0",
        ],
    );
    let (_, proposals) = pinpoint_json(&db, &["propose"]);
    let lon = proposals[0]["lon"].as_f64().unwrap();
    assert!((lon - (11.0 + 0.01 * 361.0 / 480.0)).abs() < 1e-7, "{lon}");
    // In UTC (no time zone correction) the photo is two hours after the track: no proposal.
    pinpoint_json(
        &db,
        &["gpx", "import", gpx.to_str().unwrap(), "--tz", "+00:00"],
    );
    let (_, proposals) = pinpoint_json(&db, &["propose"]);
    assert_eq!(proposals.as_array().unwrap().len(), 0, "{proposals}");
}

fn candidate(lat: f64, lon: f64, radius_m: f64, confidence: f64, kind: EvidenceKind) -> Candidate {
    Candidate {
        lat,
        lon,
        radius_m,
        confidence,
        kinds: vec![kind],
        evidence: Vec::new(),
    }
}

/// The combination rule: agreeing evidence reinforces; a time-only estimate that strong visual
/// evidence contradicts (the photographer took a train) gives way; a GPX fix is never discounted.
#[test]
fn visual_evidence_rescues_wrong_time_estimates() {
    // Agreement: time and visual at the same place.
    let r = Locator::combine(
        vec![candidate(45.0, 10.0, 50.0, 0.6, EvidenceKind::Visual)],
        Some(candidate(45.0001, 10.0, 200.0, 0.7, EvidenceKind::Time)),
        None,
    );
    assert_eq!(r.len(), 1);
    assert!((r[0].confidence - (1.0 - 0.4 * 0.3)).abs() < 1e-9);
    assert_eq!(r[0].radius_m, 50.0, "the tighter position wins");
    assert!(r[0].kinds.contains(&EvidenceKind::Time) && r[0].kinds.contains(&EvidenceKind::Visual));
    // A train: 10 minutes after a tagged photo, but the picture shows a city 30 km away.
    let r = Locator::combine(
        vec![candidate(45.3, 10.0, 50.0, 0.8, EvidenceKind::Visual)],
        Some(candidate(45.0, 10.0, 900.0, 0.75, EvidenceKind::Time)),
        None,
    );
    assert_eq!(r[0].kinds, vec![EvidenceKind::Visual]);
    assert!((r[1].confidence - 0.75 * 0.2).abs() < 1e-9);
    // Weak visual evidence does not override time.
    let r = Locator::combine(
        vec![candidate(45.3, 10.0, 50.0, 0.3, EvidenceKind::Visual)],
        Some(candidate(45.0, 10.0, 900.0, 0.75, EvidenceKind::Time)),
        None,
    );
    assert_eq!(r[0].kinds, vec![EvidenceKind::Time]);
    // A GPX fix keeps its confidence against visual evidence.
    let r = Locator::combine(
        vec![candidate(45.3, 10.0, 50.0, 0.9, EvidenceKind::Visual)],
        None,
        Some(candidate(45.0, 10.0, 30.0, 0.95, EvidenceKind::Gpx)),
    );
    assert_eq!(r[0].kinds, vec![EvidenceKind::Gpx]);
}

/// Leave-one-out over a folder of geotagged photos: recall, errors and the calibration table.
#[test]
fn leave_one_out_on_geotagged_photos() {
    let dir = tempfile::tempdir().unwrap();
    let folder = dir.path().join("gps");
    for (name, src) in gps_sample() {
        copy_into(&src, &folder.join(name));
    }
    for p in jpgs(&places().join("berlin-triplet")) {
        copy_into(
            &p,
            &folder.join(format!(
                "berlin_{}",
                p.file_name().unwrap().to_string_lossy()
            )),
        );
    }
    for name in [
        "gps/Apple iPhone 6.jpg",
        "gps/HTC Desire.jpg",
        "gps/Nexus 4.jpg",
    ] {
        let src = exif_corpus().join("metadata-extractor-images").join(name);
        copy_into(&src, &folder.join(src.file_name().unwrap()));
    }
    let db = dir.path().join("c.sqlite");
    let per_query = dir.path().join("per-query.csv");
    let (code, out) = pinpoint_json(
        &db,
        &[
            "eval",
            "--no-rerank",
            "--leave-one-out",
            folder.to_str().unwrap(),
            "--per-query",
            per_query.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{out}");
    let list = out.as_array().unwrap();
    assert_eq!(list.len(), 2);
    let exact = list.iter().find(|r| r["search"] == "exact").unwrap();
    for key in ["queries", "recall", "median_error_m", "p90_error_m"] {
        assert!(exact.get(key).is_some(), "{key} missing: {exact}");
    }
    // Within 25 m of another photo: the Berlin three and the Tuscany pairs that close.
    assert!(exact["queries"].as_u64().unwrap() >= 3);
    assert!(exact["recall"]["1"].as_f64().unwrap() > 0.5, "{exact}");
    assert!(
        exact["median_error_m"].as_f64().unwrap() < 1000.0,
        "{exact}"
    );
    let table = exact["calibration"].as_array().unwrap();
    let n: u64 = table.iter().map(|b| b["proposals"].as_u64().unwrap()).sum();
    assert_eq!(n, 15, "one visual proposal per photo");
    // Per photo: never itself as its own top-1, an error in metres for each, and the answerable
    // ones give the recall and the query count above.
    let rows = per_query_rows(&per_query);
    assert_eq!(rows.len(), 15);
    assert!(rows.iter().all(|r| r["top1"] != r["query"]), "{rows:?}");
    assert!(rows
        .iter()
        .all(|r| r["top1_error_m"].parse::<f64>().is_ok_and(|m| m >= 0.0)));
    let answerable: Vec<_> = rows.iter().filter(|r| r["answerable"] == "true").collect();
    assert_eq!(answerable.len() as u64, exact["queries"].as_u64().unwrap());
    let first = answerable
        .iter()
        .filter(|r| r["first_correct_rank"] == "1")
        .count() as f64;
    assert_eq!(
        first / answerable.len() as f64,
        exact["recall"]["1"].as_f64().unwrap()
    );
    let _ = PhotoFilter::default();
}

/// A phone video with GPS is time evidence: a photo taken a minute after it (both clocks in
/// UTC) is proposed at the video's place; without the video there is nothing to go on.
#[test]
fn a_video_with_gps_places_a_photo_taken_a_minute_later() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    let photo = lib.join("after.jpg");
    copy_into(
        &exif_corpus().join("ianare-exif-samples/jpg/Canon_40D.jpg"),
        &photo,
    );
    // The video's movie header says 2017-02-22 08:20:28 UTC.
    let set = std::process::Command::new("exiftool")
        .args([
            "-q",
            "-overwrite_original",
            "-DateTimeOriginal=2017:02:22 08:21:28",
            "-OffsetTimeOriginal=+00:00",
        ])
        .arg(&photo)
        .status()
        .unwrap();
    assert!(set.success());
    let db = dir.path().join("c.sqlite");
    pinpoint(&db, &["library", "add", lib.to_str().unwrap(), "--scan"]);
    assert!(pinpoint(&db, &["describe"]).status.success());
    let (code, alone) = pinpoint_json(&db, &["propose"]);
    assert_eq!(code, 0, "{alone}");
    assert_eq!(alone.as_array().unwrap().len(), 0, "{alone}");

    copy_into(
        &exif_corpus().join("metadata-extractor-images/gps/with-gps.mp4"),
        &lib.join("clip.mp4"),
    );
    pinpoint(&db, &["scan", lib.to_str().unwrap()]);
    let (_, videos) = pinpoint_json(&db, &["photos", "list", "--kind", "video"]);
    let videos = videos.as_array().unwrap();
    assert_eq!(videos.len(), 1, "{videos:?}");
    assert_eq!(videos[0]["format"], "video");
    assert!((videos[0]["duration_s"].as_f64().unwrap() - 0.171).abs() < 1e-6);
    let (_, stills) = pinpoint_json(&db, &["photos", "list", "--kind", "photo"]);
    assert_eq!(stills.as_array().unwrap().len(), 1);

    let (code, proposals) = pinpoint_json(&db, &["propose"]);
    assert_eq!(code, 0, "{proposals}");
    let list = proposals.as_array().unwrap();
    let p = list
        .iter()
        .find(|p| p["path"].as_str().unwrap().ends_with("after.jpg"))
        .unwrap_or_else(|| panic!("no proposal for the photo: {proposals}"));
    assert!(
        p["sources"].as_array().unwrap().iter().any(|s| s == "time"),
        "{p}"
    );
    let d = pinpoint::geo::haversine_m(
        p["lat"].as_f64().unwrap(),
        p["lon"].as_f64().unwrap(),
        51.4169,
        -0.0806,
    );
    assert!(d < 1.0, "{d} m from the video: {p}");
}

/// Lund (29 geotagged street photos), each proposed from the others: geometric re-ranking of the
/// top 10 puts photos that really show the same scene (verified local-feature matches) above the
/// ones that only look alike, and the full NetVLAD vectors re-score the compact ones' shortlist.
/// Measured on the built-in model: recall@1 within 25 m exact 0.828, full and two-stage 0.862,
/// re-ranked 0.966.
#[test]
fn lund_reranking_and_two_stage_search_raise_recall() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.sqlite");
    let lund = places().join("lund");
    let (code, out) = pinpoint_json(
        &db,
        &[
            "eval",
            "--leave-one-out",
            lund.to_str().unwrap(),
            "--no-hnsw",
            "--two-stage",
            "100",
            "--rerank",
            "10",
        ],
    );
    assert_eq!(code, 0, "{out}");
    let searches: Vec<&str> = out
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["search"].as_str().unwrap())
        .collect();
    assert_eq!(searches, ["exact", "full", "two-stage", "reranked"]);
    for r in out.as_array().unwrap() {
        assert_eq!(r["queries"], 29, "{r}");
    }
    let at = |search: &str, k: &str| recall(&out, search, k);
    let exact = at("exact", "1");
    assert!(exact >= 0.75, "exact recall@1 {exact}");
    // A shortlist of 100 holds all 28 other photos: the two-stage search is the full search.
    let full = out
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["search"] == "full");
    let two = out
        .as_array()
        .unwrap()
        .iter()
        .find(|r| r["search"] == "two-stage");
    assert_eq!(full.unwrap()["recall"], two.unwrap()["recall"]);
    assert!(at("full", "1") >= exact, "{out}");
    let reranked = at("reranked", "1");
    assert!(
        reranked >= 0.93 && reranked > exact,
        "re-ranked recall@1 {reranked}, exact {exact}"
    );
    assert!(at("reranked", "5") >= at("exact", "5"), "{out}");

    // The same through the catalog, as the calibration and `propose` see it: each photo
    // proposed from the other 28, with and without verifying its best 10 matches.
    let lib = dir.path().join("lund");
    for p in jpgs(&lund) {
        copy_into(&p, &lib.join(p.file_name().unwrap()));
    }
    let db = dir.path().join("lund.sqlite");
    let added = pinpoint(&db, &["library", "add", lib.to_str().unwrap(), "--scan"]);
    assert!(added.status.success());
    let described = pinpoint(&db, &["describe"]);
    assert!(
        described.status.success(),
        "{}",
        String::from_utf8_lossy(&described.stderr)
    );
    let catalog = Catalog::open(&db).unwrap();
    let model = LoadedModel::load(&default_model_path(), &Device::Cpu).unwrap();
    let cancel = pinpoint::progress::CancelToken::new();
    let visual = |samples: Vec<pinpoint::locate::HeldOut>| -> Vec<pinpoint::locate::HeldOut> {
        samples
            .into_iter()
            .filter(|h| h.kind == EvidenceKind::Visual)
            .collect()
    };
    let opts = LocateOptions::default;
    let plain = visual(held_out_samples(&catalog, &model.hash, opts(), None, &cancel).unwrap());
    let reranker = Reranker::new(&catalog, &model, 10).unwrap();
    let checked =
        visual(held_out_samples(&catalog, &model.hash, opts(), Some(&reranker), &cancel).unwrap());
    assert_eq!((plain.len(), checked.len()), (29, 29));
    let hits = |s: &[pinpoint::locate::HeldOut]| s.iter().filter(|h| h.error_m <= 25.0).count();
    eprintln!(
        "Lund through the catalog: top-1 within 25 m {} of 29 plain, {} re-ranked",
        hits(&plain),
        hits(&checked)
    );
    // Measured: 23 of 29 plain, 28 re-ranked (recall@1 0.79 and 0.97).
    assert!(
        hits(&checked) > hits(&plain) && hits(&checked) >= 27,
        "{} re-ranked vs {} plain",
        hits(&checked),
        hits(&plain)
    );
    // Every photo whose answer moved now rests on a verified match (features[4]: ln(1 + inliers)),
    // and every one re-ranking fixed was fixed by one.
    for (p, c) in plain.iter().zip(&checked) {
        assert_eq!(p.photo_id, c.photo_id);
        if (p.error_m - c.error_m).abs() > 1e-6 {
            assert!(
                c.features[4] > 0.0,
                "photo {} moved without a verified match: {c:?}",
                c.photo_id
            );
        }
        if p.error_m > 25.0 && c.error_m <= 25.0 {
            assert!(c.features[4] >= 21f64.ln(), "{c:?}");
        }
    }
    // Features and pair outcomes were kept: a second run (a restart) extracts and matches nothing
    // and gives the same answers.
    let stored = walkdir::WalkDir::new(catalog.cache_dir().join("local-features"))
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.path().extension().is_some_and(|x| x == "lf"))
        .count();
    assert_eq!(stored, 29);
    let again = Reranker::new(&catalog, &model, 10).unwrap();
    let mut stats = pinpoint::locate::RerankStats::default();
    let photos = catalog.photos(&PhotoFilter::default()).unwrap();
    let locator = Locator::new(&catalog, &model.hash, Vec::new(), opts()).unwrap();
    let descriptors: std::collections::HashMap<i64, Vec<f32>> = catalog
        .descriptors(&model.hash)
        .unwrap()
        .into_iter()
        .collect();
    for photo in &photos {
        let mut m = locator
            .matches(&[descriptors[&photo.id].clone()], &|_, r| {
                r.photo_id == Some(photo.id)
            })
            .remove(0);
        again.check(&catalog, photo, &mut m, &mut stats).unwrap();
        assert!(
            m.iter().take(10).all(|m| m.inliers.is_some()),
            "{}",
            photo.path.display()
        );
    }
    assert_eq!(
        (stats.features_extracted, stats.pairs_checked),
        (0, 0),
        "{stats:?}"
    );
    assert_eq!(stats.pairs_from_catalog, 29 * 10);
    let repeated =
        visual(held_out_samples(&catalog, &model.hash, opts(), Some(&again), &cancel).unwrap());
    for (a, b) in checked.iter().zip(&repeated) {
        assert_eq!(
            (a.photo_id, a.error_m.to_bits()),
            (b.photo_id, b.error_m.to_bits())
        );
    }
}
