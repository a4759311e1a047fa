//! Fine-tuning on places the user already knows (Kim, Dunn, Frahm, CVPR 2017): GPS tags or place
//! labels are the only supervision. Triplets are mined within each batch, the loss is the margin
//! loss on descriptor similarities (symmetric in query and positive), the optimiser SGD with
//! momentum and weight decay, CRN at 10x the learning rate. A new model is adopted only when
//! held-out recall says it is better.
//!
//! This slice trains the aggregation — CRN and NetVLAD — over conv5_3 features that the frozen
//! backbone computes once per image (the whole VGG16 is frozen, which is what makes CPU training
//! practical: a step costs milliseconds instead of the 5-21 s measured with conv5 trainable).
//! Geometric verification of positives, ROI crops, checkpoints and the catalog's own tagged
//! photos as training data are not here yet.

pub mod budget;
pub mod checkpoint;
pub mod geometry;
pub mod mining;
pub mod optim;
pub mod split;

use std::collections::HashMap;
use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Device, Module, Tensor, Var};
use serde::Serialize;

use crate::error::{Error, IoContext, Result};
use crate::eval::{Dataset, EvalResult, Truth};
use crate::model::build::{learn_whitening, Rng};
use crate::model::crn::{Crn, FILTERS};
use crate::model::netvlad::{l2_normalize, NetVlad};
use crate::model::whiten::Whitening;
use crate::model::LoadedModel;
use crate::progress::{CancelToken, ProgressMeter, ProgressSink};

use mining::{choose_negatives, sample_batch, Places, Thresholds};
use optim::{Accumulated, Method, Optimizer, Param};

#[derive(Debug, Clone, Serialize)]
pub struct TrainOptions {
    pub max_steps: usize,
    pub max_minutes: Option<f64>,
    /// Queries per step; each brings a positive, and `extra` random images join as negatives.
    pub queries: usize,
    pub extra: usize,
    pub margin: f64,
    pub lr: f64,
    /// CRN's learning-rate multiplier (10 in the paper).
    pub crn_lr_mult: f64,
    pub momentum: f64,
    pub weight_decay: f64,
    pub thresholds: Thresholds,
    /// Long side of the training images; `None` chooses it from the device's free memory
    /// (`budget::plan`: up to 640 on a GPU, 320 on the CPU).
    pub long_side: Option<u32>,
    pub seed: u64,
    /// Positives must pass geometric verification (local feature matches under a RANSAC
    /// homography); their inliers' boxes become region-of-interest crops.
    pub verify: bool,
    /// Geographic positives of each image verified: the most similar ones under the current model.
    pub verify_candidates: usize,
    /// Train conv5_1..conv5_3 too (the paper's first stage), not only CRN and NetVLAD: each step
    /// then runs the last VGG16 block forward and backward, several times the cost.
    pub train_conv5: bool,
    /// Save a checkpoint every this many steps (and when stopped).
    pub checkpoint_every: usize,
    /// Where checkpoints live (a folder per run); `None` keeps none.
    #[serde(skip)]
    pub checkpoints: Option<PathBuf>,
    /// Start afresh even when a checkpoint of the same run exists.
    #[serde(skip)]
    pub fresh: bool,
    /// SGD with momentum (the paper's) or AdamW.
    pub optimizer: OptimizerChoice,
    /// Batches whose gradients are averaged into one update: an effective batch this many
    /// times larger at the memory of one.
    pub accumulate: usize,
    /// The paper's two stages: NetVLAD (and conv5 with `train_conv5`) for the first half of the
    /// steps, then CRN alone with the rest fixed.
    pub two_stage: bool,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default, Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum OptimizerChoice {
    #[default]
    Sgd,
    AdamW,
}

impl std::str::FromStr for OptimizerChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s.to_ascii_lowercase().as_str() {
            "sgd" => Ok(OptimizerChoice::Sgd),
            "adamw" => Ok(OptimizerChoice::AdamW),
            other => Err(Error::invalid(format!(
                "unknown optimizer {other:?}: use sgd or adamw"
            ))),
        }
    }
}

/// What trains at a step: everything, or one of the paper's two stages.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    All,
    /// NetVLAD, and conv5 when it trains; CRN fixed.
    NetVlad,
    /// CRN alone.
    Crn,
}

impl Stage {
    /// The stage of step `step` (0-based) of a run.
    pub fn at(opts: &TrainOptions, step: usize) -> Stage {
        match (opts.two_stage, step < opts.max_steps / 2) {
            (false, _) => Stage::All,
            (true, true) => Stage::NetVlad,
            (true, false) => Stage::Crn,
        }
    }

    /// Whether the parameter named `name` (checkpoint names) changes in this stage.
    pub fn trains(self, name: &str) -> bool {
        let crn = name.starts_with("aggregation.crn.");
        match self {
            Stage::All => true,
            Stage::NetVlad => !crn,
            Stage::Crn => crn,
        }
    }
}

