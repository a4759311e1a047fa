//! The desktop shell's commands through Tauri's IPC with the mock runtime, on a real catalog and
//! real photos (the bundled sample library): adding a library and scanning it as a job, browsing,
//! the map, places, the image protocol, placing a photo by hand and undoing it, and bad input.

use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde_json::{json, Value};
use tauri::ipc::{CallbackFn, InvokeBody};
use tauri::test::{
    get_ipc_response, mock_builder, mock_context, noop_assets, MockRuntime, INVOKE_KEY,
};
use tauri::webview::InvokeRequest;
use tauri::WebviewWindow;

struct App {
    _app: tauri::App<MockRuntime>,
    window: WebviewWindow<MockRuntime>,
    catalog: PathBuf,
    library: PathBuf,
    _dir: tempfile::TempDir,
}

/// A copy of the bundled sample library (writable, as a user's photos are) and a fresh catalog.
fn app() -> App {
    app_with(|_, _| {})
}

/// As [`app`], with `before(catalog, library)` run on the catalog before the app opens it.
fn app_with(before: impl FnOnce(&Path, &Path)) -> App {
    // Pausing a describe job needs describing to take real time: no answers from the test run's
    // content cache in this process (every test comes here before the engine reads the variable).
    static NO_CONTENT_CACHE: std::sync::Once = std::sync::Once::new();
    NO_CONTENT_CACHE
        .call_once(|| std::env::remove_var(pinpoint::model::content_cache::CONTENT_CACHE_VAR));
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("Pictures");
    copy_sample_library(&library);
    let catalog = dir.path().join("catalog.sqlite");
    before(&catalog, &library);
    let app = pinpoint_desktop::configure(mock_builder())
        .build(mock_context(noop_assets()))
        .unwrap();
    let state = pinpoint_desktop::open_state(app.handle(), catalog.clone()).unwrap();
    tauri::Manager::manage(&app, state);
    let window = tauri::WebviewWindowBuilder::new(&app, "main", Default::default())
        .build()
        .unwrap();
    App {
        _app: app,
        window,
        catalog,
        library,
        _dir: dir,
    }
}

/// A writable copy of the bundled sample library at `library`.
fn copy_sample_library(library: &Path) {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("../assets/sample-library");
    for entry in walk(&sample) {
        let rel = entry.strip_prefix(&sample).unwrap();
        let dst = library.join(rel);
        std::fs::create_dir_all(dst.parent().unwrap()).unwrap();
        std::fs::copy(&entry, &dst).unwrap();
    }
}

fn walk(dir: &Path) -> Vec<PathBuf> {
    walkdir::WalkDir::new(dir)
        .into_iter()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .collect()
}

impl App {
    fn call(&self, cmd: &str, args: Value) -> Result<Value, Value> {
        let request = InvokeRequest {
            cmd: cmd.into(),
            callback: CallbackFn(0),
            error: CallbackFn(1),
            url: "tauri://localhost".parse().unwrap(),
            body: InvokeBody::Json(args),
            headers: Default::default(),
            invoke_key: INVOKE_KEY.to_string(),
        };
        get_ipc_response(&self.window, request).map(|b| b.deserialize::<Value>().unwrap())
    }

    fn ok(&self, cmd: &str, args: Value) -> Value {
        self.call(cmd, args.clone())
            .unwrap_or_else(|e| panic!("{cmd} {args} failed: {e}"))
    }

