//! Index benchmark: exact search against HNSW (hnsw_rs, as Pinpoint configures it) and hnswlib
//! (PyPI) on the same vectors: build time, memory, query latency and recall@10 against exact
//! search for several `ef`.
//!
//! Vectors: "clustered" are shaped like place descriptors — unit vectors around 2,000 centres in a
//! 64-dimensional subspace, with a little noise in every dimension (low intrinsic dimension, real
//! neighbourhoods); "uniform" are uniform random unit vectors (no neighbourhood structure: a worst
//! case, reported, not targeted).
//!
//!     cargo bench --bench index -- [--n 100000] [--dim 512] [--kind clustered|uniform] [--no-hnswlib]
//!     cargo bench --bench index -- --crossover      (exact vs HNSW latency from 1k to 200k)

use std::path::Path;
use std::process::Command;
use std::time::Instant;

use pinpoint::index::{ExactIndex, HnswIndex, HnswParams, Neighbor};

mod common;
use common::{arg, rss_mb, vectors};

fn flag(name: &str) -> bool {
    std::env::args().any(|a| a == name)
}

fn recall_at_10(found: &[Vec<Neighbor>], truth: &[Vec<Neighbor>]) -> f64 {
    let mut hit = 0;
    for (f, t) in found.iter().zip(truth) {
        let want: std::collections::HashSet<i64> = t.iter().take(10).map(|n| n.id).collect();
        hit += f.iter().take(10).filter(|n| want.contains(&n.id)).count();
    }
    hit as f64 / (10 * truth.len()) as f64
}

/// Single-query latency (one thread), in milliseconds per query.
fn latency_ms(
    search: impl Fn(&[Vec<f32>]) -> Vec<Vec<Neighbor>> + Sync,
    queries: &[Vec<f32>],
) -> f64 {
    let pool = rayon::ThreadPoolBuilder::new()
        .num_threads(1)
        .build()
        .unwrap();
    let t = Instant::now();
    pool.install(|| {
        for q in queries {
            let _ = search(std::slice::from_ref(q));
        }
    });
    t.elapsed().as_secs_f64() * 1000.0 / queries.len() as f64
}

fn crossover(dim: usize) {
    println!("exact vs HNSW (M 24, ef 128), {dim}-d clustered, one thread, ms per query:");
    println!(
        "{:>8} {:>10} {:>10} {:>10}",
        "n", "exact", "exact/100", "hnsw"
    );
    for n in [1_000, 5_000, 10_000, 20_000, 50_000, 100_000, 200_000] {
        let (db, qs) = vectors("clustered", n, 200, dim, 7);
        let items: Vec<(i64, Vec<f32>)> = db
            .into_iter()
            .enumerate()
            .map(|(i, v)| (i as i64, v))
            .collect();
        let exact = ExactIndex::with_vectors(dim, items.iter().cloned());
        let one = latency_ms(|q| exact.search(q, 10), &qs[..50]);
        // Batched: 100 queries per call (a propose run over many photos).
        let pool = rayon::ThreadPoolBuilder::new()
            .num_threads(1)
            .build()
            .unwrap();
        let t = Instant::now();
        pool.install(|| exact.search(&qs[..100], 10));
        let batched = t.elapsed().as_secs_f64() * 1000.0 / 100.0;
        let hnsw = HnswIndex::build(dim, &items, HnswParams::default(), "bench").unwrap();
        let h = latency_ms(|q| hnsw.search(q, 10), &qs);
        println!("{n:>8} {one:>10.3} {batched:>10.3} {h:>10.3}");
    }
}

