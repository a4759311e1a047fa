//! How the real app behaves with 100,000 photos: grid page requests, scrolling frame times, and the
//! map's clustering of 100,000 located photos. Run: `cargo bench -p pinpoint-desktop --bench ui`
//! (needs what the end-to-end test needs: Xvfb, WebKitWebDriver, tauri-driver).
//!
//! The library is 100,000 hard links to the sample photos (no disk cost), scanned by the engine;
//! their locations are then spread over Europe in clusters directly in the catalog copy, so the map
//! has 100,000 markers.

#[path = "../tests/webdriver/mod.rs"]
mod webdriver;

use std::path::Path;
use std::time::{Duration, Instant};

use webdriver::{launch, workspace};

const N: usize = 100_000;

fn prepare(dir: &Path) -> std::path::PathBuf {
    let catalog = dir.join("catalog.sqlite");
    if catalog.exists() {
        return catalog;
    }
    let sample = workspace().join("assets/sample-library");
    let mut photos = Vec::new();
    for sub in ["tuscany", "berlin", "sacre-coeur"] {
        for e in std::fs::read_dir(sample.join(sub)).unwrap() {
            let p = e.unwrap().path();
            if p.extension().is_some_and(|x| x == "jpg") {
                photos.push(p);
            }
        }
    }
    let lib = dir.join("library");
    for i in 0..N {
        let folder = lib.join(format!("{:03}", i / 1000));
        if i % 1000 == 0 {
            std::fs::create_dir_all(&folder).unwrap();
        }
        let src = &photos[i % photos.len()];
        std::fs::hard_link(src, folder.join(format!("{i:06}.jpg"))).unwrap();
    }
    let mut c = pinpoint::Catalog::open(&catalog).unwrap();
    c.add_root(&lib).unwrap();
    let t = Instant::now();
    let r = pinpoint::library::scan(
        &mut c,
        &[],
        &Default::default(),
        &pinpoint::progress::NoProgress,
        &pinpoint::progress::CancelToken::new(),
    )
    .unwrap();
    println!(
        "prepared: scanned {} files in {:.1} s",
        r.files_seen,
        t.elapsed().as_secs_f64()
    );
    drop(c);
    // Locations: 200 clusters over Europe, each a few km wide (deterministic).
    let db = rusqlite::Connection::open(&catalog).unwrap();
    let mut seed: u64 = 42;
    let mut rnd = move || {
        seed ^= seed << 13;
        seed ^= seed >> 7;
        seed ^= seed << 17;
        (seed >> 11) as f64 / (1u64 << 53) as f64
    };
    let centres: Vec<(f64, f64)> = (0..200)
        .map(|_| (38.0 + rnd() * 20.0, -8.0 + rnd() * 36.0))
        .collect();
    let tx = db.unchecked_transaction().unwrap();
    {
        let ids: Vec<i64> = {
            let mut s = tx.prepare("SELECT id FROM photos").unwrap();
            let rows = s.query_map([], |r| r.get(0)).unwrap();
            rows.map(|r| r.unwrap()).collect()
        };
        let mut up = tx
            .prepare("UPDATE photos SET lat = ?2, lon = ?3, gps_source = 'exif' WHERE id = ?1")
            .unwrap();
        for (k, id) in ids.iter().enumerate() {
            let (clat, clon) = centres[k % centres.len()];
            up.execute(rusqlite::params![
                id,
                clat + (rnd() - 0.5) * 0.05,
                clon + (rnd() - 0.5) * 0.08
            ])
            .unwrap();
        }
    }
    tx.commit().unwrap();
    catalog
}

