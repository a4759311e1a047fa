//! The `pinpoint` command line: JSON shapes, exit codes, thumbnails.

mod common;

use std::path::Path;

use common::*;

fn library_with_a_bad_file(dir: &Path) -> std::path::PathBuf {
    let lib = dir.join("lib");
    for (name, src) in gps_sample().into_iter().take(3) {
        copy_into(&src, &lib.join(name));
    }
    copy_into(
        &exif_corpus().join("ianare-exif-samples/jpg/orientation/landscape_6.jpg"),
        &lib.join("l6.jpg"),
    );
    std::fs::write(lib.join("broken.jpg"), b"not really a jpeg").unwrap();
    lib
}

#[test]
fn scan_lists_per_file_errors_and_exits_1() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.sqlite");
    let lib = library_with_a_bad_file(dir.path());
    let (code, roots) = pinpoint_json(&db, &["library", "add", lib.to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(
        roots[0]["path"],
        lib.canonicalize().unwrap().to_str().unwrap()
    );
    let (code, report) = pinpoint_json(&db, &["scan"]);
    assert_eq!(code, 1, "partial success: {report}");
    let errors = report["errors"].as_array().unwrap();
    assert_eq!(errors.len(), 1);
    assert!(errors[0]["path"].as_str().unwrap().ends_with("broken.jpg"));
    assert!(errors[0]["reason"].as_str().unwrap().contains("not a JPEG"));
    assert_eq!(report["added"], 4);

    // Human output lists the error with its path too.
    let out = pinpoint(&db, &["scan"]);
    assert_eq!(out.status.code(), Some(1));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(
        stderr.contains("broken.jpg: content is not a JPEG file"),
        "{stderr}"
    );
}

#[test]
fn photos_list_json_has_the_documented_fields_and_filters() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.sqlite");
    let lib = library_with_a_bad_file(dir.path());
    pinpoint(&db, &["library", "add", lib.to_str().unwrap(), "--scan"]);
    let (code, all) = pinpoint_json(&db, &["photos", "list"]);
    assert_eq!(code, 0);
    let all = all.as_array().unwrap();
    assert_eq!(all.len(), 4);
    for p in all {
        for key in [
            "path",
            "gps",
            "gps_source",
            "taken_at",
            "width",
            "height",
            "orientation",
            "make",
            "model",
        ] {
            assert!(p.get(key).is_some(), "missing {key} in {p}");
        }
    }
    let tagged = all
        .iter()
        .find(|p| p["path"].as_str().unwrap().ends_with("DSCN0010.jpg"))
        .unwrap();
    assert_eq!(tagged["gps_source"], "exif");
    assert!((tagged["gps"]["lat"].as_f64().unwrap() - 43.4674483333333).abs() < 1e-9);
    assert!(tagged["gps"]["alt"].is_null() || tagged["gps"]["alt"].is_number());
    assert_eq!(tagged["taken_at"], "2008-10-22T16:28:39");
    assert_eq!(
        (tagged["width"].as_u64(), tagged["height"].as_u64()),
        (Some(640), Some(480))
    );
    let untagged = all
        .iter()
        .find(|p| p["path"].as_str().unwrap().ends_with("l6.jpg"))
        .unwrap();
    assert!(untagged["gps"].is_null() && untagged["gps_source"].is_null());
    assert_eq!(untagged["orientation"], 6);

    assert_eq!(
        pinpoint_json(&db, &["photos", "list", "--tagged"])
            .1
            .as_array()
            .unwrap()
            .len(),
        3
    );
    assert_eq!(
        pinpoint_json(&db, &["photos", "list", "--untagged"])
            .1
            .as_array()
            .unwrap()
            .len(),
        1
    );
    std::fs::remove_file(lib.join("l6.jpg")).unwrap();
    pinpoint(&db, &["scan"]);
    let missing = pinpoint_json(&db, &["photos", "list", "--missing"]).1;
    assert_eq!(missing.as_array().unwrap().len(), 1);
    assert_eq!(missing[0]["status"], "missing");

    let (code, shown) = pinpoint_json(&db, &["show", lib.join("DSCN0010.jpg").to_str().unwrap()]);
    assert_eq!(code, 0);
    assert_eq!(shown["make"], "NIKON");
}

#[test]
fn usage_and_fatal_errors_exit_2() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.sqlite");
    assert_eq!(
        pinpoint(&db, &["photos", "list", "--tagged", "--untagged"])
            .status
            .code(),
        Some(2)
    );
    assert_eq!(pinpoint(&db, &["no-such-command"]).status.code(), Some(2));
    let out = pinpoint(&db, &["library", "add", "/no/such/folder"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("/no/such/folder"));
    let out = pinpoint(&db, &["scan"]);
    assert_eq!(out.status.code(), Some(2), "no roots yet");
    // A file that is not a catalog.
    let not_db = dir.path().join("not.sqlite");
    std::fs::write(&not_db, vec![b'x'; 4096]).unwrap();
    let out = pinpoint(&not_db, &["library", "list"]);
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("not.sqlite"));
}

#[test]
fn thumbnails_are_upright_sized_cached_and_regenerated_on_change() {
    let dir = tempfile::tempdir().unwrap();
    let db = dir.path().join("c.sqlite");
    let lib = library_with_a_bad_file(dir.path());
    pinpoint(&db, &["library", "add", lib.to_str().unwrap(), "--scan"]);
    let photo = lib.join("l6.jpg"); // stored 450x600 with orientation 6: upright 600x450
    let (code, t) = pinpoint_json(&db, &["thumbnail", photo.to_str().unwrap()]);
    assert_eq!(code, 0, "{t}");
    let thumb = t["thumbnail"].as_str().unwrap().to_string();
    let img = image::open(&thumb).unwrap();
    assert_eq!((img.width(), img.height()), (256, 192));
    let (_, p) = pinpoint_json(
        &db,
        &["thumbnail", photo.to_str().unwrap(), "--size", "preview"],
    );
    let preview = image::open(p["thumbnail"].as_str().unwrap()).unwrap();
    assert_eq!(
        (preview.width(), preview.height()),
        (600, 450),
        "never upscaled"
    );
    // Same request: same file, not regenerated.
    let before = std::fs::metadata(&thumb).unwrap().modified().unwrap();
    let (_, again) = pinpoint_json(&db, &["thumbnail", photo.to_str().unwrap()]);
    assert_eq!(again["thumbnail"].as_str().unwrap(), thumb);
    assert_eq!(
        std::fs::metadata(&thumb).unwrap().modified().unwrap(),
        before
    );
    // The file changes: after a scan, a new thumbnail.
    copy_into(
        &exif_corpus().join("ianare-exif-samples/jpg/orientation/landscape_1.jpg"),
        &photo,
    );
    pinpoint(&db, &["scan"]);
    let (_, changed) = pinpoint_json(&db, &["thumbnail", photo.to_str().unwrap()]);
    assert_ne!(changed["thumbnail"].as_str().unwrap(), thumb);
    // Unreadable pixels: a clear error naming the file.
    let out = pinpoint(
        &db,
        &["thumbnail", lib.join("broken.jpg").to_str().unwrap()],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&out.stderr).contains("broken.jpg"));
}
