//! Online map tiles against a real tile server on 127.0.0.1: fetched only while enabled, served
//! from the disk cache afterwards (also with the server gone), the cache's size bound, and the
//! templates that are refused.

mod common;

use std::path::Path;
use std::time::Duration;

use common::HttpServer;
use pinpoint::tiles::{TileCache, TileError, TileId, TileSettings, DEFAULT_CACHE_BYTES};

/// A real PNG of noise: `seed` makes each tile different.
fn png(seed: u32) -> Vec<u8> {
    let mut state = seed.wrapping_mul(2_654_435_761).wrapping_add(1);
    let img = image::RgbImage::from_fn(48, 48, |_, _| {
        state ^= state << 13;
        state ^= state >> 17;
        state ^= state << 5;
        image::Rgb([state as u8, (state >> 8) as u8, (state >> 16) as u8])
    });
    let mut out = std::io::Cursor::new(Vec::new());
    img.write_to(&mut out, image::ImageFormat::Png).unwrap();
    out.into_inner()
}

fn put(root: &Path, rel: &str, bytes: &[u8]) {
    let path = root.join(rel);
    std::fs::create_dir_all(path.parent().unwrap()).unwrap();
    std::fs::write(path, bytes).unwrap();
}

fn enabled(server: &HttpServer) -> TileSettings {
    TileSettings {
        enabled: true,
        url: format!("{}/{{z}}/{{x}}/{{y}}.png", server.base),
        attribution: "Test tiles".into(),
    }
}

fn requests(server: &HttpServer) -> Vec<String> {
    server.requests.lock().unwrap().clone()
}

fn cache_bytes(dir: &Path) -> u64 {
    common::files_under(dir)
        .iter()
        .map(|p| p.metadata().unwrap().len())
        .sum()
}

#[test]
fn tiles_are_fetched_only_when_enabled_then_served_from_the_cache_also_offline() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("server");
    let tile_a = png(1);
    let tile_b = png(2);
    put(&served, "2/1/3.png", &tile_a);
    put(&served, "2/0/0.png", &tile_b);
    put(
        &served,
        "2/2/2.png",
        b"<html><body>Rate limited</body></html>",
    );
    let server = HttpServer::serve(&served);
    let cache = TileCache::new(dir.path().join("tiles"), DEFAULT_CACHE_BYTES);
    let settings = enabled(&server);

    // Off: nothing is fetched, not even a tile the server has.
    let off = TileSettings {
        enabled: false,
        ..settings.clone()
    };
    let e = cache.tile(&off, TileId::new(2, 1, 3).unwrap()).unwrap_err();
    assert!(matches!(e, TileError::Disabled), "{e}");
    assert!(requests(&server).is_empty());

    // On: fetched once, with a User-Agent that names the application.
    let t = cache
        .tile(&settings, TileId::new(2, 1, 3).unwrap())
        .unwrap();
    assert_eq!(t.bytes, tile_a);
    assert_eq!(t.content_type, "image/png");
    assert!(!t.cached);
    assert_eq!(requests(&server).len(), 1, "{:?}", requests(&server));
    assert!(requests(&server)[0].starts_with("GET /2/1/3.png "));
    let agent = server.user_agents.lock().unwrap()[0].clone();
    assert!(agent.starts_with("Pinpoint/"), "{agent}");

    // The second time it comes from the disk cache: the server sees no second request.
    let again = cache
        .tile(&settings, TileId::new(2, 1, 3).unwrap())
        .unwrap();
    assert_eq!(again.bytes, tile_a);
    assert!(again.cached);
    assert_eq!(requests(&server).len(), 1);
    // A new cache on the same folder (the app started again) has it too.
    let reopened = TileCache::new(dir.path().join("tiles"), DEFAULT_CACHE_BYTES);
    assert!(
        reopened
            .tile(&settings, TileId::new(2, 1, 3).unwrap())
            .unwrap()
            .cached
    );
    // Turned off again: not even cached tiles are shown.
    assert!(matches!(
        cache.tile(&off, TileId::new(2, 1, 3).unwrap()),
        Err(TileError::Disabled)
    ));

    // What is not a tile is reported and not cached: a missing tile, a server's error page.
    let e = cache
        .tile(&settings, TileId::new(2, 3, 3).unwrap())
        .unwrap_err();
    assert!(matches!(e, TileError::Status { status: 404, .. }), "{e}");
    let e = cache
        .tile(&settings, TileId::new(2, 2, 2).unwrap())
        .unwrap_err();
    assert!(matches!(e, TileError::NotAnImage { .. }), "{e}");
    let before = requests(&server).len();
    assert!(cache
        .tile(&settings, TileId::new(2, 2, 2).unwrap())
        .is_err());
    assert_eq!(
        requests(&server).len(),
        before + 1,
        "the error page was cached"
    );

    // Offline: the tile seen before still shows; one never fetched is an error naming its URL.
    server.stop();
    let offline = cache
        .tile(&settings, TileId::new(2, 1, 3).unwrap())
        .unwrap();
    assert_eq!(offline.bytes, tile_a);
    let e = cache
        .tile(&settings, TileId::new(2, 0, 0).unwrap())
        .unwrap_err();
    assert!(matches!(e, TileError::Fetch { .. }), "{e}");
    assert!(e.to_string().contains("/2/0/0.png"), "{e}");

    // Tiles of another server are kept apart from these.
    let other = TileSettings {
        url: "https://127.0.0.1:9/{z}/{x}/{y}.png".into(),
        ..settings.clone()
    };
    assert!(cache.tile(&other, TileId::new(2, 1, 3).unwrap()).is_err());
}

