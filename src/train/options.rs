//! What a training run is asked to do: its options, the optimiser, the stage of each step.

use std::path::PathBuf;

use serde::Serialize;

use super::mining::Thresholds;
use crate::error::{Error, Result};

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