fn main() {
    let dim: usize = arg("--dim").and_then(|v| v.parse().ok()).unwrap_or(512);
    if flag("--crossover") {
        crossover(dim);
        return;
    }
    let n: usize = arg("--n").and_then(|v| v.parse().ok()).unwrap_or(100_000);
    let kind = arg("--kind").unwrap_or_else(|| "clustered".into());
    let nq = 1000;
    let work = Path::new(env!("CARGO_MANIFEST_DIR")).join("target/bench-data");
    std::fs::create_dir_all(&work).unwrap();
    let t = Instant::now();
    let (db, qs) = vectors(&kind, n, nq, dim, 42);
    println!(
        "{kind} {n} x {dim} vectors, {nq} queries (generated in {:.1} s)",
        t.elapsed().as_secs_f64()
    );
    let items: Vec<(i64, Vec<f32>)> = db
        .iter()
        .cloned()
        .enumerate()
        .map(|(i, v)| (i as i64, v))
        .collect();

    // Exact ground truth.
    let exact = ExactIndex::with_vectors(dim, items.iter().cloned());
    let t = Instant::now();
    let truth = exact.search(&qs, 10);
    let exact_batched = t.elapsed().as_secs_f64() * 1000.0 / nq as f64;
    let exact_one = latency_ms(|q| exact.search(q, 10), &qs[..50]);
    println!(
        "exact: {exact_one:.3} ms/query alone, {exact_batched:.3} ms/query in batches (2 threads)"
    );

    // hnsw_rs
    let rss0 = rss_mb();
    let t = Instant::now();
    let defaults = HnswParams::default();
    let params = HnswParams {
        max_connections: arg("--m")
            .and_then(|v| v.parse().ok())
            .unwrap_or(defaults.max_connections),
        ef_construction: arg("--efc")
            .and_then(|v| v.parse().ok())
            .unwrap_or(defaults.ef_construction),
        ef_search: 128,
    };
    let mut hnsw = HnswIndex::build(dim, &items, params, "bench").unwrap();
    let build_s = t.elapsed().as_secs_f64();
    let mem = rss_mb() - rss0;
    println!(
        "hnsw_rs: M {} efc {}: built in {build_s:.1} s ({:.0} inserts/s), +{mem:.0} MB resident",
        params.max_connections,
        params.ef_construction,
        n as f64 / build_s
    );
    let dir = work.join("index-bench");
    let t = Instant::now();
    hnsw.save(&dir, "bench").unwrap();
    let save_s = t.elapsed().as_secs_f64();
    let t = Instant::now();
    let reloaded = HnswIndex::load(&dir, "bench").unwrap();
    println!(
        "  saved in {save_s:.1} s, reloaded in {:.1} s ({} points)",
        t.elapsed().as_secs_f64(),
        reloaded.len()
    );
    drop(reloaded);
    println!(
        "{:>6} {:>10} {:>12} {:>12}",
        "ef", "recall@10", "ms/query", "queries/s(2t)"
    );
    for ef in [16, 32, 64, 128, 256, 512] {
        hnsw.set_ef_search(ef);
        let found = hnsw.search(&qs, 10);
        let r = recall_at_10(&found, &truth);
        let ms = latency_ms(|q| hnsw.search(q, 10), &qs);
        let t = Instant::now();
        let _ = hnsw.search(&qs, 10);
        let qps = nq as f64 / t.elapsed().as_secs_f64();
        println!("{ef:>6} {r:>10.4} {ms:>12.3} {qps:>12.0}");
    }

    if !flag("--no-hnswlib") {
        let file = work.join(format!("vectors-{kind}-{n}-{dim}.f32"));
        let mut bytes = Vec::with_capacity((n + nq) * dim * 4);
        for v in db.iter().chain(&qs) {
            for x in v {
                bytes.extend_from_slice(&x.to_le_bytes());
            }
        }
        std::fs::write(&file, bytes).unwrap();
        let truth_file = work.join(format!("truth-{kind}-{n}-{dim}.json"));
        let ids: Vec<Vec<i64>> = truth
            .iter()
            .map(|t| t.iter().map(|n| n.id).collect())
            .collect();
        std::fs::write(&truth_file, serde_json::to_vec(&ids).unwrap()).unwrap();
        let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/index_hnswlib.py");
        let out = Command::new("python3")
            .args([
                script,
                file.to_str().unwrap(),
                truth_file.to_str().unwrap(),
                &n.to_string(),
                &nq.to_string(),
                &dim.to_string(),
                &params.max_connections.to_string(),
                &params.ef_construction.to_string(),
            ])
            .output()
            .expect("python3");
        print!("{}", String::from_utf8_lossy(&out.stdout));
        if !out.status.success() {
            eprintln!(
                "hnswlib run failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        let _ = std::fs::remove_file(&file);
    }
}
