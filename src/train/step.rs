//! One training step: a batch sampled, described (with region-of-interest crops), scored by the
//! margin loss, and the mean gradient of `accumulate` such batches applied.

use candle_core::{DType, Tensor};

use super::mining::{self, choose_negatives, sample_batch, Places, Thresholds};
use super::network::TrainableAggregation;
use super::optim::{Accumulated, Optimizer};
use super::options::{Stage, TrainOptions};
use crate::error::Result;
use crate::model::build::Rng;

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

/// The region-of-interest crops of a batch (the paper's augmentation): each query, half of the
/// time, is cropped to the box of its inliers with a verified positive in the batch.
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

#[cfg(test)]
mod tests {
    use candle_core::Device;

    use super::super::network::gaussian;
    use super::super::network::testing::random_aggregation;
    use super::*;

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
}
