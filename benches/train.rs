//! Training-step benchmark: one step of `pinpoint train` (forward, within-batch mining, the
//! symmetric margin loss, backward, SGD) on real IE-tower frames at 640x480 and 224x224, with the
//! backbone frozen (CRN + NetVLAD train over cached conv5_3 features, the default) and with conv5
//! trainable (conv5_1..5_3 run forward and backward in every step, over cached pool4 features).
//! Reports seconds per step and peak memory; each configuration runs in its own process so that
//! peak memory is its own. With `--device cuda` (a `--features cuda` build) the step runs on the
//! GPU and the memory column is the GPU memory in use at the step's peak (sampled from the driver
//! every 2 ms, less what was in use before the model loaded).
//!
//!     cargo bench --bench train -- [--steps 5] [--queries 4] [--extra 8] [--only WxH] [--device cpu|cuda]

use std::path::PathBuf;
use std::process::Command;
use std::time::Instant;

use candle_core::{DType, Device, Tensor};
use pinpoint::model::build::Rng;
use pinpoint::model::device::{self, DeviceChoice};
use pinpoint::model::{default_model_path, LoadedModel};
use pinpoint::train::mining::{Places, Thresholds};
use pinpoint::train::optim::Optimizer;
use pinpoint::train::{training_step, Stage, StepData, TrainOptions, TrainableAggregation};

mod common;
use common::{arg, peak_rss_mb};

/// IE-tower frames (path, floor), a spread of each floor.
fn frames(per_floor: usize) -> Vec<(PathBuf, String)> {
    let root = std::env::var_os("PINPOINT_SHARED")
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("../shared"))
        .join("data/places/ie-tower-sample");
    let mut by_floor: std::collections::BTreeMap<String, Vec<PathBuf>> = Default::default();
    for (path, floor, is_query) in common::ie_tower_frames(&root) {
        if !is_query {
            by_floor.entry(floor).or_default().push(path);
        }
    }
    by_floor
        .into_iter()
        .flat_map(|(floor, paths)| {
            let step = (paths.len() / per_floor).max(1);
            paths
                .into_iter()
                .step_by(step)
                .take(per_floor)
                .map(move |p| (p, floor.clone()))
        })
        .collect()
}

/// Child mode: time one configuration, print "seconds_per_step peak_mb images_per_step".
fn run_one(w: u32, h: u32, conv5: bool, steps: usize, queries: usize, extra: usize) {
    let choice: DeviceChoice = arg("--device")
        .unwrap_or_else(|| "cpu".into())
        .parse()
        .unwrap();
    let device = device::select(choice).unwrap();
    let gpu = GpuPeak::start(&device);
    let model = LoadedModel::load(&default_model_path(), &device).unwrap();
    let frames = frames(8);
    let frozen: Vec<Tensor> = frames
        .iter()
        .map(|(p, _)| {
            let img = image::open(p).unwrap().to_rgb8();
            let img = image::imageops::resize(&img, w, h, image::imageops::FilterType::Triangle);
            let x = pinpoint::model::describe::batch_tensor(&[&img], &device).unwrap();
            if conv5 {
                model.net.backbone.pool4(&x).unwrap()
            } else {
                model.net.features(&x).unwrap()
            }
        })
        .collect();
    let places = Places::Labels {
        labels: frames.iter().map(|(_, f)| f.clone()).collect(),
        areas: None,
    };
    let t = Thresholds::default();
    let trainable = places.trainable(&t, None);
    let mut rng = Rng::new(1);
    let agg = TrainableAggregation::from_model(&model, &mut rng, DType::F32, conv5).unwrap();
    let opts = TrainOptions {
        queries,
        extra,
        ..Default::default()
    };
    let mut optimizer = Optimizer::new(
        agg.params(opts.crn_lr_mult),
        opts.momentum,
        opts.weight_decay,
    );
    let frozen: Vec<&Tensor> = frozen.iter().collect();
    let data = StepData {
        places: &places,
        thresholds: &t,
        verified: None,
        trainable: &trainable,
        frozen: &frozen,
    };
    let mut images = 0;
    // The step `pinpoint train` takes.
    let mut step = |rng: &mut Rng| {
        training_step(&agg, &mut optimizer, &data, &opts, Stage::All, rng)
            .unwrap()
            .1
    };
    step(&mut rng); // warm-up
    device.synchronize().unwrap();
    let started = Instant::now();
    for _ in 0..steps {
        images += step(&mut rng);
    }
    device.synchronize().unwrap();
    let secs = started.elapsed().as_secs_f64() / steps as f64;
    let peak = match gpu {
        Some(sampler) => sampler.stop(),
        None => peak_rss_mb(),
    };
    println!("{secs} {peak} {}", images as f64 / steps as f64);
}

