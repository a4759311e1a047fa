//! Model benchmark: the network (VGG16 conv5_3 -> NetVLAD -> whitening) at 640x480 and 224x224,
//! batch 1 and 4, in Candle and in ONNX Runtime (the same weights exported to ONNX by
//! benches/model_ort.py), same thread count. Reports images/s, peak memory and the ratio.
//! Each configuration runs in its own process so that peak memory is its own.
//!
//!     cargo bench --bench model -- [--model DIR] [--runs 3] [--threads 2] [--no-ort]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use pinpoint::model::{default_model_path, LoadedModel};

mod common;
use common::{arg, peak_rss_mb};

const CONFIGS: [(usize, usize, usize); 4] =
    [(640, 480, 1), (640, 480, 4), (224, 224, 1), (224, 224, 4)];

/// Child mode: time one configuration, print "images_per_s peak_mb".
fn run_one(model: &std::path::Path, w: usize, h: usize, b: usize, runs: usize) {
    let m = LoadedModel::load(model, &Device::Cpu).unwrap();
    let x = Tensor::randn(0f32, 60.0, (b, 3, h, w), &Device::Cpu).unwrap();
    let _ = m.net.forward(&x).unwrap(); // warm-up
    let t = Instant::now();
    for _ in 0..runs {
        let out = m.net.forward(&x).unwrap();
        let _ = out
            .descriptor
            .to_dtype(DType::F32)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
    }
    let secs = t.elapsed().as_secs_f64();
    println!("{} {}", (runs * b) as f64 / secs, peak_rss_mb());
}

fn main() {
    let model = arg("--model")
        .map(PathBuf::from)
        .unwrap_or_else(default_model_path);
    let runs: usize = arg("--runs").and_then(|v| v.parse().ok()).unwrap_or(3);
    if let Some(cfg) = arg("--child") {
        let v: Vec<usize> = cfg.split(',').map(|x| x.parse().unwrap()).collect();
        run_one(&model, v[0], v[1], v[2], runs);
        return;
    }
    let threads = arg("--threads").unwrap_or_else(|| {
        std::thread::available_parallelism()
            .map(|n| n.get())
            .unwrap_or(2)
            .to_string()
    });
    let with_ort = !std::env::args().any(|a| a == "--no-ort");
    let exe = std::env::current_exe().unwrap();
    println!(
        "model {} ; {} threads ; {} runs per configuration",
        model.display(),
        threads,
        runs
    );
    println!(
        "{:<14} {:>12} {:>10} {:>12} {:>10} {:>14}",
        "input x batch", "candle img/s", "peak MB", "ort img/s", "peak MB", "candle/ort time"
    );
    for (w, h, b) in CONFIGS {
        let out = Command::new(&exe)
            .args([
                "--child",
                &format!("{w},{h},{b}"),
                "--model",
                model.to_str().unwrap(),
                "--runs",
                &runs.to_string(),
            ])
            .env("RAYON_NUM_THREADS", &threads)
            .output()
            .unwrap();
        let text = String::from_utf8_lossy(&out.stdout);
        let c: Vec<f64> = text
            .split_whitespace()
            .filter_map(|v| v.parse().ok())
            .collect();
        if c.len() < 2 {
            println!(
                "{w}x{h} x{b}: candle run failed: {}",
                String::from_utf8_lossy(&out.stderr)
            );
            continue;
        }
        let ort: Vec<f64> = if with_ort {
            let script = concat!(env!("CARGO_MANIFEST_DIR"), "/benches/model_ort.py");
            let o = Command::new("python3")
                .args([
                    script,
                    model.to_str().unwrap(),
                    &w.to_string(),
                    &h.to_string(),
                    &b.to_string(),
                    &runs.to_string(),
                    &threads,
                ])
                .output();
            match o {
                Ok(o) if o.status.success() => String::from_utf8_lossy(&o.stdout)
                    .split_whitespace()
                    .filter_map(|v| v.parse().ok())
                    .collect(),
                Ok(o) => {
                    eprintln!(
                        "onnxruntime run failed: {}",
                        String::from_utf8_lossy(&o.stderr)
                    );
                    vec![]
                }
                Err(e) => {
                    eprintln!("python3: {e}");
                    vec![]
                }
            }
        } else {
            vec![]
        };
        let (ort_rate, ort_mb) = (ort.first().copied(), ort.get(1).copied());
        println!(
            "{:<14} {:>12.3} {:>10.0} {:>12} {:>10} {:>14}",
            format!("{w}x{h} x{b}"),
            c[0],
            c[1],
            ort_rate.map(|r| format!("{r:.3}")).unwrap_or("-".into()),
            ort_mb.map(|m| format!("{m:.0}")).unwrap_or("-".into()),
            ort_rate
                .map(|r| format!("{:.2}x", r / c[0]))
                .unwrap_or("-".into()),
        );
    }
}
