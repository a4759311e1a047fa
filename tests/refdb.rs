//! Reference databases end to end: build from shared photos, publish, install over a real HTTP
//! server on 127.0.0.1 (resumed after an interruption), and every way an install can go wrong
//! ending installed or with a clear error and nothing half-installed.

mod common;

use std::path::{Path, PathBuf};

use common::*;

/// A CSV of the Berlin photos 01 and 02 and five Sacre-Coeur photos placed at the basilica; the
/// first of those is a copy whose name holds a comma and a quote (the CSV quotes it).
fn sources_csv(dir: &Path) -> PathBuf {
    let mut rows: Vec<Vec<String>> = Vec::new();
    for n in ["01", "02"] {
        let p = places().join(format!("berlin-triplet/{n}.jpg"));
        let md = pinpoint::library::read_photo_metadata(&p, None).unwrap();
        let l = md.location.unwrap().point;
        rows.push(vec![
            p.display().to_string(),
            l.lat.to_string(),
            l.lon.to_string(),
            format!("berlin/{n}"),
            "CC BY-SA (Mapillary)".into(),
        ]);
    }
    let mut sc: Vec<PathBuf> = std::fs::read_dir(places().join("sacre-coeur"))
        .unwrap()
        .map(|e| e.unwrap().path())
        .filter(|p| p.extension().is_some_and(|e| e == "jpg"))
        .collect();
    sc.sort();
    for (i, p) in sc.iter().take(5).enumerate() {
        let name = p.file_name().unwrap().to_string_lossy().into_owned();
        let path = if i == 0 {
            let tricky = dir.join(format!(r#"Sacre-Coeur, "the dome" {name}"#));
            copy_into(p, &tricky);
            tricky
        } else {
            p.clone()
        };
        rows.push(vec![
            path.display().to_string(),
            "48.88671".into(),
            "2.34305".into(),
            name,
            "Flickr CC".into(),
        ]);
    }
    let path = dir.join("sources.csv");
    write_csv(
        &path,
        &["path", "lat", "lon", "source_id", "licence"],
        &rows,
    );
    path
}

fn build_db(dir: &Path, name: &str, extra: &[&str]) -> PathBuf {
    let out = dir.join(format!("{name}.pinpointdb"));
    let db = dir.join("builder.sqlite");
    let csv = sources_csv(dir);
    let mut args = vec![
        "refdb",
        "build",
        "--csv",
        csv.to_str().unwrap(),
        "--name",
        name,
        "--out",
        out.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    let (code, r) = pinpoint_json(&db, &args);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["references"], 7);
    assert_eq!(r["skipped"], serde_json::json!([]), "{r}");
    out
}

#[test]
fn install_over_http_resumes_and_proposals_use_the_database() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("www");
    std::fs::create_dir(&served).unwrap();
    let file = build_db(dir.path(), "paris-berlin", &[]);
    std::fs::copy(&file, served.join("paris-berlin.pinpointdb")).unwrap();
    let server = HttpServer::serve(&served);
    let (code, _) = pinpoint_json(
        dir.path().join("x.sqlite").as_path(),
        &[
            "refdb",
            "publish",
            served.join("paris-berlin.pinpointdb").to_str().unwrap(),
            "--base-url",
            &server.base,
            "--out",
            served.join("catalog.json").to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0);
    let catalog_url = format!("{}/catalog.json", server.base);

    // The user's library: one Berlin photo without GPS (only the database covers it) and Tuscany.
    let lib = dir.path().join("lib");
    copy_into(
        &places().join("berlin-triplet/03.jpg"),
        &lib.join("berlin03.jpg"),
    );
    for (name, src) in gps_sample().into_iter().take(4) {
        copy_into(&src, &lib.join(name));
    }
    let db = dir.path().join("c.sqlite");
    pinpoint(&db, &["library", "add", lib.to_str().unwrap(), "--scan"]);
    pinpoint(
        &db,
        &["tag", "clear", lib.join("berlin03.jpg").to_str().unwrap()],
    );

    let (code, offered) =
        pinpoint_json(&db, &["refdb", "available", "--catalog-url", &catalog_url]);
    assert_eq!(code, 0);
    assert_eq!(offered[0]["name"], "paris-berlin");
    assert_eq!(offered[0]["count"], 7);

    // The first download is cut half way: a clear error, nothing installed.
    let size = std::fs::metadata(&file).unwrap().len() as usize;
    server.cut_next_after(size / 2);
    let out = pinpoint(
        &db,
        &[
            "refdb",
            "install",
            "paris-berlin",
            "--catalog-url",
            &catalog_url,
        ],
    );
    assert_eq!(out.status.code(), Some(2));
    assert!(
        String::from_utf8_lossy(&out.stderr).contains("resume"),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    nothing_half_installed(&db);
    // Again: it resumes with a Range request and installs.
    let (code, installed) = pinpoint_json(
        &db,
        &[
            "refdb",
            "install",
            "paris-berlin",
            "--catalog-url",
            &catalog_url,
        ],
    );
    assert_eq!(code, 0, "{installed}");
    assert!(
        server
            .requests
            .lock()
            .unwrap()
            .iter()
            .any(|r| r.contains("range=Some(")),
        "{:?}",
        server.requests.lock().unwrap()
    );
    assert_eq!(installed["installed"]["count"], 7);

    // A proposal for the photo only the database covers lands where the database says.
    assert!(pinpoint(&db, &["describe"]).status.success());
    let (code, proposals) = pinpoint_json(&db, &["propose"]);
    assert_eq!(code, 0, "{proposals}");
    let p = proposals
        .as_array()
        .unwrap()
        .iter()
        .find(|p| p["path"].as_str().unwrap().ends_with("berlin03.jpg"))
        .expect("a proposal for berlin03");
    let truth =
        pinpoint::library::read_photo_metadata(&places().join("berlin-triplet/03.jpg"), None)
            .unwrap()
            .location
            .unwrap()
            .point;
    let at = pinpoint::geo::GeoPoint::new(p["lat"].as_f64().unwrap(), p["lon"].as_f64().unwrap());
    assert!(at.distance_m(&truth) < 50.0, "{p}");
    let ev = &p["evidence"][0];
    assert_eq!(ev["source"], "paris-berlin");
    assert!(ev["path_or_id"].as_str().unwrap().starts_with("berlin/"));
    assert!(
        ev["attribution"].as_str().unwrap().contains("Mapillary"),
        "{ev}"
    );
    // Its preview, for the review screen: a real JPEG of about 320 px.
    let preview = dir.path().join("preview.jpg");
    let ref_id = ev["ref_id"].as_i64().unwrap().to_string();
    assert!(pinpoint(
        &db,
        &[
            "refdb",
            "preview",
            "paris-berlin",
            &ref_id,
            "--out",
            preview.to_str().unwrap()
        ]
    )
    .status
    .success());
    let img = image::open(&preview).unwrap();
    assert_eq!(img.width().max(img.height()), 320);

    // Disable, enable, remove.
    assert!(pinpoint(&db, &["refdb", "disable", "paris-berlin"])
        .status
        .success());
    let (_, proposals) = pinpoint_json(&db, &["propose"]);
    assert!(proposals
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["evidence"][0]["source"] != "paris-berlin"));
    assert!(pinpoint(&db, &["refdb", "remove", "paris-berlin"])
        .status
        .success());
    nothing_half_installed(&db);
}

fn install_err(db: &Path, args: &[&str]) -> String {
    let out = pinpoint(db, args);
    assert_eq!(
        out.status.code(),
        Some(2),
        "expected a failure: {}",
        String::from_utf8_lossy(&out.stdout)
    );
    let err = String::from_utf8_lossy(&out.stderr).into_owned();
    assert!(!err.trim().is_empty());
    nothing_half_installed(db);
    err
}

#[test]
fn bad_downloads_and_bad_files_are_refused_cleanly() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("www");
    std::fs::create_dir(&served).unwrap();
    let good = build_db(dir.path(), "good", &[]);
    let bytes = std::fs::read(&good).unwrap();
    std::fs::write(served.join("good.pinpointdb"), &bytes).unwrap();
    std::fs::write(
        served.join("truncated.pinpointdb"),
        &bytes[..bytes.len() / 2],
    )
    .unwrap();
    std::fs::write(
        served.join("notadb.pinpointdb"),
        b"this is a text file, not a database",
    )
    .unwrap();
    // A manifest claiming an absurd size.
    let absurd = dir.path().join("absurd.pinpointdb");
    std::fs::copy(&good, &absurd).unwrap();
    rusqlite::Connection::open(&absurd)
        .unwrap()
        .execute(
            "UPDATE manifest SET value = '99999999999' WHERE key = 'count'",
            [],
        )
        .unwrap();
    let server = HttpServer::serve(&served);
    let db = dir.path().join("c.sqlite");
    Catalog_open(&db);

    let e = install_err(
        &db,
        &[
            "refdb",
            "install",
            &format!("{}/missing.pinpointdb", server.base),
        ],
    );
    assert!(e.contains("404"), "{e}");
    let e = install_err(
        &db,
        &[
            "refdb",
            "install",
            &format!("{}/good.pinpointdb", server.base),
            "--sha256",
            &"0".repeat(64),
        ],
    );
    assert!(e.contains("SHA-256"), "{e}");
    let e = install_err(
        &db,
        &[
            "refdb",
            "install",
            &format!("{}/truncated.pinpointdb", server.base),
        ],
    );
    assert!(e.contains("not a usable reference database"), "{e}");
    let e = install_err(
        &db,
        &[
            "refdb",
            "install",
            &format!("{}/notadb.pinpointdb", server.base),
        ],
    );
    assert!(e.contains("not a usable reference database"), "{e}");
    let e = install_err(&db, &["refdb", "install", absurd.to_str().unwrap()]);
    assert!(e.contains("references"), "{e}");
    // The good one still installs after all that.
    let (code, r) = pinpoint_json(
        &db,
        &[
            "refdb",
            "install",
            &format!("{}/good.pinpointdb", server.base),
        ],
    );
    assert_eq!(code, 0, "{r}");
}

#[allow(non_snake_case)]
fn Catalog_open(db: &Path) {
    pinpoint::Catalog::open(db).unwrap();
}

/// A model that differs from the built-in one (its whitening mean moved a little).
fn other_model(dir: &Path) -> PathBuf {
    use candle_core::{Device, Tensor};
    let src = pinpoint::model::default_model_path();
    let mut t =
        candle_core::safetensors::load(src.join("model.safetensors"), &Device::Cpu).unwrap();
    let mean = t["whiten.mean"].to_dtype(candle_core::DType::F32).unwrap();
    t.insert(
        "whiten.mean".into(),
        (mean
            + Tensor::new(1e-3f32, &Device::Cpu)
                .unwrap()
                .broadcast_as(32768)
                .unwrap())
        .unwrap(),
    );
    let out = dir.join("other.safetensors");
    candle_core::safetensors::save(&t, &out).unwrap();
    out
}

#[test]
fn databases_of_another_model_are_described_again_or_refused() {
    let dir = tempfile::tempdir().unwrap();
    let with_images = build_db(dir.path(), "imgs", &["--with-images"]);
    let plain = dir.path().join("plain.pinpointdb");
    std::fs::rename(build_db(dir.path(), "plain", &[]), &plain).unwrap();
    let other = other_model(dir.path());
    let db = dir.path().join("c.sqlite");
    Catalog_open(&db);
    let e = install_err(
        &db,
        &[
            "refdb",
            "install",
            plain.to_str().unwrap(),
            "--model",
            other.to_str().unwrap(),
        ],
    );
    assert!(
        e.contains("described with model") && e.contains("no images"),
        "{e}"
    );
    let (code, r) = pinpoint_json(
        &db,
        &[
            "refdb",
            "install",
            with_images.to_str().unwrap(),
            "--model",
            other.to_str().unwrap(),
        ],
    );
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["redescribed"], true);
    let other_hash = pinpoint::model::sha256_file(&other).unwrap();
    assert_eq!(r["installed"]["model_hash"], other_hash.as_str());
}

