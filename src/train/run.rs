//! A training run: preparing it, the training loop with its checkpoints, and the report; the
//! entry points for a labelled dataset and for the catalog's own photos.

use std::path::{Path, PathBuf};
use std::time::Instant;

use candle_core::{DType, Tensor};
use serde::Serialize;

use super::data::{frozen_features, places_of};
use super::judge::{describe_trained, evaluate, evaluate_current, judge};
use super::mining::{Places, Thresholds};
use super::network::TrainableAggregation;
use super::optim::{Method, Optimizer};
use super::options::{OptimizerChoice, Stage, TrainOptions};
use super::step::{training_step, StepData};
use super::verify::{verify_for_training, TrainingImages, VerificationSummary};
use super::{adopt, budget, checkpoint, split};
use crate::error::{Error, IoContext, Result};
use crate::eval::{Dataset, EvalResult};
use crate::model::build::Rng;
use crate::model::LoadedModel;
use crate::progress::{CancelToken, ProgressMeter, ProgressSink};

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
    // Adopted: the catalog uses the new model from now on.
    if let (true, Some(path)) = (report.adopted, &report.model) {
        let stale = adopt::make_catalog_model(catalog, model, path)?;
        report.reason.push_str(
            "; it is now this catalog's model: `pinpoint update` describes the photos with it",
        );
        report.warnings.extend(stale);
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
    let plan = plan_run(model, dataset, train_rows, opts)?;
    let (opts, places, thresholds) = (&plan.opts, &plan.places, &plan.thresholds);
    let mut warnings = plan.warnings.clone();
    let mut rng = Rng::new(opts.seed);
    let mut meter = ProgressMeter::new(progress, "train");
    let (db_frozen, q_frozen) = frozen_features(
        model,
        dataset,
        plan.memory.long_side,
        opts.train_conv5,
        &mut meter,
        cancel,
    )?;

    meter.stage("evaluating the current model", None);
    let before = evaluate_current(model, dataset, cache, cancel)?;

    // Training, continuing a stopped run of the same command when its checkpoint is there.
    let agg = TrainableAggregation::from_model(model, &mut rng, DType::F32, opts.train_conv5)?;
    // Which neighbours really show the same scene, decided once, with the starting model (so that a
    // resumed run decides the same).
    let images = TrainingImages {
        dataset,
        train_rows,
        places,
        thresholds,
        trainable: &plan.trainable,
        frozen: &db_frozen,
    };
    let (verified, verification) = verify_for_training(
        model,
        &images,
        &agg,
        opts,
        &mut warnings,
        &mut meter,
        cancel,
    )?;
    let trainable = match &verified {
        Some(v) => places.trainable(thresholds, Some(v)),
        None => plan.trainable.clone(),
    };
    let mut optimizer = new_optimizer(&agg, opts);
    let mut checkpoints = Checkpoints::new(model, dataset, train_rows, opts, started);
    let mut losses = Vec::new();
    let resumed_from = checkpoints.resume(opts, &agg, &mut optimizer, &mut rng, &mut losses)?;
    let train_frozen: Vec<&Tensor> = train_rows.iter().map(|&r| &db_frozen[r]).collect();
    let step_data = StepData {
        places,
        thresholds,
        verified: verified.as_ref(),
        trainable: &trainable,
        frozen: &train_frozen,
    };
    let mut stepping = Stepping {
        agg: &agg,
        optimizer: &mut optimizer,
        rng: &mut rng,
        losses: &mut losses,
    };
    let cancelled = stepping.run(&step_data, opts, &checkpoints, &mut meter, cancel)?;
    let steps = losses.len();
    // Stopped before the last step: keep the checkpoint so that the same command continues.
    let unfinished = steps < opts.max_steps;
    if unfinished {
        checkpoints.save(&agg, &losses, &rng, &optimizer)?;
    }
    let outcome = if cancelled {
        cancelled_outcome(steps, opts, checkpoints.dir.clone().filter(|_| unfinished))
    } else {
        meter.stage("evaluating", None);
        let frozen = (db_frozen.as_slice(), q_frozen.as_slice());
        let mut judged = judged_outcome(
            model, dataset, opts, out, &agg, frozen, &mut rng, &before, &losses,
        )?;
        // A finished run, or one whose model was adopted, has nothing left to continue.
        judged.checkpoint = checkpoints
            .dir
            .clone()
            .filter(|_| unfinished && !judged.adopted);
        if judged.checkpoint.is_none() {
            checkpoints.remove()?;
        }
        judged
    };
    meter.finish();
    Ok(TrainReport {
        before,
        after: outcome.after,
        adopted: outcome.adopted,
        reason: outcome.reason,
        model: outcome.model,
        steps,
        seconds: checkpoints.seconds(),
        losses,
        thresholds: *thresholds,
        warnings,
        seed: opts.seed,
        cancelled,
        verification,
        resumed_from,
        checkpoint: outcome.checkpoint,
        memory: plan.memory,
    })
}