impl Default for TrainOptions {
    fn default() -> Self {
        TrainOptions {
            max_steps: 200,
            max_minutes: None,
            queries: 4,
            extra: 8,
            margin: 0.25,
            lr: 0.001,
            crn_lr_mult: 10.0,
            momentum: 0.9,
            weight_decay: 0.001,
            thresholds: Thresholds::default(),
            long_side: None,
            seed: 2017,
            train_conv5: false,
            verify: true,
            verify_candidates: 4,
            checkpoint_every: 25,
            checkpoints: None,
            fresh: false,
            optimizer: OptimizerChoice::Sgd,
            accumulate: 1,
            two_stage: false,
        }
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct TrainReport {
    pub before: Vec<EvalResult>,
    pub after: Vec<EvalResult>,
    pub adopted: bool,
    /// Why the new model was or was not adopted.
    pub reason: String,
    /// Where the adopted model was written.
    pub model: Option<PathBuf>,
    pub steps: usize,
    pub seconds: f64,
    /// Mean loss per step.
    pub losses: Vec<f64>,
    pub thresholds: Thresholds,
    pub warnings: Vec<String>,
    pub seed: u64,
    pub cancelled: bool,
    /// What geometric verification of the positives found (when it ran).
    pub verification: Option<VerificationSummary>,
    /// The step this run continued from (a checkpoint of an earlier, stopped run), if any.
    pub resumed_from: Option<usize>,
    /// The run's checkpoint when it is kept (the run stopped before its last step): the same
    /// command continues from it.
    pub checkpoint: Option<PathBuf>,
    /// The training resolution and the memory it was chosen from.
    pub memory: budget::MemoryPlan,
}

#[derive(Debug, Clone, Serialize)]
pub struct VerificationSummary {
    /// Pairs of geographic neighbours checked, and those that passed.
    pub pairs_checked: usize,
    pub pairs_verified: usize,
    /// Training images with at least one verified positive (usable as queries).
    pub images_with_positives: usize,
    /// Whether training used the verified pairs (else too few passed and it fell back to
    /// geographic neighbours, with a warning).
    pub used: bool,
    pub seconds: f64,
}

/// CRN and NetVLAD as variables, initialised from a model (CRN, which the built-in model lacks,
/// starts from small random filters and an accumulator bias of 1: a mask of about 1).
pub struct TrainableAggregation {
    pub centroids: Var,
    pub assign: Var,
    pub crn_filters: Vec<(Var, Var)>,
    pub crn_acc_bias: Var,
    /// conv5_1..conv5_3 (weight, bias) when the last VGG16 block trains too (the paper's first
    /// stage trains conv5 with NetVLAD); empty when the whole backbone is frozen.
    pub conv5: Vec<(Var, Var)>,
    /// Where the variables live and the steps run: the model's device (features cached in RAM
    /// are moved there as they are used).
    pub device: Device,
}

/// The checkpoint indices of conv5_1, conv5_2, conv5_3 (torchvision's `features` numbering).
const CONV5: [usize; 3] = [24, 26, 28];

impl TrainableAggregation {
    pub fn from_model(
        model: &LoadedModel,
        rng: &mut Rng,
        dtype: DType,
        train_conv5: bool,
    ) -> Result<Self> {
        let device = model.device.clone();
        let var = |t: &Tensor| -> Result<Var> {
            Ok(Var::from_tensor(&t.to_device(&device)?.to_dtype(dtype)?)?)
        };
        let net = &model.net;
        let centroids = var(net.netvlad.centroids())?;
        let assign = var(net.netvlad.conv().weight())?;
        let (crn_filters, crn_acc_bias) = match &net.crn {
            Some(crn) => (
                crn.filters()
                    .iter()
                    .map(|c| {
                        let b = match c.bias() {
                            Some(b) => b.clone(),
                            None => Tensor::zeros(c.weight().dim(0)?, c.weight().dtype(), &device)?,
                        };
                        Ok((var(c.weight())?, var(&b)?))
                    })
                    .collect::<Result<Vec<_>>>()?,
                var(crn.acc_bias())?,
            ),
            None => (
                FILTERS
                    .iter()
                    .map(|&(_, k, out)| {
                        let n = out * 512 * k * k;
                        let w: Vec<f64> = (0..n).map(|_| gaussian(rng) * 0.001).collect();
                        let w = Tensor::from_vec(w, (out, 512, k, k), &device)?.to_dtype(dtype)?;
                        Ok((
                            Var::from_tensor(&w)?,
                            Var::from_tensor(&Tensor::zeros(out, dtype, &device)?)?,
                        ))
                    })
                    .collect::<Result<Vec<_>>>()?,
                Var::from_tensor(&Tensor::ones(1, dtype, &device)?)?,
            ),
        };
        let conv5 = if train_conv5 {
            net.backbone
                .convs()
                .iter()
                .filter(|(i, _)| CONV5.contains(i))
                .map(|(_, c)| {
                    let b = c.bias().expect("VGG16 convolutions have biases");
                    Ok((var(c.weight())?, var(b)?))
                })
                .collect::<Result<Vec<_>>>()?
        } else {
            Vec::new()
        };
        Ok(TrainableAggregation {
            centroids,
            assign,
            crn_filters,
            crn_acc_bias,
            conv5,
            device,
        })
    }

    /// What the frozen backbone hands over -> conv5_3 features: pool4 [B, 512, H/16, W/16]
    /// through the trained conv5 block, or conv5_3 itself when conv5 is frozen.
    pub fn conv5_3(&self, frozen: &Tensor) -> Result<Tensor> {
        let mut x = frozen.to_device(&self.device)?;
        for (n, (w, b)) in self.conv5.iter().enumerate() {
            x = crate::model::im2col::conv2d_same(&x, w.as_tensor(), Some(b.as_tensor()))?;
            if n + 1 < self.conv5.len() {
                x = x.relu()?; // conv5_3 has no ReLU (see vgg16)
            }
        }
        Ok(x)
    }

    fn crn(&self) -> Result<Crn> {
        Ok(Crn::from_parts(
            self.crn_filters
                .iter()
                .map(|(w, b)| (w.as_tensor().clone(), b.as_tensor().clone()))
                .collect(),
            self.crn_acc_bias.as_tensor().clone(),
        )?)
    }

    /// conv5_3 features [1, 512, H, W] -> the NetVLAD vector [1, 32768] with the CRN mask.
    pub fn forward(&self, features: &Tensor) -> Result<Tensor> {
        let features = &features.to_device(&self.device)?;
        let mask = self.crn()?.forward(features)?;
        let netvlad = NetVlad::from_parts(
            self.centroids.as_tensor().clone(),
            self.assign.as_tensor().clone(),
        );
        Ok(netvlad.forward_masked(features, Some(&mask))?)
    }

    pub fn params(&self, crn_lr_mult: f64) -> Vec<Param> {
        let mut p = vec![
            Param::new("aggregation.centroids", self.centroids.clone(), 1.0),
            Param::new("aggregation.conv.weight", self.assign.clone(), 1.0),
        ];
        for ((name, _, _), (w, b)) in FILTERS.iter().zip(&self.crn_filters) {
            p.push(Param::new(
                &format!("aggregation.crn.{name}.weight"),
                w.clone(),
                crn_lr_mult,
            ));
            p.push(Param::new(
                &format!("aggregation.crn.{name}.bias"),
                b.clone(),
                crn_lr_mult,
            ));
        }
        p.push(Param::new(
            "aggregation.crn.acc_w.bias",
            self.crn_acc_bias.clone(),
            crn_lr_mult,
        ));
        for (index, (w, b)) in CONV5.iter().zip(&self.conv5) {
            p.push(Param::new(
                &format!("backbone.{index}.weight"),
                w.clone(),
                1.0,
            ));
            p.push(Param::new(
                &format!("backbone.{index}.bias"),
                b.clone(),
                1.0,
            ));
        }
        p
    }

    /// Sets the variables from tensors saved under their checkpoint names (a training checkpoint).
    pub fn restore(&self, saved: &HashMap<String, Tensor>) -> Result<()> {
        for p in self.params(1.0) {
            let t = saved
                .get(&p.name)
                .ok_or_else(|| Error::Model(format!("the checkpoint lacks {}", p.name)))?;
            p.var
                .set(&t.to_device(&self.device)?.to_dtype(p.var.dtype())?)?;
        }
        Ok(())
    }

    /// The tensors under their checkpoint names, in RAM (to be saved).
    pub fn tensors(&self) -> Result<HashMap<String, Tensor>> {
        self.params(1.0)
            .into_iter()
            .map(|p| Ok((p.name.clone(), p.var.as_tensor().to_device(&Device::Cpu)?)))
            .collect()
    }
}

/// A random crop of a conv5_3 map [1, C, H, W], 60-95% of each side, with even sides (CRN pools
/// by 2 and upsamples by 2).
fn even_crop(f: &Tensor, rng: &mut Rng) -> Result<Tensor> {
    let (_, _, h, w) = f.dims4()?;
    let side = |len: usize, rng: &mut Rng| {
        let s = (len as f64 * (0.6 + 0.35 * rng.next_f64())) as usize;
        (s & !1).clamp(2, len & !1)
    };
    let (ch, cw) = (side(h, rng), side(w, rng));
    let (y, x) = (rng.below(h - ch + 1), rng.below(w - cw + 1));
    Ok(f.narrow(2, y, ch)?.narrow(3, x, cw)?)
}

/// A standard normal sample (Box-Muller).
fn gaussian(rng: &mut Rng) -> f64 {
    let u1 = rng.next_f64().max(1e-12);
    let u2 = rng.next_f64();
    (-2.0 * u1.ln()).sqrt() * (2.0 * std::f64::consts::PI * u2).cos()
}

/// The batch loss: for every query, its most similar positive in the batch and the negatives
/// chosen by [`choose_negatives`], margin loss in both directions (query and positive as anchors).
pub fn batch_loss(
    descriptors: &Tensor,
    batch: &mining::Batch,
    margin: f64,
    rng: &mut Rng,
) -> Result<Option<Tensor>> {
    let sims = descriptors.matmul(&descriptors.t()?)?; // [n, n]
    let plain: Vec<Vec<f32>> = sims.to_dtype(DType::F32)?.to_vec2()?;
    let mut terms = Vec::new();
    for (q, pos, neg) in &batch.tuples {
        let p = *pos
            .iter()
            .max_by(|&&a, &&b| plain[*q][a].total_cmp(&plain[*q][b]))
            .expect("a tuple has a positive");
        let neg_sims: Vec<f32> = neg.iter().map(|&n| plain[*q][n]).collect();
        for k in choose_negatives(&neg_sims, plain[*q][p], margin as f32, rng) {
            let n = neg[k];
            for (anchor, other) in [(*q, p), (p, *q)] {
                let s_pos = sims.get(anchor)?.get(other)?;
                let s_neg = sims.get(anchor)?.get(n)?;
                terms.push(((s_neg - s_pos)? + margin)?.relu()?);
            }
        }
    }
    if terms.is_empty() {
        return Ok(None);
    }
    let n = terms.len() as f64;
    Ok(Some((Tensor::stack(&terms, 0)?.sum_all()? / n)?))
}

/// What to train on: the places of the database rows `rows` of an eval-harness dataset (its
/// queries are held out).
fn places_of(dataset: &Dataset, rows: &[usize]) -> Result<Places> {
    match &dataset.truth {
        Truth::Positions { database, .. } => Ok(Places::Positions(
            rows.iter().map(|&r| database[r]).collect(),
        )),
        Truth::Labels { database, .. } => Ok(Places::Labels {
            labels: rows.iter().map(|&r| database[r].clone()).collect(),
            areas: dataset
                .database_areas
                .as_ref()
                .map(|areas| rows.iter().map(|&r| areas[r].clone()).collect()),
        }),
        Truth::MatchSets(_) => Err(Error::invalid(format!(
            "{}: training needs labels or positions for the database images (a CSV with label or lat,lon columns), not only query-to-reference matches",
            dataset.name
        ))),
    }
}

/// What the frozen backbone gives for each image at the training size: conv5_3 features, or pool4
/// when conv5 trains (then conv5 runs in every step).
fn features(
    model: &LoadedModel,
    paths: &[PathBuf],
    long_side: u32,
    until_pool4: bool,
    meter: &mut ProgressMeter,
    cancel: &CancelToken,
) -> Result<Vec<Tensor>> {
    let kind = if until_pool4 { "pool4" } else { "conv5_3" };
    let mut out = Vec::with_capacity(paths.len());
    for p in paths {
        cancel.check()?;
        let f = crate::model::content_cache::tensor_of_file(
            model,
            kind,
            &format!("long_side={long_side}"),
            p,
            || {
                let img = crate::model::describe::load_input(p, None, long_side)?;
                let input = crate::model::describe::batch_tensor(&[&img], &model.device)?;
                Ok(if until_pool4 {
                    // conv4_3 (10th convolution) and the pooling after it.
                    model.net.backbone.pool4(&input)?
                } else {
                    model.net.features(&input)?
                })
            },
        )?;
        out.push(f.to_device(&Device::Cpu)?);
        meter.advance(1);
    }
    Ok(out)
}

/// Recall of queries against the database with descriptors from `describe`.
fn evaluate(
    dataset: &Dataset,
    queries: &[Vec<f32>],
    database: &[Vec<f32>],
) -> Result<Vec<EvalResult>> {
    let opts = crate::eval::EvalOptions {
        hnsw: false,
        ..Default::default()
    };
    let k = *crate::eval::RECALL_AT.last().unwrap();
    Ok(crate::eval::search_all(queries, database, k, &opts)?
        .into_iter()
        .map(|(kind, ranked)| crate::eval::score(dataset, &ranked, &kind))
        .collect())
}

fn rows(t: &Tensor) -> Result<Vec<Vec<f32>>> {
    Ok(t.to_dtype(DType::F32)?.to_vec2()?)
}

fn recall(r: &[EvalResult], k: &str) -> f64 {
    r.first()
        .and_then(|e| e.recall.get(k).copied())
        .unwrap_or(0.0)
}

/// Trains on the database rows of `dataset` and judges on its query rows: the current model at
/// its own input size, the new one at the training size (which its card then records). The new
/// model is written to `out` only when it is better.
pub fn train_on_dataset(
    model: &LoadedModel,
    dataset: &Dataset,
    opts: &TrainOptions,
    out: &Path,
    cache: &crate::model::cache::DescriptorCache,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<TrainReport> {
    let all: Vec<usize> = (0..dataset.database.len()).collect();
    train(model, dataset, &all, opts, out, cache, progress, cancel)
}

/// Trains on the user's tagged photos in the catalog: whole places held out to judge on (see
/// [`split`]), the rest trained on.
#[allow(clippy::too_many_arguments)]
pub fn train_on_catalog(
    model: &LoadedModel,
    catalog: &crate::catalog::Catalog,
    block_m: f64,
    opts: &TrainOptions,
    out: &Path,
    cache: &crate::model::cache::DescriptorCache,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<(TrainReport, split::SplitSummary)> {
    let photos = split::tagged_photos(catalog)?;
    // Reference images near the user's places: positives and negatives beside their own photos.
    let (references, databases) = split::reference_images(
        catalog,
        &photos,
        REFERENCES_NEAR_M,
        split::MAX_REFERENCES,
        &catalog.cache_dir().join("training").join("references"),
    )?;
    let s = split::split_by_place(
        &photos,
        &references,
        block_m,
        0.2,
        opts.thresholds.positive_m,
        opts.seed,
    )?;
    let mut report = train(
        model,
        &s.dataset,
        &s.train_rows,
        opts,
        out,
        cache,
        progress,
        cancel,
    )?;
    // Adopted: the catalog uses the new model from now on. Descriptors are keyed by model, so the
    // next describe (or update) computes them again, and with them the indexes; installed
    // reference databases described with the old model wait to be described again.
    if let (true, Some(path)) = (report.adopted, &report.model) {
        crate::model::set_active_model(catalog, Some(path))?;
        let stale: Vec<String> = catalog
            .refdbs()?
            .into_iter()
            .filter(|d| d.model_hash == model.hash)
            .map(|d| d.name)
            .collect();
        report.reason.push_str(
            "; it is now this catalog's model: `pinpoint update` describes the photos with it",
        );
        if !stale.is_empty() {
            report.warnings.push(format!(
                "reference databases described with the previous model ({}) are not used until described again: `pinpoint refdb redescribe`",
                stale.join(", ")
            ));
        }
    }
    if !databases.is_empty() {
        report.reason.push_str(&format!(
            "; {} reference images from {} joined training",
            s.summary.training_references,
            databases.join(", ")
        ));
    }
    Ok((report, s.summary))
}

/// Reference images within this distance of a tagged photo join training: near enough to be
/// positives of some photo, or the hard negatives of the same neighbourhood.
const REFERENCES_NEAR_M: f64 = 1000.0;

/// Trains on the database rows `train_rows` of `dataset` and judges on its query rows against its
/// whole database.
#[allow(clippy::too_many_arguments)]
pub fn train(
    model: &LoadedModel,
    dataset: &Dataset,
    train_rows: &[usize],
    opts: &TrainOptions,
    out: &Path,
    cache: &crate::model::cache::DescriptorCache,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<TrainReport> {
    let started = Instant::now();
    let places = places_of(dataset, train_rows)?;
    let mut warnings = Vec::new();
    let memory = budget::plan(
        &model.device,
        opts.long_side,
        2 * opts.queries + opts.extra,
        dataset.database.len() + dataset.queries.len(),
        opts.train_conv5,
    );
    warnings.extend(memory.warning.clone());
    let opts = &TrainOptions {
        long_side: Some(memory.long_side),
        ..opts.clone()
    };
    let long_side = memory.long_side;
    let (thresholds, note) = places.adapt(opts.thresholds);
    warnings.extend(note);
    let trainable = places.trainable(&thresholds, None);
    if trainable.len() < 2 {
        return Err(Error::invalid(format!(
            "{}: only {} training images have both a positive and a negative; nothing to learn from",
            dataset.name,
            trainable.len()
        )));
    }
    let mut rng = Rng::new(opts.seed);
    let mut meter = ProgressMeter::new(progress, "train");
    meter.stage(
        "features",
        Some((dataset.database.len() + dataset.queries.len()) as u64),
    );
    let db_frozen = features(
        model,
        &dataset.database,
        long_side,
        opts.train_conv5,
        &mut meter,
        cancel,
    )?;
    let q_frozen = features(
        model,
        &dataset.queries,
        long_side,
        opts.train_conv5,
        &mut meter,
        cancel,
    )?;

    // Before: the model as the user has it, at its own input size (descriptors cached).
    meter.stage("evaluating the current model", None);
    let eval_opts = crate::eval::EvalOptions {
        hnsw: false,
        describe: crate::model::describe::DescribeOptions {
            long_side: model.card.input.long_side,
            ..Default::default()
        },
        ..Default::default()
    };
    let before = crate::eval::evaluate_dataset(
        model,
        dataset,
        &eval_opts,
        cache,
        &crate::progress::NoProgress,
        cancel,
    )?;

    // Training, continuing a stopped run of the same command when its checkpoint is there.
    let agg = TrainableAggregation::from_model(model, &mut rng, DType::F32, opts.train_conv5)?;
    // Which neighbours really show the same scene, decided once, with the starting model (so that a
    // resumed run decides the same).
    let (verified, verification) = if opts.verify {
        let started_verifying = Instant::now();
        let (v, checked) = verify_positives(
            model,
            dataset,
            train_rows,
            &places,
            &thresholds,
            &trainable,
            &agg,
            &db_frozen,
            opts.verify_candidates,
            &mut meter,
            cancel,
        )?;
        let with_positives = places.trainable(&thresholds, Some(&v));
        let used = with_positives.len() >= 2;
        if !used {
            warnings.push(format!(
                "geometric verification passed {} of {checked} neighbour pairs, too few to train on: training with geographic neighbours as positives",
                v.len()
            ));
        }
        let summary = VerificationSummary {
            pairs_checked: checked,
            pairs_verified: v.len(),
            images_with_positives: with_positives.len(),
            used,
            seconds: started_verifying.elapsed().as_secs_f64(),
        };
        (used.then_some(v), Some(summary))
    } else {
        (None, None)
    };
    let trainable = match &verified {
        Some(v) => places.trainable(&thresholds, Some(v)),
        None => trainable,
    };
    let mut optimizer = Optimizer::with_method(
        agg.params(opts.crn_lr_mult),
        match opts.optimizer {
            OptimizerChoice::Sgd => Method::Sgd {
                momentum: opts.momentum,
            },
            OptimizerChoice::AdamW => Method::ADAMW,
        },
        opts.weight_decay,
    );
    let fingerprint = run_fingerprint(model, dataset, train_rows, opts);
    let checkpoint_dir = opts
        .checkpoints
        .as_ref()
        .map(|root| checkpoint::folder(root, &fingerprint));
    let mut losses = Vec::new();
    let mut earlier_seconds = 0.0;
    let mut resumed_from = None;
    if let Some(dir) = checkpoint_dir.as_ref().filter(|_| !opts.fresh) {
        if let Some(saved) = checkpoint::load(dir, &fingerprint)? {
            agg.restore(&saved.params)?;
            optimizer.restore_velocities(&saved.velocities, saved.state.updates)?;
            rng = Rng::new(saved.state.rng);
            losses = saved.state.losses;
            earlier_seconds = saved.state.seconds;
            resumed_from = Some(saved.state.step);
        }
    }
    let save_checkpoint = |losses: &[f64], rng: &Rng, optimizer: &Optimizer| -> Result<()> {
        let Some(dir) = &checkpoint_dir else {
            return Ok(());
        };
        let state = checkpoint::CheckpointState {
            updates: optimizer.updates,
            ..checkpoint::CheckpointState::new(
                &fingerprint,
                losses.len(),
                losses,
                rng.state(),
                earlier_seconds + started.elapsed().as_secs_f64(),
            )
        };
        let params: Vec<(String, Tensor)> = agg.tensors()?.into_iter().collect();
        checkpoint::save(dir, &state, &params, &optimizer.velocities()?)?;
        std::fs::write(dir.join("loss.svg"), checkpoint::loss_curve_svg(losses)).at(dir)
    };
    let train_frozen: Vec<&Tensor> = train_rows.iter().map(|&r| &db_frozen[r]).collect();
    let step_data = StepData {
        places: &places,
        thresholds: &thresholds,
        verified: verified.as_ref(),
        trainable: &trainable,
        frozen: &train_frozen,
    };
    meter.stage("training", Some(opts.max_steps as u64));
    meter.done = losses.len() as u64;
    let mut cancelled = false;
    while losses.len() < opts.max_steps {
        if cancel.is_cancelled() {
            cancelled = true;
            break;
        }
        if opts
            .max_minutes
            .is_some_and(|m| started.elapsed().as_secs_f64() > m * 60.0)
        {
            break;
        }
        let stage = Stage::at(opts, losses.len());
        let (loss, _) = training_step(&agg, &mut optimizer, &step_data, opts, stage, &mut rng)?;
        losses.push(loss);
        if opts.checkpoint_every > 0 && losses.len() % opts.checkpoint_every == 0 {
            save_checkpoint(&losses, &rng, &optimizer)?;
        }
        meter.detail = Some(match stage {
            Stage::All => format!("loss {:.4}", recent_mean(&losses, 10)),
            Stage::NetVlad => format!("stage 1 (NetVLAD), loss {:.4}", recent_mean(&losses, 10)),
            Stage::Crn => format!("stage 2 (CRN), loss {:.4}", recent_mean(&losses, 10)),
        });
        meter.advance(1);
    }
    let steps = losses.len();
    let seconds = || earlier_seconds + started.elapsed().as_secs_f64();
    // Stopped before the last step: keep the checkpoint so that the same command continues.
    let unfinished = steps < opts.max_steps;
    if unfinished {
        save_checkpoint(&losses, &rng, &optimizer)?;
    }
    if cancelled {
        meter.finish();
        let kept = checkpoint_dir.filter(|_| unfinished);
        return Ok(TrainReport {
            before,
            after: Vec::new(),
            adopted: false,
            reason: match &kept {
                Some(dir) => format!(
                    "cancelled at step {steps} of {}: the model stays as it was; the checkpoint in {} lets the same command continue",
                    opts.max_steps,
                    dir.display()
                ),
                None => "training was cancelled: the model stays as it was".to_string(),
            },
            model: None,
            steps,
            seconds: seconds(),
            losses,
            thresholds,
            warnings,
            seed: opts.seed,
            cancelled,
            verification,
            resumed_from,
            checkpoint: kept,
            memory,
        });
    }

    // After: the trained aggregation, with PCA-whitening learned again on the training images
    // (the whole image and random crops of its feature map, as the built-in model's was).
    meter.stage("evaluating", None);
    let dim = model
        .net
        .whiten
        .as_ref()
        .map(|w| w.output_dim())
        .unwrap_or(0);
    let conv5_3 = |frozen: &[Tensor]| -> Result<Vec<Tensor>> {
        frozen
            .iter()
            .map(|f| Ok(agg.conv5_3(f)?.detach()))
            .collect()
    };
    let (db_features, q_features) = (conv5_3(&db_frozen)?, conv5_3(&q_frozen)?);
    let mut vectors = Vec::new();
    for f in &db_features {
        vectors.push(agg.forward(f)?.detach());
        let crops = dim / db_features.len().max(1) + 1;
        for _ in 0..crops {
            vectors.push(agg.forward(&even_crop(f, &mut rng)?)?.detach());
        }
    }
    let whiten = if dim > 0 && vectors.len() > dim {
        let stacked = Tensor::cat(&vectors, 0)?;
        let (mean, weight, _) = learn_whitening(&stacked, dim, 0.1)?;
        Some(Whitening::from_parts(mean, weight))
    } else {
        None
    };
    let describe_after = |f: &Tensor| -> Result<Vec<f32>> {
        let v = agg.forward(f)?.detach();
        let v = match &whiten {
            Some(w) => w.forward(&v)?,
            None => l2_normalize(&v, 1)?,
        };
        Ok(rows(&v)?.remove(0))
    };
    let after_q: Vec<Vec<f32>> = q_features
        .iter()
        .map(&describe_after)
        .collect::<Result<_>>()?;
    let after_d: Vec<Vec<f32>> = db_features
        .iter()
        .map(&describe_after)
        .collect::<Result<_>>()?;
    let after = evaluate(dataset, &after_q, &after_d)?;

    let (b1, a1) = (recall(&before, "1"), recall(&after, "1"));
    let (b5, a5) = (recall(&before, "5"), recall(&after, "5"));
    let better = a1 > b1 || (a1 == b1 && a5 > b5);
    let reason = if better {
        format!(
            "recall@1 {b1:.3} -> {a1:.3}, recall@5 {b5:.3} -> {a5:.3} on {} held-out queries",
            before.first().map(|r| r.queries).unwrap_or(0)
        )
    } else {
        format!("not better on the held-out queries (recall@1 {b1:.3} -> {a1:.3}, recall@5 {b5:.3} -> {a5:.3}): the current model stays")
    };
    let adopted = better;
    let model_path = if adopted {
        let path = save_model(
            model,
            &agg,
            whiten.as_ref(),
            out,
            dataset,
            opts,
            steps,
            &reason,
        )?;
        let curve = path.join("loss.svg");
        std::fs::write(&curve, checkpoint::loss_curve_svg(&losses)).at(&curve)?;
        Some(path)
    } else {
        None
    };
    // A finished run, or one whose model was adopted, has nothing left to continue.
    let kept = checkpoint_dir.filter(|_| unfinished && !adopted);
    if kept.is_none() {
        if let Some(root) = &opts.checkpoints {
            checkpoint::remove(&checkpoint::folder(root, &fingerprint))?;
        }
    }
    meter.finish();
    Ok(TrainReport {
        before,
        after,
        adopted,
        reason,
        model: model_path,
        steps,
        seconds: seconds(),
        losses,
        thresholds,
        warnings,
        seed: opts.seed,
        cancelled,
        verification,
        resumed_from,
        checkpoint: kept,
        memory,
    })
}

/// Verifies, for every trainable image, its `candidates` most similar geographic positives (under
/// the starting model) and returns the pairs that passed with their regions, and how many pairs
/// were checked. Local features are extracted once per image, when first needed.
#[allow(clippy::too_many_arguments)]
fn verify_positives(
    model: &LoadedModel,
    dataset: &Dataset,
    train_rows: &[usize],
    places: &Places,
    thresholds: &Thresholds,
    trainable: &[usize],
    agg: &TrainableAggregation,
    frozen: &[Tensor],
    candidates: usize,
    meter: &mut ProgressMeter,
    cancel: &CancelToken,
) -> Result<(mining::VerifiedPairs, usize)> {
    use std::collections::{BTreeSet, HashMap};
    let desc: Vec<Tensor> = train_rows
        .iter()
        .map(|&r| Ok(agg.forward(&agg.conv5_3(&frozen[r])?)?.detach()))
        .collect::<Result<_>>()?;
    let desc = Tensor::cat(&desc, 0)?;
    let sims: Vec<Vec<f32>> = desc.matmul(&desc.t()?)?.to_dtype(DType::F32)?.to_vec2()?;
    let mut pairs = BTreeSet::new();
    for &i in trainable {
        let mut pos: Vec<usize> = (0..places.len())
            .filter(|&j| j != i && places.relation(i, j, thresholds) == mining::Relation::Positive)
            .collect();
        pos.sort_by(|&a, &b| sims[i][b].total_cmp(&sims[i][a]).then(a.cmp(&b)));
        for &j in pos.iter().take(candidates) {
            pairs.insert((i.min(j), i.max(j)));
        }
    }
    let opts = geometry::VerifyOptions::default();
    let extractor = geometry::Extractor::new(model, &opts)?;
    let mut features: HashMap<usize, geometry::LocalFeatures> = HashMap::new();
    let mut verified = mining::VerifiedPairs::default();
    meter.stage("verifying positives", Some(pairs.len() as u64));
    for &(a, b) in &pairs {
        cancel.check()?;
        for i in [a, b] {
            if let std::collections::hash_map::Entry::Vacant(e) = features.entry(i) {
                e.insert(extractor.extract(&dataset.database[train_rows[i]])?);
            }
        }
        let v = geometry::verify(&features[&a], &features[&b], &opts);
        if let (true, Some(ra), Some(rb)) = (v.verified, v.roi_a, v.roi_b) {
            verified.insert(
                a,
                b,
                [ra.x0, ra.y0, ra.x1, ra.y1],
                [rb.x0, rb.y0, rb.x1, rb.y1],
            );
        }
        meter.advance(1);
    }
    Ok((verified, pairs.len()))
}

/// The region-of-interest crops of a batch (the paper's augmentation): each query, half of the
/// time, is cropped to the box of its inliers with a verified positive in the batch.
/// What the training steps draw their batches from.
pub struct StepData<'a> {
    pub places: &'a Places,
    pub thresholds: &'a Thresholds,
    /// Geometrically verified positives (`None`: geographic neighbours are positives).
    pub verified: Option<&'a mining::VerifiedPairs>,
    /// The images that can be queries (with a positive and a negative each).
    pub trainable: &'a [usize],
    /// The frozen features of each training image (conv5_3, or pool4 when conv5 trains), as
    /// `places` numbers the images.
    pub frozen: &'a [&'a Tensor],
}

/// One update: `opts.accumulate` batches are sampled, described (queries cropped to their
/// verified region half the time) and scored by the margin loss; their mean gradient updates
/// what `stage` trains. Returns the mean loss and the number of images described.
pub fn training_step(
    agg: &TrainableAggregation,
    optimizer: &mut Optimizer,
    data: &StepData,
    opts: &TrainOptions,
    stage: Stage,
    rng: &mut Rng,
) -> Result<(f64, usize)> {
    let mut accumulated = Accumulated::default();
    let (mut loss_sum, mut images) = (0.0, 0);
    for _ in 0..opts.accumulate.max(1) {
        let batch = sample_batch(
            data.places,
            data.thresholds,
            data.verified,
            data.trainable,
            opts.queries,
            opts.extra,
            rng,
        );
        let crops = roi_crops(&batch, data.verified, rng);
        let desc = batch
            .images
            .iter()
            .zip(&crops)
            .map(|(&i, crop)| {
                let f = agg.conv5_3(data.frozen[i])?;
                match crop {
                    Some(region) => agg.forward(&crop_region(&f, *region)?),
                    None => agg.forward(&f),
                }
            })
            .collect::<Result<Vec<_>>>()?;
        images += desc.len();
        let desc = Tensor::cat(&desc, 0)?;
        match batch_loss(&desc, &batch, opts.margin, rng)? {
            Some(loss) => {
                loss_sum += loss.to_dtype(DType::F64)?.to_scalar::<f64>()?;
                accumulated.add(&optimizer.params, &loss.backward()?)?;
            }
            // No negative violates the margin: a zero loss, and no gradient.
            None => accumulated.batches += 1,
        }
    }
    if !accumulated.is_empty() {
        optimizer.step_with(opts.lr, |p| accumulated.mean(p), |name| stage.trains(name))?;
    }
    Ok((loss_sum / accumulated.batches as f64, images))
}

fn roi_crops(
    batch: &mining::Batch,
    verified: Option<&mining::VerifiedPairs>,
    rng: &mut Rng,
) -> Vec<Option<mining::Region>> {
    let Some(v) = verified else {
        return vec![None; batch.images.len()];
    };
    (0..batch.images.len())
        .map(|bi| {
            let (_, pos, _) = batch.tuples.iter().find(|(q, _, _)| *q == bi)?;
            if rng.next_f64() >= 0.5 {
                return None;
            }
            pos.iter()
                .find_map(|&p| v.region(batch.images[bi], batch.images[p]))
        })
        .collect()
}

/// A feature map [1, C, H, W] cropped to `region` (fractions of the image), with even sides of at
/// least 2 cells (CRN pools by 2 and upsamples by 2).
fn crop_region(f: &Tensor, region: mining::Region) -> Result<Tensor> {
    let (_, _, h, w) = f.dims4()?;
    let span = |lo: f32, hi: f32, len: usize| -> (usize, usize) {
        let even = len & !1;
        let a = (lo.clamp(0.0, 1.0) * len as f32).floor() as usize;
        let b = ((hi.clamp(0.0, 1.0) * len as f32).ceil() as usize).max(a + 2);
        let size = ((b - a + 1) & !1).clamp(2.min(even), even);
        (a.min(len - size), size)
    };
    let (y, ch) = span(region[1], region[3], h);
    let (x, cw) = span(region[0], region[2], w);
    Ok(f.narrow(2, y, ch)?.narrow(3, x, cw)?)
}

/// The mean of the last `n` losses (the progress line's loss: one step's is noisy).
fn recent_mean(losses: &[f64], n: usize) -> f64 {
    let tail = &losses[losses.len().saturating_sub(n)..];
    tail.iter().sum::<f64>() / tail.len().max(1) as f64
}

/// What defines a training run, for its checkpoint: the model's weights, the training images and
/// their places, and every option except the step and time bounds (a stopped run may be continued
/// with a larger `--max-steps`).
fn run_fingerprint(
    model: &LoadedModel,
    dataset: &Dataset,
    train_rows: &[usize],
    opts: &TrainOptions,
) -> String {
    let mut o = serde_json::to_value(opts).unwrap_or_default();
    if let Some(map) = o.as_object_mut() {
        // max_steps shapes a two-stage schedule (its halfway point); otherwise it only bounds the run.
        if !opts.two_stage {
            map.remove("max_steps");
        }
        map.remove("max_minutes");
        map.remove("checkpoint_every");
    }
    checkpoint::fingerprint(&serde_json::json!({
        "model": model.hash,
        "database": dataset.database,
        "queries": dataset.queries,
        "places": format!("{:?}", dataset.truth),
        "areas": dataset.database_areas,
        "train_rows": train_rows,
        "options": o,
    }))
}

/// Writes the fine-tuned model folder: the original backbone, the trained aggregation and the new
/// whitening (f16), with a card that says how it was made.
#[allow(clippy::too_many_arguments)]
fn save_model(
    model: &LoadedModel,
    agg: &TrainableAggregation,
    whiten: Option<&Whitening>,
    out: &Path,
    dataset: &Dataset,
    opts: &TrainOptions,
    steps: usize,
    reason: &str,
) -> Result<PathBuf> {
    let mut tensors = candle_core::safetensors::load(&model.weights_path, &Device::Cpu)?;
    tensors.retain(|k, _| !k.starts_with("aggregation.") && !k.starts_with("whiten."));
    tensors.extend(agg.tensors()?);
    if let Some(w) = whiten {
        tensors.insert("whiten.mean".into(), w.mean().clone());
        tensors.insert("whiten.weight".into(), w.weight().clone());
    }
    let tensors: HashMap<String, Tensor> = tensors
        .into_iter()
        .map(|(k, v)| {
            let v = v.to_device(&Device::Cpu)?.to_dtype(DType::F16)?;
            Ok((k, v.contiguous()?))
        })
        .collect::<Result<_>>()?;
    std::fs::create_dir_all(out).map_err(|e| Error::invalid(format!("{}: {e}", out.display())))?;
    let weights = out.join(crate::model::card::WEIGHTS_FILE);
    candle_core::safetensors::save(&tensors, &weights)?;
    let mut card = model.card.clone();
    card.name = format!("{}-ft", model.card.name);
    card.description = format!(
        "{} fine-tuned ({}) on {} with place supervision",
        model.card.name,
        if opts.train_conv5 {
            "conv5 + CRN + NetVLAD"
        } else {
            "CRN + NetVLAD"
        },
        dataset.name
    );
    card.descriptor.crn = true;
    // Trained and whitened at this size: it is the size the new model is judged and used at.
    card.input.long_side = opts.long_side.unwrap_or(card.input.long_side);
    card.descriptor.whitened_dim = whiten.map(|w| w.output_dim());
    card.weights.sha256 = Some(crate::model::sha256_file(&weights)?);
    card.weights.bytes = std::fs::metadata(&weights).ok().map(|m| m.len());
    card.weights.dtype = "f16".into();
    card.provenance = format!(
        "fine-tuned from {} (weights {}) by `pinpoint train`: {steps} steps, seed {}, {}",
        model.card.name, model.hash, opts.seed, reason
    );
    card.build = serde_json::to_value(opts).unwrap_or_default();
    let text = serde_json::to_string_pretty(&card).expect("a card serialises");
    let card_path = out.join(crate::model::card::CARD_FILE);
    std::fs::write(&card_path, text)
        .map_err(|e| Error::invalid(format!("{}: {e}", card_path.display())))?;
    Ok(out.to_path_buf())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Gaussian f64 values times `scale`, on the CPU.
    fn rand(shape: (usize, usize, usize, usize), scale: f64, rng: &mut Rng) -> Tensor {
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        let v: Vec<f64> = (0..n).map(|_| gaussian(rng) * scale).collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    /// Checks the backward pass's gradient `grad` of `var` against central finite differences of
    /// `f` (step `eps`) at the `coords` coordinates of largest gradient, within
    /// `abs_tol + rel_tol * max(|numeric|, |backward|)`; `var` gets its value back. Returns the
    /// number of coordinates checked.
    fn assert_gradient_matches(
        name: &str,
        var: &Var,
        grad: &Tensor,
        f: impl Fn() -> f64,
        eps: f64,
        coords: usize,
        (abs_tol, rel_tol): (f64, f64),
    ) -> usize {
        let g: Vec<f64> = grad.flatten_all().unwrap().to_vec1().unwrap();
        let w0: Vec<f64> = var.as_tensor().flatten_all().unwrap().to_vec1().unwrap();
        let shape = var.as_tensor().shape().clone();
        let set = |w: Vec<f64>| {
            var.set(&Tensor::from_vec(w, shape.clone(), &Device::Cpu).unwrap())
                .unwrap()
        };
        let mut idx: Vec<usize> = (0..g.len()).collect();
        idx.sort_by(|&a, &b| g[b].abs().total_cmp(&g[a].abs()));
        let mut checked = 0;
        for &i in idx.iter().take(coords) {
            let at = |delta: f64| {
                let mut w = w0.clone();
                w[i] += delta;
                set(w);
                f()
            };
            let numeric = (at(eps) - at(-eps)) / (2.0 * eps);
            set(w0.clone());
            let tol = abs_tol + rel_tol * numeric.abs().max(g[i].abs());
            assert!(
                (numeric - g[i]).abs() < tol,
                "{name}[{i}]: backward {} vs finite difference {numeric}",
                g[i]
            );
            checked += 1;
        }
        checked
    }

    /// A CRN + NetVLAD of random f64 values, for gradient checks.
    fn random_aggregation(rng: &mut Rng) -> TrainableAggregation {
        let dev = Device::Cpu;
        let centroids = rand((64, 512, 1, 1), 0.05, rng).reshape((64, 512)).unwrap();
        TrainableAggregation {
            centroids: Var::from_tensor(&centroids).unwrap(),
            assign: Var::from_tensor(&rand((64, 512, 1, 1), 0.5, rng)).unwrap(),
            crn_filters: FILTERS
                .iter()
                .map(|&(_, k, out)| {
                    (
                        Var::from_tensor(&rand((out, 512, k, k), 0.02, rng)).unwrap(),
                        Var::from_tensor(&Tensor::full(0.1f64, out, &dev).unwrap()).unwrap(),
                    )
                })
                .collect(),
            crn_acc_bias: Var::from_tensor(&Tensor::full(0.5f64, 1, &dev).unwrap()).unwrap(),
            conv5: Vec::new(),
            device: dev.clone(),
        }
    }

    /// The paper's two stages: NetVLAD moves and CRN stays for the first half of the steps, then
    /// the reverse.
    #[test]
    fn two_stages_train_netvlad_then_crn() {
        let mut rng = Rng::new(5);
        let agg = random_aggregation(&mut rng);
        let features: Vec<Tensor> = (0..3)
            .map(|_| {
                let v: Vec<f64> = (0..512 * 16).map(|_| gaussian(&mut rng).abs()).collect();
                Tensor::from_vec(v, (1, 512, 4, 4), &Device::Cpu).unwrap()
            })
            .collect();
        let opts = TrainOptions {
            max_steps: 4,
            two_stage: true,
            ..Default::default()
        };
        let mut optimizer = Optimizer::new(agg.params(10.0), 0.9, 0.0);
        let snapshot = |agg: &TrainableAggregation| -> (Vec<f64>, Vec<f64>) {
            let flat = |t: &Tensor| -> Vec<f64> { t.flatten_all().unwrap().to_vec1().unwrap() };
            (
                flat(agg.centroids.as_tensor()),
                flat(agg.crn_filters[0].0.as_tensor()),
            )
        };
        let mut seen = vec![snapshot(&agg)];
        for step in 0..4 {
            let stage = Stage::at(&opts, step);
            // Pull the first two descriptors together and push the third away.
            let d: Vec<Tensor> = features.iter().map(|f| agg.forward(f).unwrap()).collect();
            let loss = ((d[0].mul(&d[2]).unwrap().sum_all().unwrap()
                - d[0].mul(&d[1]).unwrap().sum_all().unwrap())
            .unwrap()
                + 0.5)
                .unwrap();
            let grads = loss.backward().unwrap();
            optimizer
                .step_with(
                    0.1,
                    |p| Ok(grads.get(p.var.as_tensor()).cloned()),
                    |n| stage.trains(n),
                )
                .unwrap();
            seen.push(snapshot(&agg));
        }
        assert_eq!(Stage::at(&opts, 1), Stage::NetVlad);
        assert_eq!(Stage::at(&opts, 2), Stage::Crn);
        for step in 0..4 {
            let (before, after) = (&seen[step], &seen[step + 1]);
            let (netvlad_moved, crn_moved) = (before.0 != after.0, before.1 != after.1);
            if step < 2 {
                assert!(netvlad_moved && !crn_moved, "stage 1, step {step}");
            } else {
                assert!(!netvlad_moved && crn_moved, "stage 2, step {step}");
            }
        }
        let all = TrainOptions::default();
        assert!(Stage::at(&all, 0).trains("aggregation.crn.w3.weight"));
        assert!(Stage::at(&all, 0).trains("backbone.24.weight"));
    }

    /// The aggregation's backward pass agrees with finite differences (f64, tiny input).
    #[test]
    fn gradients_match_finite_differences() {
        let mut rng = Rng::new(3);
        let features = rand((1, 512, 4, 4), 1.0, &mut rng).relu().unwrap();
        let agg = random_aggregation(&mut rng);
        // A scalar of the descriptor: its dot product with a fixed random direction.
        let dir = rand((1, 1, 1, 32768), 1.0, &mut rng)
            .reshape((1, 32768))
            .unwrap();
        let scalar = || {
            (agg.forward(&features).unwrap() * &dir)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let grads = scalar().backward().unwrap();
        let mut checked = 0;
        // A few coordinates per parameter, the largest gradients among them.
        for p in agg.params(1.0) {
            let g = grads
                .get(p.var.as_tensor())
                .expect("every parameter gets a gradient");
            checked += assert_gradient_matches(
                &p.name,
                &p.var,
                g,
                || scalar().to_scalar::<f64>().unwrap(),
                1e-6,
                3,
                (1e-5, 1e-3),
            );
        }
        // Three coordinates of each of the 8 tensors, and the accumulator bias (one value).
        assert_eq!(checked, 8 * 3 + 1);
    }

    /// The whole network — VGG16 (every convolution, the max pooling), CRN and NetVLAD — has a
    /// backward pass that agrees with finite differences on a tiny input (f64, 32x32 pixels, so
    /// conv5_3 is 2x2): the gradients that conv5 training and any deeper fine-tuning rely on.
    #[test]
    fn whole_network_gradients_match_finite_differences() {
        use candle_nn::{VarBuilder, VarMap};
        let dev = Device::Cpu;
        let mut rng = Rng::new(5);
        let varmap = VarMap::new();
        let vb = VarBuilder::from_varmap(&varmap, DType::F64, &dev);
        let vgg = crate::model::vgg16::Vgg16::new(vb.pp("backbone")).unwrap();
        let agg = random_aggregation(&mut rng);
        let image = Var::from_tensor(&rand((1, 3, 32, 32), 50.0, &mut rng)).unwrap();
        let dir = rand((1, 1, 1, 32768), 1.0, &mut rng)
            .reshape((1, 32768))
            .unwrap();
        let scalar = || {
            let f = vgg.forward(image.as_tensor()).unwrap();
            (agg.forward(&f).unwrap() * &dir)
                .unwrap()
                .sum_all()
                .unwrap()
        };
        let grads = scalar().backward().unwrap();
        let vars = varmap.data().lock().unwrap().clone();
        let mut checked: Vec<(String, Var)> = ["0", "10", "24", "28"]
            .iter()
            .map(|i| {
                let name = format!("backbone.{i}.weight");
                let v = vars[&name].clone();
                (name, v)
            })
            .collect();
        checked.push(("image".into(), image.clone()));
        checked.push(("crn.filter_5_5.weight".into(), agg.crn_filters[1].0.clone()));
        checked.push(("netvlad.centroids".into(), agg.centroids.clone()));
        for (name, var) in checked {
            let g = grads
                .get(var.as_tensor())
                .unwrap_or_else(|| panic!("{name} gets a gradient"));
            let largest = g
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f64>()
                .unwrap();
            assert!(largest > 0.0, "{name}: all-zero gradient");
            assert_gradient_matches(
                &name,
                &var,
                g,
                || scalar().to_scalar::<f64>().unwrap(),
                1e-5,
                2,
                (1e-6, 2e-3),
            );
        }
    }

    /// conv5 trains as variables that start at the model's weights and reproduce its conv5_3.
    #[test]
    fn trainable_conv5_starts_as_the_model() {
        let model = LoadedModel::load(&crate::model::default_model_path(), &Device::Cpu).unwrap();
        let mut rng = Rng::new(1);
        let agg = TrainableAggregation::from_model(&model, &mut rng, DType::F32, true).unwrap();
        assert_eq!(agg.conv5.len(), 3);
        let names: Vec<String> = agg.params(1.0).into_iter().map(|p| p.name).collect();
        assert!(names.contains(&"backbone.28.bias".to_string()));
        let img = image::RgbImage::from_fn(64, 64, |x, y| {
            image::Rgb([(x * 4) as u8, (y * 4) as u8, ((x + y) * 2) as u8])
        });
        let input = crate::model::describe::batch_tensor(&[&img], &Device::Cpu).unwrap();
        let pool4 = model.net.backbone.pool4(&input).unwrap();
        let ours = agg.conv5_3(&pool4).unwrap();
        let theirs = model.net.backbone.forward(&input).unwrap();
        let diff = (ours - theirs)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f32>()
            .unwrap();
        assert!(diff < 1e-3, "{diff}");
    }
}
