//! Which geographic neighbours really show the same scene: positives checked by geometric
//! verification (see `geometry`) once, with the starting model, before training.

use std::collections::hash_map::Entry;
use std::collections::{BTreeSet, HashMap};
use std::time::Instant;

use candle_core::{DType, Tensor};
use serde::Serialize;

use super::mining::{Places, Relation, Thresholds, VerifiedPairs};
use super::network::TrainableAggregation;
use super::options::TrainOptions;
use crate::error::Result;
use crate::eval::Dataset;
use crate::geometry;
use crate::model::LoadedModel;
use crate::progress::{CancelToken, ProgressMeter};

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

/// The training images as verification sees them.
pub(super) struct TrainingImages<'a> {
    pub dataset: &'a Dataset,
    /// The dataset's database rows that train, as `places` numbers them.
    pub train_rows: &'a [usize],
    pub places: &'a Places,
    pub thresholds: &'a Thresholds,
    /// The images that can be queries (with a positive and a negative each).
    pub trainable: &'a [usize],
    /// The frozen features of every database row.
    pub frozen: &'a [Tensor],
}

/// Verifies the positives when `opts.verify` asks for it: the verified pairs when enough images
/// keep a positive to train on (else `None`, with a warning: geographic neighbours are the
/// positives), and what verification found.
pub(super) fn verify_for_training(
    model: &LoadedModel,
    images: &TrainingImages,
    agg: &TrainableAggregation,
    opts: &TrainOptions,
    warnings: &mut Vec<String>,
    meter: &mut ProgressMeter,
    cancel: &CancelToken,
) -> Result<(Option<VerifiedPairs>, Option<VerificationSummary>)> {
    if !opts.verify {
        return Ok((None, None));
    }
    let started_verifying = Instant::now();
    let (v, checked) = verify_positives(model, images, agg, opts.verify_candidates, meter, cancel)?;
    let with_positives = images.places.trainable(images.thresholds, Some(&v));
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
    Ok((used.then_some(v), Some(summary)))
}

/// Verifies, for every trainable image, its `candidates` most similar geographic positives (under
/// the starting model) and returns the pairs that passed with their regions, and how many pairs
/// were checked. Local features are extracted once per image, when first needed.
fn verify_positives(
    model: &LoadedModel,
    images: &TrainingImages,
    agg: &TrainableAggregation,
    candidates: usize,
    meter: &mut ProgressMeter,
    cancel: &CancelToken,
) -> Result<(VerifiedPairs, usize)> {
    let TrainingImages {
        dataset,
        train_rows,
        places,
        thresholds,
        trainable,
        frozen,
    } = images;
    let desc: Vec<Tensor> = train_rows
        .iter()
        .map(|&r| Ok(agg.forward(&agg.conv5_3(&frozen[r])?)?.detach()))
        .collect::<Result<_>>()?;
    let desc = Tensor::cat(&desc, 0)?;
    let sims: Vec<Vec<f32>> = desc.matmul(&desc.t()?)?.to_dtype(DType::F32)?.to_vec2()?;
    let mut pairs = BTreeSet::new();
    for &i in trainable.iter() {
        let mut pos: Vec<usize> = (0..places.len())
            .filter(|&j| j != i && places.relation(i, j, thresholds) == Relation::Positive)
            .collect();
        pos.sort_by(|&a, &b| sims[i][b].total_cmp(&sims[i][a]).then(a.cmp(&b)));
        for &j in pos.iter().take(candidates) {
            pairs.insert((i.min(j), i.max(j)));
        }
    }
    let opts = geometry::VerifyOptions::default();
    let extractor = geometry::Extractor::new(model, &opts)?;
    let mut features: HashMap<usize, geometry::LocalFeatures> = HashMap::new();
    let mut verified = VerifiedPairs::default();
    meter.stage("verifying positives", Some(pairs.len() as u64));
    for &(a, b) in &pairs {
        cancel.check()?;
        for i in [a, b] {
            if let Entry::Vacant(e) = features.entry(i) {
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
