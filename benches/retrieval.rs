//! Retrieval quality of a model on the shared place sets, for several whitening dimensions: the
//! measurement behind the default model's descriptor size.
//!
//! NetVLAD vectors are computed once per image; each dimension d keeps the first d rows of the
//! model's whitening (the leading principal components), so one 4096-d model answers for 256 ...
//! 4096. "none" is the raw 32768-d NetVLAD vector.
//!
//!     cargo bench --bench retrieval -- [--model DIR] [--dims 256,512,1024,2048,4096]

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{Device, Tensor};
use pinpoint::eval::{exact_top_k, score, Dataset, Truth};
use pinpoint::model::describe::{describe_paths, DescribeJob, DescribeOptions};
use pinpoint::model::{default_model_path, LoadedModel, Stage};
use pinpoint::progress::{CancelToken, NoProgress};

mod common;
use common::arg;

fn shared() -> PathBuf {
    std::env::var_os("PINPOINT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| Path::new(env!("CARGO_MANIFEST_DIR")).join("../shared"))
        .join("data")
}

/// NetVLAD vectors of `paths`, cached on disk by model hash and path.
fn netvlads(
    model: &LoadedModel,
    paths: &[PathBuf],
    cache: &mut HashMap<PathBuf, Vec<f32>>,
) -> Vec<Vec<f32>> {
    let missing: Vec<DescribeJob> = paths
        .iter()
        .filter(|p| !cache.contains_key(*p))
        .map(|p| DescribeJob {
            path: p.clone(),
            orientation: None,
        })
        .collect();
    if !missing.is_empty() {
        let opts = DescribeOptions {
            stage: Stage::NetVlad,
            ..Default::default()
        };
        let results =
            describe_paths(model, &missing, &opts, &NoProgress, &CancelToken::new()).unwrap();
        for (job, r) in missing.iter().zip(results) {
            cache.insert(job.path.clone(), r.unwrap_or_else(|e| panic!("{e}")));
        }
    }
    paths.iter().map(|p| cache[p].clone()).collect()
}

fn project(vlads: &[Vec<f32>], mean: &Tensor, weight: Option<&Tensor>) -> Vec<Vec<f32>> {
    let Some(w) = weight else {
        return vlads.to_vec();
    };
    let n = vlads.len();
    let x = Tensor::from_vec(vlads.concat(), (n, vlads[0].len()), &Device::Cpu).unwrap();
    let y = x
        .broadcast_sub(mean)
        .unwrap()
        .matmul(&w.t().unwrap())
        .unwrap();
    let norm = y.sqr().unwrap().sum_keepdim(1).unwrap().sqrt().unwrap();
    y.broadcast_div(&norm).unwrap().to_vec2().unwrap()
}

fn ie_tower() -> Dataset {
    let root = shared().join("places/ie-tower-sample");
    let (mut q, mut d, mut ql, mut dl) = (vec![], vec![], vec![], vec![]);
    for (path, floor, is_query) in common::ie_tower_frames(&root) {
        if is_query {
            q.push(path);
            ql.push(floor);
        } else {
            d.push(path);
            dl.push(floor);
        }
    }
    Dataset {
        name: "ie-tower (floor)".into(),
        queries: q,
        database: d,
        truth: Truth::Labels {
            queries: ql,
            database: dl,
        },
        database_areas: None,
    }
}

/// The same-place sets and distractors: every photo of a set should outrank every distractor.
fn sanity_sets() -> (Vec<(&'static str, Vec<PathBuf>)>, Vec<PathBuf>) {
    let places = shared().join("places");
    let list = |dir: &Path| {
        let mut v: Vec<PathBuf> = std::fs::read_dir(dir)
            .unwrap()
            .filter_map(|e| e.ok())
            .map(|e| e.path())
            .filter(|p| matches!(p.extension().and_then(|e| e.to_str()), Some("jpg" | "png")))
            .collect();
        v.sort();
        v
    };
    let sets = vec![
        ("berlin", list(&places.join("berlin-triplet"))),
        ("tokyo", list(&places.join("tokyo-pair"))),
        ("sacre-coeur", list(&places.join("sacre-coeur"))),
    ];
    let exif = shared().join("exif");
    let mut distractors: Vec<PathBuf> = walkdir::WalkDir::new(&exif)
        .into_iter()
        .filter_map(|e| e.ok())
        .map(|e| e.into_path())
        .filter(|p| p.extension().is_some_and(|e| e.eq_ignore_ascii_case("jpg")))
        .filter(|p| image::image_dimensions(p).is_ok_and(|(w, h)| w.min(h) >= 200))
        .collect();
    distractors.sort();
    (sets, distractors)
}

fn main() {
    let model_path = arg("--model")
        .map(PathBuf::from)
        .unwrap_or_else(default_model_path);
    let model = LoadedModel::load(&model_path, &Device::Cpu).unwrap();
    let whiten = model.net.whiten.as_ref().expect("a model with whitening");
    let max_dim = whiten.output_dim();
    let dims: Vec<usize> = arg("--dims")
        .map(|s| s.split(',').map(|v| v.parse().unwrap()).collect())
        .unwrap_or_else(|| {
            [256, 512, 1024, 2048, 4096]
                .into_iter()
                .filter(|&d| d <= max_dim)
                .collect()
        });
    let cache_file = Path::new(env!("CARGO_MANIFEST_DIR")).join(format!(
        "target/bench-data/netvlad-{}.json",
        &model.hash[..16]
    ));
    let mut cache: HashMap<PathBuf, Vec<f32>> = std::fs::read(&cache_file)
        .ok()
        .and_then(|b| serde_json::from_slice(&b).ok())
        .unwrap_or_default();

    let corridor = Dataset::from_vpr_bench(&shared().join("places/corridor")).unwrap();
    let tower = ie_tower();
    let (sets, distractors) = sanity_sets();
    let mut all: Vec<PathBuf> = corridor
        .queries
        .iter()
        .chain(&corridor.database)
        .chain(&tower.queries)
        .chain(&tower.database)
        .cloned()
        .collect();
    for (_, s) in &sets {
        all.extend(s.iter().cloned());
    }
    all.extend(distractors.iter().cloned());
    let t = std::time::Instant::now();
    netvlads(&model, &all, &mut cache);
    eprintln!(
        "NetVLAD vectors of {} images ready in {:.0} s",
        all.len(),
        t.elapsed().as_secs_f64()
    );
    std::fs::create_dir_all(cache_file.parent().unwrap()).unwrap();
    std::fs::write(&cache_file, serde_json::to_vec(&cache).unwrap()).unwrap();

    // A model built with eps 0 has rows U_i / sqrt(lambda_i): lambda_i = 1 / |row|^2, so other
    // regularisers can be tried without rebuilding: rows scaled by sqrt(lambda / (lambda + eps)),
    // with eps relative to the mean eigenvalue of the kept components.
    let eps_rel: Vec<f64> = arg("--eps")
        .map(|s| s.split(',').map(|v| v.parse().unwrap()).collect())
        .unwrap_or(vec![0.0]);
    let lambdas: Vec<f64> = whiten
        .weight()
        .sqr()
        .unwrap()
        .sum(1)
        .unwrap()
        .to_vec1::<f32>()
        .unwrap()
        .iter()
        .map(|n| 1.0 / *n as f64)
        .collect();
    println!("model {} ({})", model_path.display(), &model.hash[..16]);
    println!(
        "{:>6} {:>6}  {:>18}  {:>18}  {:>18}  {:>12}",
        "dim", "eps", "corridor R@1/R@5", "ie-tower R@1/R@5", "sanity pairs", "mean rank"
    );
    // (dimension, eps, database stored as f16 as reference databases store it)
    let mut options: Vec<(Option<usize>, f64, bool)> = dims
        .iter()
        .flat_map(|&d| eps_rel.iter().map(move |&e| (Some(d), e, false)))
        .collect();
    options.push((Some(max_dim), eps_rel[0], true));
    options.push((None, 0.0, false));
    for (d, e, f16) in options {
        let w = d.map(|d| {
            let mean_l = lambdas[..d].iter().sum::<f64>() / d as f64;
            let scale: Vec<f32> = lambdas[..d]
                .iter()
                .map(|l| (l / (l + e * mean_l)).sqrt() as f32)
                .collect();
            let scale = Tensor::from_vec(scale, (d, 1), &Device::Cpu).unwrap();
            whiten
                .weight()
                .narrow(0, 0, d)
                .unwrap()
                .broadcast_mul(&scale)
                .unwrap()
        });
        let run = |ds: &Dataset| {
            let q = project(&get(&cache, &ds.queries), whiten.mean(), w.as_ref());
            let mut db = project(&get(&cache, &ds.database), whiten.mean(), w.as_ref());
            if f16 {
                for v in &mut db {
                    v.iter_mut()
                        .for_each(|x| *x = half::f16::from_f32(*x).to_f32());
                }
            }
            let ranked: Vec<Vec<usize>> = exact_top_k(&q, &db, 20)
                .into_iter()
                .map(|l| l.into_iter().map(|x| x.0).collect())
                .collect();
            score(ds, &ranked, "exact")
        };
        let c = run(&corridor);
        let i = run(&tower);
        // Sanity: for each query of a set, each other member must outrank every distractor.
        let dist = project(&get(&cache, &distractors), whiten.mean(), w.as_ref());
        let (mut ok, mut total, mut rank_sum) = (0, 0, 0.0);
        for (_, members) in &sets {
            let mut m = project(&get(&cache, members), whiten.mean(), w.as_ref());
            let mut dist = dist.clone();
            if f16 {
                for v in m.iter_mut().chain(dist.iter_mut()) {
                    v.iter_mut()
                        .for_each(|x| *x = half::f16::from_f32(*x).to_f32());
                }
            }
            for (qi, q) in m.iter().enumerate() {
                let best_distractor = dist.iter().map(|x| dot(q, x)).fold(f32::MIN, f32::max);
                for (pi, p) in m.iter().enumerate() {
                    if pi == qi {
                        continue;
                    }
                    total += 1;
                    let s = dot(q, p);
                    if s > best_distractor {
                        ok += 1;
                    }
                    rank_sum += 1.0 + dist.iter().filter(|x| dot(q, x) > s).count() as f64;
                }
            }
        }
        println!(
            "{:>6} {:>6}  {:>8.3} / {:<7.3}  {:>8.3} / {:<7.3}  {:>10}/{:<6}  {:>12.2}",
            d.map(|d| format!("{d}{}", if f16 { " f16" } else { "" }))
                .unwrap_or("none".into()),
            e,
            c.recall["1"],
            c.recall["5"],
            i.recall["1"],
            i.recall["5"],
            ok,
            total,
            rank_sum / total as f64
        );
    }
}

fn get(cache: &HashMap<PathBuf, Vec<f32>>, paths: &[PathBuf]) -> Vec<Vec<f32>> {
    paths.iter().map(|p| cache[p].clone()).collect()
}

fn dot(a: &[f32], b: &[f32]) -> f32 {
    a.iter().zip(b).map(|(x, y)| x * y).sum()
}
