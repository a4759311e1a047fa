//! Camera clocks read from what the photos show: a camera without GPS whose clock is off by
//! 1 h 07 min, estimated from its photos that show the same scenes as a GPS camera's, then placed
//! by time along that camera's photos.

mod common;

use std::path::Path;
use std::process::Command;

use common::*;

/// The sample library's Tuscany photos (a Nikon COOLPIX P6000 with GPS) are the "phone". The
/// second camera's photos are made from five of them: cropped to the middle 80 %, scaled, no GPS,
/// another make and model, and a clock 1 h 07 min fast. A third camera shows a Berlin street
/// no other photo shows.
#[test]
fn a_camera_clock_off_by_an_hour_is_estimated_and_its_photos_placed_by_time() {
    let dir = tempfile::tempdir().unwrap();
    let lib = dir.path().join("lib");
    let tuscany = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample-library/tuscany");
    let mut originals: Vec<_> = std::fs::read_dir(&tuscany)
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|x| x == "jpg"))
        .collect();
    originals.sort();
    for p in &originals {
        copy_into(p, &lib.join("phone").join(p.file_name().unwrap()));
    }
    let shifted = [
        "DSCN0010.jpg",
        "DSCN0021.jpg",
        "DSCN0025.jpg",
        "DSCN0029.jpg",
        "DSCN0040.jpg",
    ];
    let truth = exiftool_json(&[
        "-n",
        "-j",
        "-DateTimeOriginal",
        "-GPSLatitude",
        "-GPSLongitude",
        tuscany.to_str().unwrap(),
    ]);
    let camera_dir = lib.join("camera");
    std::fs::create_dir_all(&camera_dir).unwrap();
    let mut made = Vec::new();
    for (i, name) in shifted.iter().enumerate() {
        let img = image::open(tuscany.join(name)).unwrap();
        let (w, h) = (img.width(), img.height());
        let crop = img.crop_imm(w / 10, h / 10, w * 8 / 10, h * 8 / 10).resize(
            600,
            600,
            image::imageops::FilterType::CatmullRom,
        );
        let out = camera_dir.join(format!("IMG_{:04}.JPG", i + 1));
        crop.to_rgb8().save(&out).unwrap();
        let e = truth
            .as_array()
            .unwrap()
            .iter()
            .find(|e| e["SourceFile"].as_str().unwrap().ends_with(name))
            .unwrap();
        let taken = chrono::NaiveDateTime::parse_from_str(
            e["DateTimeOriginal"].as_str().unwrap(),
            "%Y:%m:%d %H:%M:%S",
        )
        .unwrap();
        let fast = taken + chrono::TimeDelta::seconds(67 * 60);
        exiftool_write(
            &out,
            &[
                "-Make=Canon",
                "-Model=Canon PowerShot G9",
                &format!("-DateTimeOriginal={}", fast.format("%Y:%m:%d %H:%M:%S")),
            ],
        );
        made.push((
            out,
            e["GPSLatitude"].as_f64().unwrap(),
            e["GPSLongitude"].as_f64().unwrap(),
        ));
    }
    let lone = lib.join("other/DSC00001.JPG");
    copy_into(&places().join("berlin-triplet/01.jpg"), &lone);
    exiftool_write(
        &lone,
        &[
            "-all=",
            "-Make=SONY",
            "-Model=DSC-RX100",
            "-DateTimeOriginal=2008:10:22 18:00:00",
        ],
    );

    let db = dir.path().join("c.sqlite");
    let out = pinpoint(&db, &["library", "add", lib.to_str().unwrap(), "--scan"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let out = pinpoint(&db, &["describe"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    let (code, cameras) = pinpoint_json(&db, &["cameras"]);
    assert_eq!(code, 0, "{cameras}");
    let camera = |name: &str| {
        cameras
            .as_array()
            .unwrap()
            .iter()
            .find(|c| c["camera"] == name)
            .unwrap_or_else(|| panic!("{name} in {cameras}"))
            .clone()
    };
    let canon = camera("Canon PowerShot G9");
    assert_eq!(
        (canon["photos"].as_u64(), canon["tagged"].as_u64()),
        (Some(5), Some(0))
    );
    let offset = canon["offset_s"].as_f64().expect("an estimate");
    eprintln!(
        "estimated offset {offset} s, spread {} s, from {} pairs",
        canon["spread_s"],
        canon["pairs"].as_array().map_or(0, |p| p.len())
    );
    assert!((offset + 4020.0).abs() <= 60.0, "{canon}");
    assert_eq!(canon["source"], "estimated");
    let pairs = canon["pairs"].as_array().unwrap();
    assert!(pairs.len() >= 3, "{canon}");
    for p in pairs {
        assert!(p["photo"].as_str().unwrap().contains("IMG_"), "{p}");
        assert!(p["reference"].as_str().unwrap().contains("DSCN"), "{p}");
        assert!(p["seconds"].as_f64().is_some(), "{p}");
    }
    assert!(canon["spread_s"].as_f64().unwrap() <= 60.0, "{canon}");
    let nikon = camera("NIKON COOLPIX P6000");
    assert!(
        nikon["offset_s"].is_null() && nikon["source"].is_null(),
        "{nikon}"
    );
    let sony = camera("SONY DSC-RX100");
    assert!(
        sony["offset_s"].is_null() && sony["source"].is_null(),
        "{sony}"
    );
    assert!(
        sony["note"].as_str().unwrap().contains("no verified pair"),
        "{sony}"
    );

    // The camera's photos are placed by time along the phone's, within 50 m.
    let (code, proposals) = pinpoint_json(&db, &["propose"]);
    assert_eq!(code, 0, "{proposals}");
    for (path, lat, lon) in &made {
        let p = proposals
            .as_array()
            .unwrap()
            .iter()
            .find(|p| Path::new(p["path"].as_str().unwrap()) == path)
            .unwrap_or_else(|| panic!("{} proposed: {proposals}", path.display()));
        let error = pinpoint::geo::haversine_m(
            *lat,
            *lon,
            p["lat"].as_f64().unwrap(),
            p["lon"].as_f64().unwrap(),
        );
        assert!(error <= 50.0, "{}: {error:.0} m: {p}", path.display());
        let sources: Vec<&str> = p["sources"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap())
            .collect();
        assert!(sources.contains(&"time"), "{}: {p}", path.display());
    }

    // The user confirms a round figure; it is kept over the estimate.
    let out = pinpoint(
        &db,
        &["cameras", "set-offset", "Canon PowerShot G9", "-1h07m"],
    );
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    let (_, cameras) = pinpoint_json(&db, &["cameras"]);
    let canon = cameras
        .as_array()
        .unwrap()
        .iter()
        .find(|c| c["camera"] == "Canon PowerShot G9")
        .unwrap();
    assert_eq!(
        (canon["offset_s"].as_f64(), canon["source"].as_str()),
        (Some(-4020.0), Some("set"))
    );
    let out = pinpoint(&db, &["cameras", "set-offset", "Leica M3", "5m"]);
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("Leica M3"));
    let out = pinpoint(
        &db,
        &["cameras", "set-offset", "Canon PowerShot G9", "soon"],
    );
    assert!(String::from_utf8_lossy(&out.stderr).contains("is not a clock offset"));
}

fn exiftool_write(path: &Path, args: &[&str]) {
    let out = Command::new("exiftool")
        .arg("-q")
        .arg("-overwrite_original")
        .args(args)
        .arg(path)
        .output()
        .expect("run exiftool");
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