/// Peak GPU memory in use, sampled from the driver on a second thread.
struct GpuPeak {
    stop: std::sync::Arc<std::sync::atomic::AtomicBool>,
    thread: std::thread::JoinHandle<f64>,
}

impl GpuPeak {
    fn start(device: &Device) -> Option<GpuPeak> {
        if device.is_cpu() {
            return None;
        }
        let used = |d: &Device| {
            device::memory(d)
                .map(|m| (m.total_bytes - m.available_bytes) as f64 / (1 << 20) as f64)
                .unwrap_or(0.0)
        };
        let before = used(device);
        let stop = std::sync::Arc::new(std::sync::atomic::AtomicBool::new(false));
        let (d, flag) = (device.clone(), stop.clone());
        let thread = std::thread::spawn(move || {
            let mut peak = 0f64;
            while !flag.load(std::sync::atomic::Ordering::Relaxed) {
                peak = peak.max(used(&d) - before);
                std::thread::sleep(std::time::Duration::from_millis(2));
            }
            peak
        });
        Some(GpuPeak { stop, thread })
    }

    fn stop(self) -> f64 {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        self.thread.join().unwrap()
    }
}

fn main() {
    let steps: usize = arg("--steps").and_then(|v| v.parse().ok()).unwrap_or(5);
    let queries: usize = arg("--queries").and_then(|v| v.parse().ok()).unwrap_or(4);
    let extra: usize = arg("--extra").and_then(|v| v.parse().ok()).unwrap_or(8);
    if let Some(cfg) = arg("--child") {
        let v: Vec<u32> = cfg.split(',').map(|x| x.parse().unwrap()).collect();
        run_one(v[0], v[1], v[2] == 1, steps, queries, extra);
        return;
    }
    let only = arg("--only");
    let memory = if arg("--device").is_some_and(|d| d != "cpu") {
        "peak GPU MB"
    } else {
        "peak MB"
    };
    println!("| input | trains | s/step | images/step | {memory} |\n|---|---|---|---|---|");
    for (w, h) in [(640u32, 480u32), (224, 224)] {
        if only.as_deref().is_some_and(|o| o != format!("{w}x{h}")) {
            continue;
        }
        for conv5 in [false, true] {
            let out = Command::new(std::env::current_exe().unwrap())
                .args([
                    "--child",
                    &format!("{w},{h},{}", conv5 as u8),
                    "--steps",
                    &steps.to_string(),
                    "--queries",
                    &queries.to_string(),
                    "--extra",
                    &extra.to_string(),
                    "--device",
                    &arg("--device").unwrap_or_else(|| "cpu".into()),
                ])
                .output()
                .unwrap();
            let text = String::from_utf8_lossy(&out.stdout);
            let v: Vec<f64> = text
                .split_whitespace()
                .filter_map(|x| x.parse().ok())
                .collect();
            if v.len() < 3 {
                eprintln!(
                    "{w}x{h} conv5={conv5}: {}",
                    String::from_utf8_lossy(&out.stderr)
                );
                continue;
            }
            println!(
                "| {w}x{h} | {} | {:.2} | {:.1} | {:.0} |",
                if conv5 {
                    "conv5 + CRN + NetVLAD"
                } else {
                    "CRN + NetVLAD"
                },
                v[0],
                v[2],
                v[1]
            );
        }
    }
}