/// How a run ended, for its report.
struct Outcome {
    after: Vec<EvalResult>,
    adopted: bool,
    reason: String,
    model: Option<PathBuf>,
    checkpoint: Option<PathBuf>,
}

/// A cancelled run: the model stays, and `kept` (the checkpoint) lets the same command continue.
fn cancelled_outcome(steps: usize, opts: &TrainOptions, kept: Option<PathBuf>) -> Outcome {
    let reason = match &kept {
        Some(dir) => format!(
            "cancelled at step {steps} of {}: the model stays as it was; the checkpoint in {} lets the same command continue",
            opts.max_steps,
            dir.display()
        ),
        None => "training was cancelled: the model stays as it was".to_string(),
    };
    Outcome {
        after: Vec::new(),
        adopted: false,
        reason,
        model: None,
        checkpoint: kept,
    }
}

/// A finished run: the trained model judged on the held-out queries against `before`, and written
/// to `out` when it is better (the checkpoint is left for the caller to decide).
#[allow(clippy::too_many_arguments)]
fn judged_outcome(
    model: &LoadedModel,
    dataset: &Dataset,
    opts: &TrainOptions,
    out: &Path,
    agg: &TrainableAggregation,
    (db_frozen, q_frozen): (&[Tensor], &[Tensor]),
    rng: &mut Rng,
    before: &[EvalResult],
    losses: &[f64],
) -> Result<Outcome> {
    let trained = describe_trained(model, agg, db_frozen, q_frozen, rng)?;
    let after = evaluate(dataset, &trained.queries, &trained.database)?;
    let (adopted, reason) = judge(before, &after);
    let model_path = if adopted {
        let made = adopt::Trained {
            agg,
            whiten: trained.whiten.as_ref(),
            dataset,
            opts,
            steps: losses.len(),
            losses,
            reason: &reason,
        };
        Some(adopt::write_model(model, &made, out)?)
    } else {
        None
    };
    Ok(Outcome {
        after,
        adopted,
        reason,
        model: model_path,
        checkpoint: None,
    })
}

/// A run before its first image is read: the training size chosen from the device's memory (and
/// the options that record it), the places with thresholds adapted to them, and the images that
/// can be queries.
struct RunPlan {
    opts: TrainOptions,
    memory: budget::MemoryPlan,
    places: Places,
    thresholds: Thresholds,
    trainable: Vec<usize>,
    warnings: Vec<String>,
}

fn plan_run(
    model: &LoadedModel,
    dataset: &Dataset,
    train_rows: &[usize],
    opts: &TrainOptions,
) -> Result<RunPlan> {
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
    let opts = TrainOptions {
        long_side: Some(memory.long_side),
        ..opts.clone()
    };
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
    Ok(RunPlan {
        opts,
        memory,
        places,
        thresholds,
        trainable,
        warnings,
    })
}

fn new_optimizer(agg: &TrainableAggregation, opts: &TrainOptions) -> Optimizer {
    Optimizer::with_method(
        agg.params(opts.crn_lr_mult),
        match opts.optimizer {
            OptimizerChoice::Sgd => Method::Sgd {
                momentum: opts.momentum,
            },
            OptimizerChoice::AdamW => Method::ADAMW,
        },
        opts.weight_decay,
    )
}

/// Where a run keeps its checkpoint (none without `opts.checkpoints`), and the time it has taken,
/// the runs it continues included.
struct Checkpoints {
    dir: Option<PathBuf>,
    fingerprint: String,
    /// Seconds spent by the stopped run this one continues.
    earlier_seconds: f64,
    started: Instant,
}