fn stats(name: &str, mut v: Vec<f64>) {
    v.sort_by(|a, b| a.partial_cmp(b).unwrap());
    if v.is_empty() {
        println!("{name}: no samples");
        return;
    }
    let mean = v.iter().sum::<f64>() / v.len() as f64;
    let p = |q: f64| v[((v.len() - 1) as f64 * q).round() as usize];
    println!(
        "{name}: n {}, mean {mean:.1} ms, p50 {:.1}, p95 {:.1}, max {:.1}",
        v.len(),
        p(0.5),
        p(0.95),
        v[v.len() - 1]
    );
}

fn floats(v: &serde_json::Value) -> Vec<f64> {
    v.as_array()
        .map(|a| a.iter().filter_map(|x| x.as_f64()).collect())
        .unwrap_or_default()
}

fn main() {
    let dir = workspace().join("target/bench-data/ui-100k");
    std::fs::create_dir_all(&dir).unwrap();
    let catalog = prepare(&dir);
    let (driver, shown) = launch(&catalog, "ui-100k");
    let s = &driver.session;
    println!("launch to app shell: {} ms", shown.as_millis());

    // Grid pages at offsets across the whole library, as the virtual grid asks for them.
    let pages = s.js_async(
        "const done = arguments[arguments.length - 1]; (async () => { const t = []; \
         for (const off of [0, 5000, 25000, 50000, 75000, 99800, 120, 61000, 33000, 90000]) { \
           const a = performance.now(); \
           await window.__TAURI__.core.invoke('listPhotos', { filter: { kind: 'all' }, offset: off, limit: 200 }); \
           t.push(performance.now() - a); } return t; })().then(done, e => done(String(e)));",
    );
    stats("listPhotos (200 rows, any offset)", floats(&pages));

    s.wait_until(
        "the grid",
        "return document.querySelectorAll('.grid-cell').length",
        60,
    );
    // Scroll the grid through the library for 4 s, one step per frame, recording frame times.
    let frames = s.js_async(
        "const done = arguments[arguments.length - 1]; \
         const g = document.querySelector('.vgrid'); const t = []; let last = performance.now(); const end = last + 4000; \
         function step(now) { t.push(now - last); last = now; g.scrollTop += 600; \
           if (now < end) requestAnimationFrame(step); else done(t.slice(1)); } \
         requestAnimationFrame(step);",
    );
    let f = floats(&frames);
    let scrolled = s.js("return document.querySelector('.vgrid').scrollTop");
    println!(
        "grid scrolled to {scrolled} px; cells in the DOM: {}",
        s.js("return document.querySelectorAll('.grid-cell').length")
    );
    stats("grid scrolling frame time", f);
    s.screenshot("grid-100k");

    // The map: time until 100,000 markers are clustered and drawn, then pan/zoom frame times.
    let t = Instant::now();
    s.click("#nav-map");
    s.wait_until(
        "clusters",
        "return document.querySelectorAll('#map .marker-cluster').length",
        300,
    );
    println!(
        "map: first clusters after {:.2} s",
        t.elapsed().as_secs_f64()
    );
    s.wait_until(
        "all markers loaded",
        "const l = document.querySelector('.legend-count'); return l && /100[,.\\u202f\\u00a0 ]?000/.test(l.textContent) && l.textContent",
        300,
    );
    println!(
        "map: 100,000 points received and counted after {:.2} s",
        t.elapsed().as_secs_f64()
    );
    std::thread::sleep(Duration::from_secs(2));
    let frames = s.js_async(
        "const done = arguments[arguments.length - 1]; \
         const m = document.querySelector('#map'); const map = m && m.leafletMap; \
         const t = []; let last = performance.now(); const end = last + 4000; let k = 0; \
         function step(now) { t.push(now - last); last = now; k++; \
           if (map) { if (k % 40 === 0) map.zoomIn(); else if (k % 40 === 20) map.zoomOut(); else map.panBy([8, 4], { animate: false }); } \
           if (now < end) requestAnimationFrame(step); else done(t.slice(1)); } \
         requestAnimationFrame(step);",
    );
    stats("map pan/zoom frame time", floats(&frames));
    s.screenshot("map-100k");
}