    /// Waits for a job to reach one of `states`.
    fn wait_state(&self, id: i64, states: &[&str]) -> Value {
        let start = Instant::now();
        loop {
            let job = self
                .ok("jobs", json!({}))
                .as_array()
                .unwrap()
                .iter()
                .find(|j| j["id"] == id)
                .cloned()
                .expect("the job is listed");
            if states.contains(&job["state"].as_str().unwrap()) {
                return job;
            }
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "job {id} never got to {states:?}: {job}"
            );
            std::thread::sleep(Duration::from_millis(20));
        }
    }

    /// Waits for a job to reach a final state.
    fn wait_job(&self, id: i64) -> Value {
        let start = Instant::now();
        loop {
            let jobs = self.ok("jobs", json!({}));
            let job = jobs
                .as_array()
                .unwrap()
                .iter()
                .find(|j| j["id"] == id)
                .cloned()
                .expect("the job is listed");
            if ["done", "failed", "cancelled"].contains(&job["state"].as_str().unwrap()) {
                return job;
            }
            assert!(
                start.elapsed() < Duration::from_secs(300),
                "job {id} did not end: {job}"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
    }

    fn state(&self) -> tauri::State<'_, pinpoint_desktop::state::AppState> {
        tauri::Manager::state(&self._app)
    }

    /// The user picks `folder` in the native folder dialog (`pickFolder`): the mock runtime has
    /// no native dialogs, so the choice the dialog would return is recorded as `pickFolder` does.
    fn pick_folder(&self, folder: &Path) {
        self.state().choose_folder(folder).unwrap();
    }

    fn add_library(&self) -> Value {
        self.pick_folder(&self.library);
        let added = self.ok("addRoot", json!({ "path": self.library }));
        let job = self.wait_job(added["job"]["id"].as_i64().unwrap());
        assert_eq!(job["state"], "done", "{job}");
        job
    }
}

