//! Reference database benchmark: a synthetic database in the real format (random clustered
//! descriptors stored f16, random locations, one real small JPEG as every preview), installed the
//! way `pinpoint refdb install FILE` installs it, then queried the way proposals query it.
//!
//! Reports file size, install time (with its stages: SHA-256, integrity check, move, index build),
//! resident memory while querying (anonymous and file-backed, from /proc/self/status), query
//! latency (search + reference lookup, one thread) and recall@10 against exact search.
//!
//!     cargo bench --bench refdb -- [--n 1000000] [--dim 512] [--queries 1000]
//!
//! Each phase runs in a child process of its own so that its memory is its own.

use std::io::Write;
use std::path::{Path, PathBuf};
use std::process::Command;
use std::time::Instant;

use pinpoint::index::Neighbor;
use pinpoint::progress::{CancelToken, ProgressUpdate};
use pinpoint::refdb::format::{encode_vector, Manifest, FORMAT_VERSION, SCHEMA};

mod common;
use common::{arg, status_mb, vectors, Rng};

struct Setup {
    n: usize,
    dim: usize,
    queries: usize,
    dir: PathBuf,
}

impl Setup {
    fn from_args() -> Setup {
        let n = arg("--n").and_then(|v| v.parse().ok()).unwrap_or(1_000_000);
        let dim = arg("--dim").and_then(|v| v.parse().ok()).unwrap_or(512);
        let queries = arg("--queries")
            .and_then(|v| v.parse().ok())
            .unwrap_or(1000);
        let dir = Path::new(env!("CARGO_MANIFEST_DIR"))
            .join(format!("target/bench-data/refdb-{n}-{dim}"));
        Setup {
            n,
            dim,
            queries,
            dir,
        }
    }
    fn db_file(&self) -> PathBuf {
        self.dir.join("synthetic.pinpointdb")
    }
    fn queries_file(&self) -> PathBuf {
        self.dir.join("queries.f32")
    }
    fn catalog(&self) -> PathBuf {
        self.dir.join("catalog.sqlite")
    }
}

/// One real JPEG preview: the first sample photo at 128 px.
fn preview_jpeg() -> Vec<u8> {
    let sample = Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/sample-library");
    let photo = walkdir::WalkDir::new(&sample)
        .sort_by_file_name()
        .into_iter()
        .filter_map(|e| e.ok())
        .find(|e| e.path().extension().is_some_and(|x| x == "jpg"))
        .expect("a sample photo")
        .into_path();
    let img = pinpoint::library::decode::decode_upright(&photo, None).unwrap();
    let small = pinpoint::library::thumbnail::resize_to_fit(&img, 128);
    let mut out = Vec::new();
    image::codecs::jpeg::JpegEncoder::new_with_quality(&mut out, 80)
        .encode_image(&small)
        .unwrap();
    out
}