/// `model use` switches the catalog's model (as `train` does when it adopts one); installed
/// databases of the previous model are then described again by `refdb redescribe`, keeping
/// whether they were enabled.
#[test]
fn switching_models_redescribes_installed_databases() {
    let dir = tempfile::tempdir().unwrap();
    let with_images = build_db(dir.path(), "imgs", &["--with-images"]);
    let db = dir.path().join("c.sqlite");
    Catalog_open(&db);
    let (code, r) = pinpoint_json(&db, &["refdb", "install", with_images.to_str().unwrap()]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r["redescribed"], false);
    assert_eq!(
        pinpoint(&db, &["refdb", "disable", "imgs"]).status.code(),
        Some(0)
    );
    // Nothing to do while the model is the one it was described with.
    let (_, none) = pinpoint_json(&db, &["refdb", "redescribe"]);
    assert_eq!(none, serde_json::json!([]));

    let other = other_model(dir.path());
    let other_hash = pinpoint::model::sha256_file(&other).unwrap();
    let (code, u) = pinpoint_json(&db, &["model", "use", other.to_str().unwrap()]);
    assert_eq!(code, 0, "{u}");
    // Commands without --model now run the catalog's model.
    let (_, info) = pinpoint_json(&db, &["model", "info"]);
    assert_eq!(info["sha256"], other_hash.as_str());

    let (code, r) = pinpoint_json(&db, &["refdb", "redescribe"]);
    assert_eq!(code, 0, "{r}");
    assert_eq!(r.as_array().unwrap().len(), 1, "{r}");
    assert_eq!(r[0]["redescribed"], true);
    let (_, list) = pinpoint_json(&db, &["refdb", "list"]);
    assert_eq!(list[0]["model_hash"], other_hash.as_str());
    assert_eq!(list[0]["enabled"], false, "disabled stays disabled");
    let (_, again) = pinpoint_json(&db, &["refdb", "redescribe"]);
    assert_eq!(again, serde_json::json!([]));
    let missing = pinpoint(&db, &["refdb", "redescribe", "nope"]);
    assert_eq!(missing.status.code(), Some(2));
    assert!(String::from_utf8_lossy(&missing.stderr).contains("nope"));

    // A chosen model that is gone is an error naming it, not a silent switch.
    std::fs::remove_file(&other).unwrap();
    let gone = pinpoint(&db, &["model", "info"]);
    assert_eq!(gone.status.code(), Some(2));
    let err = String::from_utf8_lossy(&gone.stderr);
    assert!(
        err.contains("other.safetensors") && err.contains("model use builtin"),
        "{err}"
    );
    assert_eq!(
        pinpoint(&db, &["model", "use", "builtin"]).status.code(),
        Some(0)
    );
    let (_, info) = pinpoint_json(&db, &["model", "info"]);
    assert_ne!(info["sha256"], other_hash.as_str());
}