impl Checkpoints {
    fn new(
        model: &LoadedModel,
        dataset: &Dataset,
        train_rows: &[usize],
        opts: &TrainOptions,
        started: Instant,
    ) -> Checkpoints {
        let fingerprint = run_fingerprint(model, dataset, train_rows, opts);
        Checkpoints {
            dir: opts
                .checkpoints
                .as_ref()
                .map(|root| checkpoint::folder(root, &fingerprint)),
            fingerprint,
            earlier_seconds: 0.0,
            started,
        }
    }

    /// Restores the state of a stopped run of the same command, unless `opts.fresh`: the step it
    /// continues from.
    fn resume(
        &mut self,
        opts: &TrainOptions,
        agg: &TrainableAggregation,
        optimizer: &mut Optimizer,
        rng: &mut Rng,
        losses: &mut Vec<f64>,
    ) -> Result<Option<usize>> {
        let Some(dir) = self.dir.as_ref().filter(|_| !opts.fresh) else {
            return Ok(None);
        };
        let Some(saved) = checkpoint::load(dir, &self.fingerprint)? else {
            return Ok(None);
        };
        agg.restore(&saved.params)?;
        optimizer.restore_velocities(&saved.velocities, saved.state.updates)?;
        *rng = Rng::new(saved.state.rng);
        *losses = saved.state.losses;
        self.earlier_seconds = saved.state.seconds;
        Ok(Some(saved.state.step))
    }

    fn save(
        &self,
        agg: &TrainableAggregation,
        losses: &[f64],
        rng: &Rng,
        optimizer: &Optimizer,
    ) -> Result<()> {
        let Some(dir) = &self.dir else {
            return Ok(());
        };
        let state = checkpoint::CheckpointState {
            updates: optimizer.updates,
            ..checkpoint::CheckpointState::new(
                &self.fingerprint,
                losses.len(),
                losses,
                rng.state(),
                self.seconds(),
            )
        };
        let params: Vec<(String, Tensor)> = agg.tensors()?.into_iter().collect();
        checkpoint::save(dir, &state, &params, &optimizer.velocities()?)?;
        std::fs::write(dir.join("loss.svg"), checkpoint::loss_curve_svg(losses)).at(dir)
    }

    /// Removes the run's checkpoint: nothing is left to continue.
    fn remove(&self) -> Result<()> {
        match &self.dir {
            Some(dir) => checkpoint::remove(dir),
            None => Ok(()),
        }
    }

    fn seconds(&self) -> f64 {
        self.earlier_seconds + self.started.elapsed().as_secs_f64()
    }
}

/// The state the training loop advances.
struct Stepping<'a> {
    agg: &'a TrainableAggregation,
    optimizer: &'a mut Optimizer,
    rng: &'a mut Rng,
    /// One mean loss per step taken, the continued run's included.
    losses: &'a mut Vec<f64>,
}

impl Stepping<'_> {
    /// Steps until `opts.max_steps`, the time bound or a cancel (returns whether cancelled), with a
    /// checkpoint every `opts.checkpoint_every` steps.
    fn run(
        &mut self,
        data: &StepData,
        opts: &TrainOptions,
        checkpoints: &Checkpoints,
        meter: &mut ProgressMeter,
        cancel: &CancelToken,
    ) -> Result<bool> {
        meter.stage("training", Some(opts.max_steps as u64));
        meter.done = self.losses.len() as u64;
        while self.losses.len() < opts.max_steps {
            if cancel.is_cancelled() {
                return Ok(true);
            }
            if opts
                .max_minutes
                .is_some_and(|m| checkpoints.started.elapsed().as_secs_f64() > m * 60.0)
            {
                break;
            }
            let stage = Stage::at(opts, self.losses.len());
            let (loss, _) = training_step(self.agg, self.optimizer, data, opts, stage, self.rng)?;
            self.losses.push(loss);
            if opts.checkpoint_every > 0 && self.losses.len() % opts.checkpoint_every == 0 {
                checkpoints.save(self.agg, self.losses, self.rng, self.optimizer)?;
            }
            let loss = recent_mean(self.losses, 10);
            meter.detail = Some(match stage {
                Stage::All => format!("loss {loss:.4}"),
                Stage::NetVlad => format!("stage 1 (NetVLAD), loss {loss:.4}"),
                Stage::Crn => format!("stage 2 (CRN), loss {loss:.4}"),
            });
            meter.advance(1);
        }
        Ok(false)
    }
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