#[test]
fn the_cache_keeps_to_its_size_bound_by_evicting_the_least_recently_used_tiles() {
    let dir = tempfile::tempdir().unwrap();
    let served = dir.path().join("server");
    // Same-sized tiles make the bound exact: room for three and a half.
    let tile = png(7);
    for x in 0..4 {
        put(&served, &format!("3/{x}/0.png"), &tile);
    }
    let size = tile.len() as u64;
    let bound = 3 * size + size / 2;
    let server = HttpServer::serve(&served);
    let settings = enabled(&server);
    let tiles_dir = dir.path().join("tiles");
    let cache = TileCache::new(&tiles_dir, bound);
    let get = |x: u32| {
        cache
            .tile(&settings, TileId::new(3, x, 0).unwrap())
            .unwrap()
    };
    let pause = || std::thread::sleep(Duration::from_millis(30));

    for x in 0..3 {
        assert!(!get(x).cached);
        pause();
    }
    assert_eq!(cache_bytes(&tiles_dir), 3 * size);
    // Tile 0 is looked at again: tile 1 is now the least recently used.
    assert!(get(0).cached);
    pause();
    // A fourth tile goes over the bound: tile 1 goes, the others stay.
    assert!(!get(3).cached);
    assert!(
        cache_bytes(&tiles_dir) <= bound,
        "{}",
        cache_bytes(&tiles_dir)
    );
    assert_eq!(requests(&server).len(), 4);
    for x in [0, 2, 3] {
        assert!(get(x).cached, "tile {x} was evicted");
    }
    assert_eq!(requests(&server).len(), 4);
    assert!(!get(1).cached, "tile 1 should have been evicted");
    assert_eq!(requests(&server).len(), 5);
    assert!(cache_bytes(&tiles_dir) <= bound);
}

#[test]
fn an_http_tile_server_is_refused_with_a_reason_and_not_saved() {
    let dir = tempfile::tempdir().unwrap();
    let catalog = pinpoint::Catalog::open(&dir.path().join("catalog.sqlite")).unwrap();
    let http = TileSettings {
        enabled: true,
        url: "http://tile.example.org/{z}/{x}/{y}.png".into(),
        attribution: "Example".into(),
    };
    let e = http.save(&catalog).unwrap_err();
    assert!(e.to_string().contains("http://"), "{e}");
    assert!(e.to_string().contains("https://"), "{e}");
    // Also while disabled: an http:// address is not kept for later.
    let e = TileSettings {
        enabled: false,
        ..http.clone()
    }
    .save(&catalog)
    .unwrap_err();
    assert!(
        matches!(e, pinpoint::Error::Tile(TileError::Insecure { .. })),
        "{e}"
    );
    assert_eq!(
        TileSettings::load(&catalog).unwrap(),
        TileSettings::default()
    );

    let cache = TileCache::new(dir.path().join("tiles"), DEFAULT_CACHE_BYTES);
    let e = cache
        .tile(&http, TileId::new(0, 0, 0).unwrap())
        .unwrap_err();
    assert!(matches!(e, TileError::Insecure { .. }), "{e}");

    let https = TileSettings {
        url: "https://tile.example.org/{z}/{x}/{y}.png".into(),
        ..http
    };
    https.save(&catalog).unwrap();
    assert_eq!(TileSettings::load(&catalog).unwrap(), https);
}