#[test]
fn a_full_disk_installs_nothing() {
    let dir = tempfile::tempdir().unwrap();
    let good = build_db(dir.path(), "good", &[]);
    let small = dir.path().join("small");
    std::fs::create_dir(&small).unwrap();
    let size = std::fs::metadata(&good).unwrap().len();
    // Room for the catalog and one copy of the database, not two (staging copy + working copy).
    let catalog_kb = 200;
    let kb = (size + size / 3) / 1024 + catalog_kb;
    let mounted = std::process::Command::new("mount")
        .args(["-t", "tmpfs", "-o", &format!("size={kb}k"), "tmpfs"])
        .arg(&small)
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
    let _g = Unmount(small.clone(), mounted);
    let db = small.join("c.sqlite");
    Catalog_open(&db);
    // Over HTTP: the download fits, the working copy beside it does not.
    let served = dir.path().join("www");
    std::fs::create_dir(&served).unwrap();
    std::fs::copy(&good, served.join("good.pinpointdb")).unwrap();
    let server = HttpServer::serve(&served);
    let install = format!(
        "{} --catalog {} --quiet refdb install {}/good.pinpointdb",
        env!("CARGO_BIN_EXE_pinpoint"),
        db.display(),
        server.base
    );
    // Without permission to mount, a file size limit makes the download fail instead.
    let script = if mounted {
        install
    } else {
        format!("ulimit -f {}; {install}", size / 1024)
    };
    let out = std::process::Command::new("sh")
        .arg("-c")
        .arg(script)
        .output()
        .unwrap();
    assert_ne!(out.status.code(), Some(0), "installed on a full disk?");
    let err = String::from_utf8_lossy(&out.stderr);
    assert!(!err.trim().is_empty());
    if mounted {
        assert!(err.contains("No space left"), "{err}");
    }
    let refdb_dir = PathBuf::from(format!("{}.refdbs", db.display()));
    let leftovers: Vec<String> = std::fs::read_dir(&refdb_dir)
        .map(|r| {
            r.filter_map(|e| e.ok())
                .map(|e| e.file_name().to_string_lossy().into_owned())
                .filter(|n| n != ".staging")
                .collect()
        })
        .unwrap_or_default();
    assert!(leftovers.is_empty(), "{leftovers:?}");
}