#[test]
fn adding_a_folder_scans_it_as_a_job_and_the_views_show_it() {
    let app = app();
    let job = app.add_library();
    assert_eq!(job["kind"], "scan");
    assert!(job["message"].as_str().unwrap().contains("17 new"), "{job}");
    assert_eq!(job["errors"], json!([]));

    let overview = app.ok("overview", json!({}));
    assert_eq!(overview["roots"].as_array().unwrap().len(), 1);
    let counts = &overview["counts"];
    // 9 Tuscany + 3 Berlin photos carry EXIF GPS, 2 of the 5 Sacré-Cœur photos an XMP sidecar location.
    assert_eq!(counts["total"], 17, "{counts}");
    assert_eq!(counts["tagged"], 14, "{counts}");
    assert_eq!(counts["untagged"], 3, "{counts}");
    assert_eq!(overview["writeMode"], "embed");
    assert_eq!(overview["tiles"]["enabled"], false);

    // The grid's pages add up to the total, newest first.
    let page1 = app.ok(
        "listPhotos",
        json!({ "filter": { "kind": "all" }, "offset": 0, "limit": 10 }),
    );
    let page2 = app.ok(
        "listPhotos",
        json!({ "filter": { "kind": "all" }, "offset": 10, "limit": 10 }),
    );
    assert_eq!(page1["total"], 17);
    assert_eq!(page1["photos"].as_array().unwrap().len(), 10);
    assert_eq!(page2["photos"].as_array().unwrap().len(), 7);
    let dates: Vec<String> = page1["photos"]
        .as_array()
        .unwrap()
        .iter()
        .filter_map(|p| p["takenAt"].as_str().map(str::to_string))
        .collect();
    assert!(dates.windows(2).all(|w| w[0] >= w[1]), "{dates:?}");
    let untagged = app.ok("listPhotos", json!({ "filter": { "kind": "untagged" } }));
    assert_eq!(untagged["total"], 3);

    // Settings' camera clocks: the Nikon records GPS (its photos are the references); an offset
    // typed for it is stored as set, and nonsense or an unknown camera is refused with a reason.
    let cameras = app.ok("cameras", json!({}));
    assert_eq!(cameras.as_array().unwrap().len(), 1, "{cameras}");
    assert_eq!(cameras[0]["camera"], "NIKON COOLPIX P6000");
    assert_eq!(
        (cameras[0]["photos"].as_u64(), cameras[0]["tagged"].as_u64()),
        (Some(9), Some(9))
    );
    assert!(
        cameras[0]["note"].as_str().unwrap().contains("records GPS"),
        "{cameras}"
    );
    app.ok(
        "setCameraOffset",
        json!({ "camera": "NIKON COOLPIX P6000", "offset": "-1h07m" }),
    );
    let cameras = app.ok("cameras", json!({}));
    assert_eq!(
        (
            cameras[0]["offsetS"].as_f64(),
            cameras[0]["source"].as_str()
        ),
        (Some(-4020.0), Some("set"))
    );
    let e = app
        .call(
            "setCameraOffset",
            json!({ "camera": "NIKON COOLPIX P6000", "offset": "soon" }),
        )
        .unwrap_err();
    assert!(e.as_str().unwrap().contains("not a clock offset"), "{e}");
    let e = app
        .call(
            "setCameraOffset",
            json!({ "camera": "Leica M3", "offset": "5m" }),
        )
        .unwrap_err();
    assert!(e.as_str().unwrap().contains("Leica M3"), "{e}");
    app.ok(
        "setCameraOffset",
        json!({ "camera": "NIKON COOLPIX P6000", "offset": null }),
    );
    assert!(app.ok("cameras", json!({}))[0]["offsetS"].is_null());
    let sidecar = app.ok(
        "listPhotos",
        json!({ "filter": { "kind": "tagged", "source": "sidecar" } }),
    );
    assert_eq!(sidecar["total"], 2);

    // The map gets every located photo.
    let points = app.ok("mapPoints", json!({}));
    assert_eq!(points["ids"].as_array().unwrap().len(), 14);
    assert_eq!(points["lats"].as_array().unwrap().len(), 14);

    // Places: Italy (Tuscany), Germany (Berlin), France (Paris), by offline reverse geocoding.
    let places = app.ok("places", json!({}));
    let countries: Vec<(&str, u64)> = places
        .as_array()
        .unwrap()
        .iter()
        .map(|c| (c["cc"].as_str().unwrap(), c["count"].as_u64().unwrap()))
        .collect();
    assert_eq!(countries, vec![("IT", 9), ("DE", 3), ("FR", 2)]);
    let berlin = app.ok(
        "listPhotos",
        json!({ "filter": { "kind": "all", "place": { "cc": "DE", "region": "Berlin", "city": null } } }),
    );
    assert_eq!(berlin["total"], 3, "{berlin}");

    // A photo's detail, and its thumbnail through the image protocol.
    let first = &page1["photos"][0];
    let id = first["id"].as_i64().unwrap();
    let detail = app.ok("photoDetail", json!({ "id": id }));
    assert_eq!(detail["id"], id);
    assert!(detail["width"].as_u64().unwrap() > 0);
    let images = parking_lot::Mutex::new(pinpoint::Catalog::open(&app.catalog).unwrap());
    let (status, kind, body) =
        pinpoint_desktop::protocol::serve(&images, &format!("/thumb/{id}/grid"));
    assert_eq!(status, 200);
    assert_eq!(kind, "image/jpeg");
    assert_eq!(&body[..2], &[0xFF, 0xD8]);
    let img = image_size(&body);
    assert_eq!(img.0.max(img.1), 256, "{img:?}");
    let (status, _, _) = pinpoint_desktop::protocol::serve(&images, "/thumb/999999/grid");
    assert_eq!(status, 404);
    let (status, _, _) = pinpoint_desktop::protocol::serve(&images, "/../../etc/passwd");
    assert_eq!(status, 404);

    // What the model looks at: the built-in model has no CRN, so no heat map, and the reason.
    let overview = app.ok("overview", json!({}));
    assert_eq!(overview["model"]["crn"], false, "{overview}");
    let builtin = pinpoint_desktop::state::LazyModel::new(pinpoint::model::default_model_path());
    let (status, _, body) =
        pinpoint_desktop::protocol::explain(&images, &builtin, &format!("/explain/{id}"));
    assert_eq!(status, 404);
    assert!(String::from_utf8_lossy(&body).contains("no CRN"));
    // A model with CRN (the built-in one plus a CRN, as `train` makes): a PNG heat map.
    let with_crn = app.catalog.with_file_name("with-crn.safetensors");
    let mut tensors = candle_core::safetensors::load(
        builtin.path().join("model.safetensors"),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    for (name, k, out) in pinpoint::model::crn::FILTERS {
        let w: Vec<f32> = (0..out * 512 * k * k)
            .map(|i| 0.02 * (i as f32 * 0.7).sin())
            .collect();
        tensors.insert(
            format!("aggregation.crn.{name}.weight"),
            candle_core::Tensor::from_vec(w, (out, 512, k, k), &candle_core::Device::Cpu).unwrap(),
        );
        tensors.insert(
            format!("aggregation.crn.{name}.bias"),
            candle_core::Tensor::zeros(out, candle_core::DType::F32, &candle_core::Device::Cpu)
                .unwrap(),
        );
    }
    tensors.insert(
        "aggregation.crn.acc_w.bias".into(),
        candle_core::Tensor::ones(1, candle_core::DType::F32, &candle_core::Device::Cpu).unwrap(),
    );
    candle_core::safetensors::save(&tensors, &with_crn).unwrap();
    let crn = pinpoint_desktop::state::LazyModel::new(with_crn);
    let (status, kind, body) =
        pinpoint_desktop::protocol::explain(&images, &crn, &format!("/explain/{id}"));
    assert_eq!(status, 200, "{}", String::from_utf8_lossy(&body));
    assert_eq!(kind, "image/png");
    assert_eq!(&body[1..4], b"PNG");
    let (status, _, _) = pinpoint_desktop::protocol::explain(&images, &crn, "/explain/999999");
    assert_eq!(status, 404);
    let (status, _, _) = pinpoint_desktop::protocol::explain(&images, &crn, "/explain/../x");
    assert_eq!(status, 400);
}

fn image_size(jpeg: &[u8]) -> (u32, u32) {
    // SOF0/SOF2 marker: FF C0|C2, length, precision, height, width.
    let mut i = 2;
    while i + 9 < jpeg.len() {
        if jpeg[i] == 0xFF && (jpeg[i + 1] == 0xC0 || jpeg[i + 1] == 0xC2) {
            let h = u16::from_be_bytes([jpeg[i + 5], jpeg[i + 6]]) as u32;
            let w = u16::from_be_bytes([jpeg[i + 7], jpeg[i + 8]]) as u32;
            return (w, h);
        }
        let len = u16::from_be_bytes([jpeg[i + 2], jpeg[i + 3]]) as usize;
        i += 2 + len;
    }
    panic!("no frame header");
}

#[test]
fn placing_photos_by_hand_writes_them_and_undo_restores_them() {
    let app = app();
    app.add_library();
    // A Tuscany photo (EXIF: the new position goes into the file) moved to Paris, and an untagged
    // Sacré-Cœur photo (no EXIF block: the position goes into a new XMP sidecar), in one batch.
    let tuscany = app.ok("listPhotos", json!({ "filter": { "kind": "all", "place": { "cc": "IT", "region": null, "city": null } }, "limit": 1 }));
    let untagged = app.ok(
        "listPhotos",
        json!({ "filter": { "kind": "untagged" }, "limit": 1 }),
    );
    let (t, u) = (&tuscany["photos"][0], &untagged["photos"][0]);
    let t_path = PathBuf::from(t["path"].as_str().unwrap());
    let u_path = PathBuf::from(u["path"].as_str().unwrap());
    let u_sidecar = PathBuf::from(format!("{}.xmp", u_path.display()));
    let t_before = std::fs::read(&t_path).unwrap();
    let u_before = std::fs::read(&u_path).unwrap();
    assert!(!u_sidecar.exists());

    let r = app.ok(
        "setLocation",
        json!({ "photoIds": [t["id"], u["id"]], "lat": 48.88671, "lon": 2.34305 }),
    );
    let batch = r["batchId"].as_i64().unwrap();
    assert_eq!(r["written"], 2, "{r}");
    assert!(
        std::fs::read(&t_path).unwrap() != t_before,
        "the position went into the Tuscany file"
    );
    let gps = pinpoint::library::read_photo_metadata(&t_path, None)
        .unwrap()
        .location
        .expect("GPS read back from the file")
        .point;
    assert!(
        (gps.lat - 48.88671).abs() < 1e-7 && (gps.lon - 2.34305).abs() < 1e-7,
        "{gps:?}"
    );
    assert!(
        std::fs::read(&u_path).unwrap() == u_before,
        "a photo without EXIF is not rewritten"
    );
    let gps = pinpoint::library::read_photo_metadata(&u_path, Some(&u_sidecar))
        .unwrap()
        .location
        .expect("GPS read back from the sidecar")
        .point;
    assert!(
        (gps.lat - 48.88671).abs() < 1e-7 && (gps.lon - 2.34305).abs() < 1e-7,
        "{gps:?}"
    );
    for id in [&t["id"], &u["id"]] {
        let detail = app.ok("photoDetail", json!({ "id": id }));
        assert_eq!(detail["source"], "user");
        assert_eq!(detail["place"]["cc"], "FR");
    }

    let history = app.ok("history", json!({ "limit": 5 }));
    assert_eq!(history[0]["id"], batch);
    assert_eq!(history[0]["edits"].as_array().unwrap().len(), 2);

    let undone = app.ok("undo", json!({ "batchId": null }));
    assert_eq!(undone["restored"], 2);
    assert!(
        std::fs::read(&t_path).unwrap() == t_before,
        "undo restores the original bytes"
    );
    assert!(!u_sidecar.exists(), "undo removes the sidecar it created");
    assert_eq!(
        app.ok("photoDetail", json!({ "id": u["id"] }))["lat"],
        Value::Null
    );
    assert_eq!(
        app.ok("photoDetail", json!({ "id": t["id"] }))["place"]["cc"],
        "IT"
    );
}

#[test]
fn bad_requests_are_refused_with_a_reason_and_change_nothing() {
    let app = app();
    app.add_library();
    let untagged = app.ok("listPhotos", json!({ "filter": { "kind": "untagged" } }));
    let photo = &untagged["photos"][0];
    let path = PathBuf::from(photo["path"].as_str().unwrap());
    let before = std::fs::read(&path).unwrap();

    let e = app
        .call(
            "setLocation",
            json!({ "photoIds": [photo["id"]], "lat": 91.0, "lon": 2.0 }),
        )
        .unwrap_err();
    assert!(e.as_str().unwrap().contains("latitude"), "{e}");
    assert_eq!(std::fs::read(&path).unwrap(), before);

    let e = app
        .call("photoDetail", json!({ "id": 424242 }))
        .unwrap_err();
    assert!(e.as_str().unwrap().contains("424242"), "{e}");
    let e = app
        .call("listPhotos", json!({ "filter": { "kind": "everything" } }))
        .unwrap_err();
    assert!(e.as_str().unwrap().contains("everything"), "{e}");
    let e = app
        .call("addRoot", json!({ "path": "/no/such/folder" }))
        .unwrap_err();
    assert!(e.as_str().unwrap().contains("/no/such/folder"), "{e}");
    let e = app
        .call("saveSettings", json!({ "writeMode": "embed", "tiles": { "enabled": true, "url": "file:///etc/passwd", "attribution": "" } }))
        .unwrap_err();
    assert!(e.as_str().unwrap().contains("https://"), "{e}");
    let e = app
        .call("saveSettings", json!({ "tiles": { "enabled": true, "url": "http://tile.example.org/{z}/{x}/{y}.png", "attribution": "Example" } }))
        .unwrap_err();
    assert!(
        e.as_str()
            .unwrap()
            .contains("http:// tile servers are refused"),
        "{e}"
    );
    assert_eq!(app.ok("settings", json!({}))["tiles"]["enabled"], false);

    // Folders: only those the user chose outside the webview, and never the file system, the
    // home folder or a system folder (not even chosen), each refused with the reason.
    let unchosen = app.library.with_file_name("Unchosen");
    std::fs::create_dir_all(&unchosen).unwrap();
    let e = app
        .call("addRoot", json!({ "path": unchosen }))
        .unwrap_err();
    assert!(e.as_str().unwrap().contains("not chosen"), "{e}");
    for (folder, why) in [
        ("/", "whole file system"),
        ("/etc", "system folder"),
        ("/usr/share", "system folder"),
    ] {
        let e = app.call("addRoot", json!({ "path": folder })).unwrap_err();
        assert!(e.as_str().unwrap().contains(why), "{folder}: {e}");
        // Refused before the confirmation dialog is shown at all.
        let e = app
            .call("confirmFolder", json!({ "path": folder }))
            .unwrap_err();
        assert!(e.as_str().unwrap().contains(why), "{folder}: {e}");
        assert!(app.state().choose_folder(Path::new(folder)).is_err());
    }
    if let Some(home) = pinpoint::library::roots::home_folder() {
        let e = app.call("addRoot", json!({ "path": home })).unwrap_err();
        assert!(e.as_str().unwrap().contains("home folder"), "{e}");
    }
    // A folder picked in the dialog is accepted without asking again.
    app.pick_folder(&unchosen);
    assert_eq!(app.ok("confirmFolder", json!({ "path": unchosen })), true);
    assert_eq!(
        app.ok("overview", json!({}))["roots"]
            .as_array()
            .unwrap()
            .len(),
        1
    );
    let e = app
        .call("startJob", json!({ "kind": "defragment" }))
        .unwrap_err();
    assert!(e.as_str().unwrap().contains("defragment"), "{e}");
    let e = app.call("undo", json!({ "batchId": null })).unwrap_err();
    assert!(e.as_str().unwrap().contains("nothing to undo"), "{e}");
}

#[test]
fn settings_round_trip_and_jobs_can_be_cancelled_while_queued() {
    let app = app();
    app.ok(
        "saveSettings",
        json!({ "writeMode": "sidecar", "tiles": { "enabled": true, "url": "https://tiles.example.org/{z}/{x}/{y}.png", "attribution": "Example" } }),
    );
    let s = app.ok("settings", json!({}));
    assert_eq!(s["writeMode"], "sidecar");
    assert_eq!(s["tiles"]["enabled"], true);
    assert_eq!(s["tiles"]["attribution"], "Example");

    // The tile route checks its coordinates before anything is fetched, and serves nothing once
    // tiles are off (the engine's tests fetch from a real tile server).
    let state = app.state();
    for (path, status) in [
        ("/tile/1/2/0", 400),
        ("/tile/23/0/0", 400),
        ("/tile/a/b/c", 400),
        ("/tile/1/0", 400),
        ("/tile/1/0/0/7", 400),
    ] {
        let (got, _, body) = pinpoint_desktop::protocol::tile(&state.images, &state.tiles, path);
        assert_eq!(got, status, "{path}: {}", String::from_utf8_lossy(&body));
    }
    app.ok(
        "saveSettings",
        json!({ "tiles": { "enabled": false, "url": "https://tiles.example.org/{z}/{x}/{y}.png", "attribution": "Example" } }),
    );
    let (got, _, body) =
        pinpoint_desktop::protocol::tile(&state.images, &state.tiles, "/tile/1/0/0");
    assert_eq!(got, 403);
    assert!(String::from_utf8_lossy(&body).contains("off"));
    assert!(s["device"].as_str().unwrap().starts_with("cpu"));

    // A scan of a big folder runs while a second job waits; cancel both.
    app.pick_folder(&app.library);
    app.ok("addRoot", json!({ "path": app.library }));
    let second = app.ok("startJob", json!({ "kind": "scan" }));
    let id = second["id"].as_i64().unwrap();
    app.ok("cancelJob", json!({ "id": id }));
    let job = app.wait_job(id);
    assert_eq!(job["state"], "cancelled", "{job}");
    assert!(app.ok("refdbs", json!({})).as_array().unwrap().is_empty());
}

#[test]
fn a_job_interrupted_by_a_restart_resumes_when_the_app_opens_again() {
    let mut job_id = 0;
    // The previous session queued a scan and was killed while running it.
    let app = app_with(|catalog, library| {
        let c = pinpoint::Catalog::open(catalog).unwrap();
        c.add_root(library).unwrap();
        let job = c
            .add_job("scan", &json!({ "kind": "scan", "roots": [] }))
            .unwrap();
        c.set_job_state(job.id, "running", None).unwrap();
        job_id = job.id;
    });
    let job = app.wait_job(job_id);
    assert_eq!(job["state"], "done", "{job}");
    assert_eq!(app.ok("overview", json!({}))["counts"]["total"], 17);
}

#[test]
fn a_paused_describe_job_resumes_where_it_stopped() {
    let app = app();
    app.add_library();
    let job = app.ok("startJob", json!({ "kind": "describe" }));
    let id = job["id"].as_i64().unwrap();
    app.wait_state(id, &["running"]);
    // Let it describe some photos (the model loads first), then pause.
    let start = Instant::now();
    loop {
        let j = app.wait_state(id, &["running", "done"]);
        if j["state"] == "done" || (j["stage"] != "" && j["done"].as_u64().unwrap() > 0) {
            break;
        }
        assert!(start.elapsed() < Duration::from_secs(120));
        std::thread::sleep(Duration::from_millis(50));
    }
    app.ok("pauseJob", json!({ "id": id }));
    let paused = app.wait_state(id, &["paused", "done"]);
    let hash = {
        let (_, weights) =
            pinpoint::model::card::resolve(&pinpoint::model::default_model_path()).unwrap();
        pinpoint::model::sha256_file(&weights).unwrap()
    };
    let counts = || {
        pinpoint::Catalog::open(&app.catalog)
            .unwrap()
            .descriptor_counts(&hash)
            .unwrap()
    };
    // Describing 17 photos takes seconds on this machine: the pause lands before the end.
    assert_eq!(paused["state"], "paused", "{paused}");
    let before = counts().described;
    assert!(
        before > 0 && before < 17,
        "paused after describing {before}"
    );
    app.ok("resumeJob", json!({ "id": id }));
    let done = app.wait_job(id);
    assert_eq!(done["state"], "done", "{done}");
    // The resumed run described only what was left.
    let message = done["message"].as_str().unwrap().to_string();
    assert_eq!(
        message,
        format!("described {} photos", 17 - before),
        "{done}"
    );
    assert_eq!(counts().described, 17);
    // A finished job cannot be resumed into running again.
    app.ok("resumeJob", json!({ "id": id }));
    assert_eq!(app.wait_job(id)["state"], "done");

    // Accepting a proposal and undoing it puts the proposal back in the review queue (undo used
    // to leave it "accepted" on an untagged photo, out of every list).
    let propose = app.ok("startJob", json!({ "kind": "propose" }));
    assert_eq!(
        app.wait_job(propose["id"].as_i64().unwrap())["state"],
        "done"
    );
    let queue = app.ok("reviewQueue", json!({ "minConfidence": 0.0 }));
    let first = queue[0]["photoId"]
        .as_i64()
        .expect("a proposal for an untagged photo");
    app.ok(
        "acceptProposal",
        json!({ "photoId": first, "lat": null, "lon": null }),
    );
    let after = app.ok("reviewQueue", json!({ "minConfidence": 0.0 }));
    assert!(after
        .as_array()
        .unwrap()
        .iter()
        .all(|p| p["photoId"] != first));
    app.ok("undo", json!({ "batchId": null }));
    let back = app.ok("reviewQueue", json!({ "minConfidence": 0.0 }));
    assert!(
        back.as_array()
            .unwrap()
            .iter()
            .any(|p| p["photoId"] == first),
        "{back}"
    );
}

/// A model that panics when a job asks for it: a fault injected into a real job (describe), as a
/// corrupt weights file or a bug in a backend would raise it.
struct PanickingModel;

impl pinpoint::jobs::ModelSource for PanickingModel {
    fn model(&self) -> pinpoint::Result<&pinpoint::model::LoadedModel> {
        panic!("injected fault: the model's weights are corrupt");
    }
}

/// The job events a runner sent: (job id, state).
#[derive(Default)]
struct SeenEvents(parking_lot::Mutex<Vec<(i64, String)>>);

impl pinpoint_desktop::runner::JobEvents for SeenEvents {
    fn job(&self, job: &pinpoint_desktop::views::JobView) {
        self.0.lock().push((job.id, job.state.clone()));
    }
    fn catalog_changed(&self, _what: &str) {}
}

/// Waits for a job row to reach a final state, reading the catalog directly.
fn wait_row(catalog: &Path, id: i64) -> pinpoint::catalog::JobRow {
    let start = Instant::now();
    loop {
        let row = pinpoint::Catalog::open(catalog)
            .unwrap()
            .job(id)
            .unwrap()
            .unwrap();
        if ["done", "failed", "cancelled"].contains(&row.state.as_str()) {
            return row;
        }
        assert!(
            start.elapsed() < Duration::from_secs(120),
            "job {id} did not end: {row:?}"
        );
        std::thread::sleep(Duration::from_millis(20));
    }
}

#[test]
fn a_job_that_panics_fails_with_the_message_and_the_runner_keeps_working() {
    use pinpoint::jobs::JobSpec;
    use pinpoint_desktop::runner::JobRunner;
    use std::sync::Arc;

    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("Pictures");
    copy_sample_library(&library);
    let catalog = dir.path().join("catalog.sqlite");
    pinpoint::Catalog::open(&catalog)
        .unwrap()
        .add_root(&library)
        .unwrap();

    let runner = JobRunner::start(
        catalog.clone(),
        Arc::new(PanickingModel),
        Arc::new(SeenEvents::default()),
    )
    .unwrap();
    let describe = runner.submit(&JobSpec::Describe).unwrap();
    let row = wait_row(&catalog, describe.id);
    assert_eq!(row.state, "failed", "{row:?}");
    let message = row.message.clone().unwrap_or_default();
    assert!(
        message.contains("injected fault: the model's weights are corrupt"),
        "{message}"
    );
    // The worker survived: a later job is accepted and runs.
    let scan = runner
        .submit(&JobSpec::Scan { roots: Vec::new() })
        .expect("the runner accepts jobs after a panic");
    let row = wait_row(&catalog, scan.id);
    assert_eq!(row.state, "done", "{row:?}");
    assert!(row.message.unwrap().contains("17 new"));
    drop(runner);

    // The next start does not run the crashed job again: the worker serves jobs in order, so by
    // the time a new scan is done a re-queued describe would have been run (and reported) first.
    let seen = Arc::new(SeenEvents::default());
    let runner = JobRunner::start(catalog.clone(), Arc::new(PanickingModel), seen.clone()).unwrap();
    let rescan = runner.submit(&JobSpec::Scan { roots: Vec::new() }).unwrap();
    assert_eq!(wait_row(&catalog, rescan.id).state, "done");
    assert!(
        seen.0.lock().iter().all(|(id, _)| *id != describe.id),
        "the crashed job was resumed at start: {:?}",
        seen.0.lock()
    );
    let row = pinpoint::Catalog::open(&catalog)
        .unwrap()
        .job(describe.id)
        .unwrap()
        .unwrap();
    assert_eq!(row.state, "failed");

    // Only the user asking runs it again (and here it crashes again, contained again).
    runner.resume(describe.id).unwrap();
    let row = wait_row(&catalog, describe.id);
    assert_eq!(row.state, "failed", "{row:?}");
    assert!(seen
        .0
        .lock()
        .iter()
        .any(|(id, state)| *id == describe.id && state == "running"));
}
