//! End to end: the real app (this package's binary, with the real front end) driven through
//! tauri-driver and WebKitWebDriver under Xvfb, on a copy of the bundled sample library. It opens
//! the app on the library, checks that the page cannot add folders on its own, watches the scan,
//! sees thumbnails, opens the map, runs Update, accepts a proposal in the review queue, checks the
//! photo's GPS on disk, undoes it from the UI and checks the original bytes
//! are back. Screenshots of every view at 1280x800 go to target/e2e-screenshots/.
//!
//! Needs: Xvfb, WebKitWebDriver (Debian: xvfb, webkit2gtk-driver) and tauri-driver
//! (scripts/install-deps.sh puts it in target/tools/bin).

mod webdriver;

use std::path::PathBuf;
use std::time::{Duration, Instant};

use webdriver::{copy_tree, gps_of, launch_with_args, workspace};

const LOADED_THUMBNAILS: &str = "const n = [...document.querySelectorAll('.grid-cell img')]\
    .filter(i => i.complete && i.naturalWidth > 0).length; return n >= 12 && n";

/// One app at a time: two apps and their WebKit processes on two cores make each other's
/// waits time out.
static ONE_APP: std::sync::Mutex<()> = std::sync::Mutex::new(());

#[test]
fn a_photographer_adds_a_library_reviews_a_proposal_on_the_map_and_undoes_it() {
    let _one = ONE_APP.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("Pictures");
    std::fs::create_dir_all(&library).unwrap();
    copy_tree(&workspace().join("assets/sample-library"), &library);
    let catalog = dir.path().join("catalog.sqlite");
    // The photographer opens the app on the folder (`pinpoint-desktop ~/Pictures`): a folder
    // named on the command line is the user's choice, as one picked in the native dialog is.
    // (Typed paths are confirmed in a native GTK dialog, which WebDriver cannot answer.)
    let (driver, shown) =
        launch_with_args(&catalog, "sample-library", &[library.to_str().unwrap()]);
    let s = &driver.session;
    let paint = s.js(
        "const p = performance.getEntriesByType('paint').map(e => [e.name, Math.round(e.startTime)]); \
         return { paint: p, domContentLoaded: Math.round(performance.timing.domContentLoadedEventEnd - performance.timing.navigationStart) };",
    );
    eprintln!(
        "launch to app shell: {} ms; in-page timings {paint}",
        shown.as_millis()
    );
    s.screenshot("0-empty-library");

    // The page cannot add a folder the user did not choose: not a system folder, and not an
    // ordinary folder it names on its own (that takes the user's answer in a native dialog).
    let elsewhere = dir.path().join("Elsewhere");
    std::fs::create_dir_all(&elsewhere).unwrap();
    let refused = s.js_async(&format!(
        "const done = arguments[arguments.length - 1]; const inv = window.__TAURI__.core.invoke; \
         const why = (p) => inv('addRoot', {{ path: p }}).then(() => 'added', e => String(e)); \
         Promise.all([why('/etc'), why({:?})]).then(done);",
        elsewhere.to_str().unwrap()
    ));
    assert!(
        refused[0].as_str().unwrap().contains("system folder"),
        "{refused}"
    );
    assert!(
        refused[1].as_str().unwrap().contains("not chosen"),
        "{refused}"
    );

    // Watch the scan of the folder the app was opened on.
    let loaded = s.wait_until("thumbnails", LOADED_THUMBNAILS, 120);
    eprintln!("thumbnails loaded: {loaded}");
    let count = s.wait_until(
        "the library count",
        "const t = document.querySelector('#library-count'); return t && /17/.test(t.textContent) && t.textContent",
        30,
    );
    eprintln!("library count: {count}");
    s.click(".grid-cell");
    s.wait_until(
        "the detail pane",
        "const d = document.querySelector('#library-detail'); return d && d.querySelector('img') && d.textContent.length > 40",
        20,
    );
    std::thread::sleep(Duration::from_millis(800));
    s.screenshot("1-library");

    // The map shows the located photos (14: Tuscany, Berlin, the two tagged Sacré-Cœur photos).
    s.click("#nav-map");
    let markers = s.wait_until(
        "markers on the map",
        "return document.querySelectorAll('#map .marker-cluster, #map .photo-marker').length",
        60,
    );
    eprintln!("map markers/clusters: {markers}");
    std::thread::sleep(Duration::from_millis(1500));
    s.screenshot("2-map");

    // Placing by hand: an untagged photo dropped on the middle of the map (the drop the grid's
    // drag and drop makes; WebDriver cannot drive native drag and drop), then undone from the toast.
    let dropped = s.js_async(
        "const done = arguments[arguments.length - 1]; \
         window.__TAURI__.core.invoke('listPhotos', { filter: { kind: 'untagged' }, limit: 1 }).then(r => { \
           const p = r.photos[0]; const m = document.querySelector('#map'); const box = m.getBoundingClientRect(); \
           const centre = m.leafletMap.getCenter(); const dt = new DataTransfer(); \
           dt.setData('application/x-pinpoint-photos', JSON.stringify([p.id])); \
           const ev = t => new DragEvent(t, { bubbles: true, cancelable: true, dataTransfer: dt, \
             clientX: box.left + box.width / 2, clientY: box.top + box.height / 2 }); \
           m.dispatchEvent(ev('dragenter')); m.dispatchEvent(ev('dragover')); m.dispatchEvent(ev('drop')); \
           done({ path: p.path, lat: centre.lat, lon: centre.lng }); \
         }).catch(e => done({ error: String(e) }));",
    );
    let dropped_path = PathBuf::from(
        dropped["path"]
            .as_str()
            .unwrap_or_else(|| panic!("{dropped}")),
    );
    let start = Instant::now();
    let placed = loop {
        if let Some(g) = gps_of(&dropped_path) {
            break g;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the dropped photo was not placed"
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    let centre = (
        dropped["lat"].as_f64().unwrap(),
        dropped["lon"].as_f64().unwrap(),
    );
    assert!(
        pinpoint::geo::haversine_m(placed.0, placed.1, centre.0, centre.1) < 20_000.0,
        "{placed:?} vs {centre:?}"
    );
    s.click(".toast-action");
    let start = Instant::now();
    while gps_of(&dropped_path).is_some() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the toast's Undo did not clear the placement"
        );
        std::thread::sleep(Duration::from_millis(100));
    }

    // A wrong tag, as cameras and careless edits make them: one Berlin photo placed in Tuscany.
    let wrong = s.js_async(
        "const done = arguments[arguments.length - 1]; const inv = window.__TAURI__.core.invoke; \
         inv('listPhotos', { filter: { kind: 'all', place: { cc: 'DE', region: null, city: null } }, limit: 1 }) \
           .then(r => inv('setLocation', { photoIds: [r.photos[0].id], lat: 43.4633, lon: 11.8796 }).then(() => done(r.photos[0]))) \
           .catch(e => done({ error: String(e) }));",
    );
    let wrong_path = PathBuf::from(wrong["path"].as_str().unwrap_or_else(|| panic!("{wrong}")));
    assert_eq!(gps_of(&wrong_path).map(|g| g.0.round()), Some(43.0));

    // Update: describe with the built-in model and propose. The scan job is in the list too.
    s.click("#nav-jobs");
    s.wait_until(
        "the finished scan job",
        "return document.querySelector('.job[data-state=\"done\"]')",
        30,
    );
    s.click("#job-start-update");
    let started = Instant::now();
    s.wait_until(
        "the update job to run",
        "const j = document.querySelector('.job'); return j && j.dataset.state !== 'done' && j.dataset.state",
        30,
    );
    std::thread::sleep(Duration::from_millis(1500));
    s.screenshot("3-jobs-running");
    let state = s.wait_until(
        "the update job to finish",
        "const j = document.querySelector('.job'); return j && ['done','failed','cancelled'].includes(j.dataset.state) && j.dataset.state",
        900,
    );
    assert_eq!(state, "done", "the update job ended {state}");
    eprintln!("update job: {:.0} s", started.elapsed().as_secs_f64());
    s.screenshot("4-jobs");

    // Review: the first proposal is one of the untagged Sacré-Cœur photos, placed at the basilica.
    let queue = s.js_async(
        "const done = arguments[arguments.length - 1]; \
         window.__TAURI__.core.invoke('reviewQueue', { minConfidence: 0 }).then(done, e => done({ error: String(e) }));",
    );
    let first = queue[0].clone();
    assert!(first.is_object(), "no proposal in the queue: {queue}");
    let path = PathBuf::from(first["path"].as_str().unwrap());
    assert!(path.starts_with(library.join("sacre-coeur")), "{path:?}");
    let (plat, plon) = (
        first["lat"].as_f64().unwrap(),
        first["lon"].as_f64().unwrap(),
    );
    assert!(
        pinpoint::geo::haversine_m(plat, plon, 48.88671, 2.34305) < 200.0,
        "{first}"
    );
    let original = std::fs::read(&path).unwrap();
    let sidecar = PathBuf::from(format!("{}.xmp", path.display()));
    assert_eq!(gps_of(&path), None);

    s.click("#nav-review");
    s.wait_until(
        "the proposal on screen",
        "const i = document.querySelector('#review .review-img'); return i && i.complete && i.naturalWidth > 0",
        30,
    );
    std::thread::sleep(Duration::from_millis(1500));
    s.screenshot("5-review");
    s.click("#review-accept");
    let start = Instant::now();
    let written = loop {
        if let Some(g) = gps_of(&path) {
            break g;
        }
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the accepted location never reached {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    };
    assert!(
        (written.0 - plat).abs() < 1e-6 && (written.1 - plon).abs() < 1e-6,
        "{written:?} vs {plat},{plon}"
    );
    std::thread::sleep(Duration::from_millis(600));
    s.screenshot("6-review-accepted");

    // Undo from the UI puts the original bytes back.
    s.click("#review-undo");
    let start = Instant::now();
    while std::fs::read(&path).unwrap() != original || sidecar.exists() {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "undo did not restore {}",
            path.display()
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    assert_eq!(gps_of(&path), None);

    // Suspicious: the Berlin photo tagged in Tuscany is flagged; replacing the tag puts it back in Berlin.
    s.click("#nav-suspicious");
    let flagged = s.wait_until(
        "the suspicious tag",
        "const i = document.querySelector('.susp-item'); return i && i.dataset.id",
        30,
    );
    assert_eq!(
        flagged.as_str().unwrap(),
        wrong["id"].to_string(),
        "flagged photo"
    );
    std::thread::sleep(Duration::from_millis(1500));
    s.screenshot("7-suspicious");
    s.click("#suspicious-replace");
    let start = Instant::now();
    while gps_of(&wrong_path).is_none_or(|g| (g.0 - 52.52).abs() > 0.05) {
        assert!(
            start.elapsed() < Duration::from_secs(30),
            "the tag was not replaced: {:?}",
            gps_of(&wrong_path)
        );
        std::thread::sleep(Duration::from_millis(100));
    }
    s.click("#nav-places");
    s.wait_until(
        "the place tree",
        "return document.querySelectorAll('#places-tree .tree-row').length",
        30,
    );
    s.click("#places-tree .tree-row");
    std::thread::sleep(Duration::from_millis(1500));
    s.screenshot("8-places");
    s.click("#nav-settings");
    std::thread::sleep(Duration::from_millis(1000));
    s.screenshot("9-settings");
    // Camera clocks, further down: the Nikon records GPS, so its photos are the references.
    s.wait_until(
        "the camera clocks",
        "const c = document.querySelector('#settings-cameras .camera'); \
         if (!c) return false; c.scrollIntoView({ block: 'center' }); return c.textContent.includes('records GPS')",
        30,
    );
    std::thread::sleep(Duration::from_millis(400));
    s.screenshot("9b-settings-cameras");
}

/// Phone videos in the grid show a poster frame (ffmpeg's), upright, with their length; the
/// detail pane shows the frame large.
#[test]
fn videos_show_their_poster_frames() {
    let _one = ONE_APP.lock().unwrap_or_else(|e| e.into_inner());
    let dir = tempfile::tempdir().unwrap();
    let library = dir.path().join("Clips");
    std::fs::create_dir_all(&library).unwrap();
    let corpus = workspace().join("../shared/data/exif/metadata-extractor-images/gps");
    // A landscape 1080p clip and a portrait phone clip (its track is turned by 90 degrees).
    for name in ["with-gps.mp4", "ftyp3gp5.mp4"] {
        std::fs::copy(corpus.join(name), library.join(name)).unwrap();
    }
    std::fs::copy(
        workspace().join("assets/sample-library/tuscany/DSCN0010.jpg"),
        library.join("DSCN0010.jpg"),
    )
    .unwrap();
    let catalog = dir.path().join("catalog.sqlite");
    let (driver, _) = launch_with_args(&catalog, "videos", &[library.to_str().unwrap()]);
    let s = &driver.session;
    let posters = s.wait_until(
        "two poster frames",
        "const p = [...document.querySelectorAll('.grid-cell .video-poster')]\
           .filter(i => i.complete && i.naturalWidth > 0); \
         return p.length === 2 && p.map(i => [i.naturalWidth, i.naturalHeight, i.closest('.grid-cell').title])",
        120,
    );
    eprintln!("poster frames: {posters}");
    for p in posters.as_array().unwrap() {
        let (w, h, name) = (
            p[0].as_u64().unwrap(),
            p[1].as_u64().unwrap(),
            p[2].as_str().unwrap(),
        );
        // Grid thumbnails have a 256 px long side; the portrait clip stands upright.
        assert_eq!(w.max(h), 256, "{p}");
        assert_eq!(h > w, name == "ftyp3gp5.mp4", "{p}");
    }
    let lengths = s.js(
        "return [...document.querySelectorAll('.grid-cell .video-length')].map(e => e.textContent)",
    );
    assert!(
        lengths
            .as_array()
            .unwrap()
            .iter()
            .all(|l| l.as_str().is_some_and(|t| t.contains(':'))),
        "{lengths}"
    );
    s.click(".grid-cell[title='ftyp3gp5.mp4']");
    s.wait_until(
        "the video's frame in the detail pane",
        "const i = document.querySelector('#library-detail .video-poster'); \
         return i && i.complete && i.naturalWidth > 0 && i.naturalHeight > i.naturalWidth",
        30,
    );
    std::thread::sleep(Duration::from_millis(500));
    s.screenshot("10-videos");
}