/// Phase 1: write the database file (and the queries).
fn write(s: &Setup) {
    std::fs::create_dir_all(&s.dir).unwrap();
    let t = Instant::now();
    let (db, qs) = vectors("clustered", s.n, s.queries, s.dim, 42);
    let gen_s = t.elapsed().as_secs_f64();
    let mut qbytes = Vec::with_capacity(qs.len() * s.dim * 4);
    for q in &qs {
        for x in q {
            qbytes.extend_from_slice(&x.to_le_bytes());
        }
    }
    std::fs::write(s.queries_file(), qbytes).unwrap();

    let model = pinpoint::model::LoadedModel::load(
        &pinpoint::model::default_model_path(),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    let preview = preview_jpeg();
    let file = s.db_file();
    let _ = std::fs::remove_file(&file);
    let t = Instant::now();
    let mut conn = rusqlite::Connection::open(&file).unwrap();
    conn.execute_batch("PRAGMA journal_mode = OFF; PRAGMA synchronous = OFF;")
        .unwrap();
    conn.execute_batch(SCHEMA).unwrap();
    let mut rng = Rng(7);
    for chunk in db.chunks(20_000).enumerate() {
        let (c, vs) = chunk;
        let tx = conn.transaction().unwrap();
        {
            let mut r = tx
                .prepare("INSERT INTO refs (id, lat, lon, heading, source_id, licence, preview) VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7)")
                .unwrap();
            let mut d = tx
                .prepare("INSERT INTO descriptors (id, vector) VALUES (?1, ?2)")
                .unwrap();
            for (i, v) in vs.iter().enumerate() {
                let id = (c * 20_000 + i + 1) as i64;
                let lat = 45.0 + 10.0 * rng.uniform() as f64;
                let lon = 20.0 * rng.uniform() as f64;
                let heading = 360.0 * rng.uniform() as f64;
                r.execute(rusqlite::params![
                    id,
                    lat,
                    lon,
                    heading,
                    format!("synthetic/{id}"),
                    "CC0",
                    preview
                ])
                .unwrap();
                d.execute(rusqlite::params![id, encode_vector(v, true)])
                    .unwrap();
            }
        }
        tx.commit().unwrap();
    }
    let manifest = Manifest {
        name: "synthetic".into(),
        version: "1".into(),
        bbox: [45.0, 0.0, 55.0, 20.0],
        count: s.n as u64,
        licence: "CC0".into(),
        attribution: "synthetic benchmark data".into(),
        created_at: "2026-11-25T00:00:00Z".into(),
        model_name: model.card.name.clone(),
        model_sha256: model.hash.clone(),
        descriptor_dim: s.dim,
        descriptor_type: "f16".into(),
        has_images: false,
        format_version: FORMAT_VERSION,
    };
    manifest.write(&conn).unwrap();
    drop(conn);
    let bytes = std::fs::metadata(&file).unwrap().len();
    println!(
        "database: {} references x {}-d f16, {}-byte preview each: {:.2} GB ({:.0} bytes per reference); vectors generated in {:.0} s, written in {:.0} s",
        s.n,
        s.dim,
        preview.len(),
        bytes as f64 / 1e9,
        bytes as f64 / s.n as f64,
        gen_s,
        t.elapsed().as_secs_f64()
    );
}

/// Phase 2: install the file into a fresh catalog.
fn install(s: &Setup) {
    let catalog_path = s.catalog();
    for p in [
        catalog_path.clone(),
        PathBuf::from(format!("{}-wal", catalog_path.display())),
        PathBuf::from(format!("{}-shm", catalog_path.display())),
    ] {
        let _ = std::fs::remove_file(p);
    }
    let _ = std::fs::remove_dir_all(format!("{}.refdbs", catalog_path.display()));
    let catalog = pinpoint::Catalog::open(&catalog_path).unwrap();
    let model = pinpoint::model::LoadedModel::load(
        &pinpoint::model::default_model_path(),
        &candle_core::Device::Cpu,
    )
    .unwrap();
    // The install moves the file it is given into place: give it a copy.
    let copy = s.dir.join("to-install.pinpointdb");
    std::fs::copy(s.db_file(), &copy).unwrap();
    let rss0 = status_mb("VmRSS");
    let stages = std::sync::Mutex::new(Vec::<(String, Instant)>::new());
    let sink = |u: &ProgressUpdate| {
        let mut st = stages.lock().unwrap();
        if st.last().map(|l| &l.0) != Some(&u.stage) {
            st.push((u.stage.clone(), Instant::now()));
        }
    };
    let t = Instant::now();
    let report = pinpoint::refdb::install(
        &catalog,
        &pinpoint::refdb::InstallSource::File(copy),
        &model,
        &sink,
        &CancelToken::new(),
    )
    .unwrap();
    let end = Instant::now();
    let total = (end - t).as_secs_f64();
    let st = stages.into_inner().unwrap();
    let mut parts = Vec::new();
    for (i, (name, at)) in st.iter().enumerate() {
        let next = st.get(i + 1).map(|x| x.1).unwrap_or(end);
        parts.push(format!("{name} {:.1} s", (next - *at).as_secs_f64()));
    }
    let index_dir = report.installed.index_path.clone();
    let index_bytes: u64 = index_dir
        .as_ref()
        .map(|d| {
            walkdir::WalkDir::new(d)
                .into_iter()
                .filter_map(|e| e.ok())
                .filter_map(|e| e.metadata().ok())
                .map(|m| m.len())
                .sum()
        })
        .unwrap_or(0);
    println!(
        "install: {total:.0} s ({}); search: {}; index files {:.2} GB; peak resident {:.0} MB (model {:.0} MB before)",
        parts.join(", "),
        report.index,
        index_bytes as f64 / 1e9,
        status_mb("VmHWM"),
        rss0
    );
}

/// Phase 3: query the installed database the way `propose` does.
fn query(s: &Setup) {
    let raw = std::fs::read(s.queries_file()).unwrap();
    let qs: Vec<Vec<f32>> = raw
        .chunks_exact(s.dim * 4)
        .map(|c| {
            c.chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect()
        })
        .collect();
    let base = (status_mb("VmRSS"), status_mb("RssAnon"));
    let t = Instant::now();
    let catalog = pinpoint::Catalog::open(&s.catalog()).unwrap();
    let model_hash = catalog.refdbs().unwrap()[0].model_hash.clone();
    let sets = pinpoint::refdb::reference_sets(&catalog, &model_hash).unwrap();
    let set = &sets[0];
    let open_s = t.elapsed().as_secs_f64();
    let mem = |label: &str| {
        println!(
            "  resident {label}: {:.0} MB ({:.0} MB anonymous, {:.0} MB file-backed pages of the index and database)",
            status_mb("VmRSS") - base.0,
            status_mb("RssAnon") - base.1,
            status_mb("RssFile")
        );
    };
    println!(
        "query: opened {} ({} references, {} search) in {:.2} s",
        set.name,
        set.len(),
        set.index.kind(),
        open_s
    );
    mem("after opening");
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let mut times = Vec::with_capacity(qs.len());
    let mut found: Vec<Vec<Neighbor>> = Vec::with_capacity(qs.len());
    pool.install(|| {
        for q in &qs {
            let t = Instant::now();
            let hits = set.index.search(std::slice::from_ref(q), 10).remove(0);
            // What a proposal does with the hits: look each reference up.
            let located = hits.iter().filter_map(|h| set.refs.get(h.id)).count();
            assert_eq!(located, hits.len());
            times.push(t.elapsed().as_secs_f64() * 1000.0);
            found.push(hits);
        }
    });
    let first: f64 =
        times[..times.len().min(100)].iter().sum::<f64>() / times.len().min(100) as f64;
    let mut sorted = times.clone();
    sorted.sort_by(f64::total_cmp);
    let mean = times.iter().sum::<f64>() / times.len() as f64;
    println!(
        "  {} queries, one thread: mean {mean:.3} ms (first 100, cold pages: {first:.3} ms), p50 {:.3}, p99 {:.3}, max {:.3} ms",
        times.len(),
        sorted[sorted.len() / 2],
        sorted[sorted.len() * 99 / 100],
        sorted[sorted.len() - 1]
    );
    mem("after the queries");
    println!(
        "  peak resident of this process: {:.0} MB",
        status_mb("VmHWM")
    );

    // Recall@10 against exact search over the stored descriptors (streamed, not kept).
    let nq = qs.len().min(200);
    let db =
        pinpoint::refdb::format::RefDb::open_installed(&catalog.refdbs().unwrap()[0].path).unwrap();
    let mut best: Vec<Vec<(f32, i64)>> = vec![Vec::new(); nq];
    let mut stmt = db
        .connection()
        .prepare("SELECT id, vector FROM descriptors ORDER BY id")
        .unwrap();
    let mut rows = stmt.query([]).unwrap();
    while let Some(r) = rows.next().unwrap() {
        let id: i64 = r.get(0).unwrap();
        let v =
            pinpoint::refdb::format::decode_vector(r.get_ref(1).unwrap().as_blob().unwrap(), true);
        for (qi, q) in qs[..nq].iter().enumerate() {
            let sim = pinpoint::index::flat::dot(q, &v);
            let b = &mut best[qi];
            if b.len() < 10 || sim > b[b.len() - 1].0 {
                b.push((sim, id));
                b.sort_by(|a, c| c.0.total_cmp(&a.0));
                b.truncate(10);
            }
        }
    }
    let mut hit = 0;
    for (f, t) in found.iter().zip(&best) {
        hit += f.iter().filter(|n| t.iter().any(|x| x.1 == n.id)).count();
    }
    println!(
        "  recall@10 against exact search ({nq} queries): {:.4}",
        hit as f64 / (10 * nq) as f64
    );
}

fn main() {
    let s = Setup::from_args();
    match arg("--phase").as_deref() {
        Some("write") => return write(&s),
        Some("install") => return install(&s),
        Some("query") => return query(&s),
        _ => {}
    }
    let me = std::env::current_exe().unwrap();
    let forward: Vec<String> = ["--n", "--dim", "--queries"]
        .iter()
        .filter_map(|a| arg(a).map(|v| [a.to_string(), v]))
        .flatten()
        .collect();
    for phase in ["write", "install", "query"] {
        if phase == "write" && s.db_file().exists() && s.queries_file().exists() {
            println!("(reusing {})", s.db_file().display());
            continue;
        }
        let status = Command::new(&me)
            .args(["--phase", phase])
            .args(&forward)
            .status()
            .unwrap();
        assert!(status.success(), "phase {phase} failed");
        std::io::stdout().flush().unwrap();
    }
}
