//! Judging a run with the eval harness: the current model's recall on the held-out queries, the
//! trained one's (with PCA-whitening learned again on the training images), and whether it is
//! better.

use candle_core::{DType, Module, Tensor};

use super::network::TrainableAggregation;
use crate::error::Result;
use crate::eval::{Dataset, EvalResult};
use crate::model::build::{learn_whitening, Rng};
use crate::model::netvlad::l2_normalize;
use crate::model::whiten::Whitening;
use crate::model::LoadedModel;
use crate::progress::CancelToken;

/// Before: the model as the user has it, at its own input size (descriptors cached).
pub(super) fn evaluate_current(
    model: &LoadedModel,
    dataset: &Dataset,
    cache: &crate::model::cache::DescriptorCache,
    cancel: &CancelToken,
) -> Result<Vec<EvalResult>> {
    let eval_opts = crate::eval::EvalOptions {
        hnsw: false,
        describe: crate::model::describe::DescribeOptions {
            long_side: model.card.input.long_side,
            ..Default::default()
        },
        ..Default::default()
    };
    crate::eval::evaluate_dataset(
        model,
        dataset,
        &eval_opts,
        cache,
        &crate::progress::NoProgress,
        cancel,
    )
    .map(|e| e.results)
}

/// The trained descriptors of the held-out queries and of the database, and the whitening learned
/// again for them (`None` when the model has none, or too few vectors to learn one from).
pub(super) struct TrainedDescriptors {
    pub queries: Vec<Vec<f32>>,
    pub database: Vec<Vec<f32>>,
    pub whiten: Option<Whitening>,
}

/// After: the trained aggregation over the frozen features of the database and the queries, with
/// PCA-whitening learned again on the database images (the whole image and random crops of its
/// feature map, as the built-in model's was) to the model's whitened dimension.
pub(super) fn describe_trained(
    model: &LoadedModel,
    agg: &TrainableAggregation,
    db_frozen: &[Tensor],
    q_frozen: &[Tensor],
    rng: &mut Rng,
) -> Result<TrainedDescriptors> {
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
    let (db_features, q_features) = (conv5_3(db_frozen)?, conv5_3(q_frozen)?);
    let whiten = relearn_whitening(agg, &db_features, dim, rng)?;
    let describe = |f: &Tensor| -> Result<Vec<f32>> {
        let v = agg.forward(f)?.detach();
        let v = match &whiten {
            Some(w) => w.forward(&v)?,
            None => l2_normalize(&v, 1)?,
        };
        Ok(rows(&v)?.remove(0))
    };
    let queries = q_features.iter().map(&describe).collect::<Result<_>>()?;
    let database = db_features.iter().map(&describe).collect::<Result<_>>()?;
    Ok(TrainedDescriptors {
        queries,
        database,
        whiten,
    })
}

/// PCA-whitening to `dim` learned on the NetVLAD vectors of `features` (conv5_3 maps) and of
/// random crops of them, enough crops for more vectors than dimensions.
fn relearn_whitening(
    agg: &TrainableAggregation,
    features: &[Tensor],
    dim: usize,
    rng: &mut Rng,
) -> Result<Option<Whitening>> {
    let mut vectors = Vec::new();
    for f in features {
        vectors.push(agg.forward(f)?.detach());
        let crops = dim / features.len().max(1) + 1;
        for _ in 0..crops {
            vectors.push(agg.forward(&even_crop(f, rng)?)?.detach());
        }
    }
    if dim > 0 && vectors.len() > dim {
        let stacked = Tensor::cat(&vectors, 0)?;
        let (mean, weight, _) = learn_whitening(&stacked, dim, 0.1)?;
        Ok(Some(Whitening::from_parts(mean, weight)))
    } else {
        Ok(None)
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

/// Recall of queries against the database with descriptors from `describe`.
pub(super) fn evaluate(
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

/// Whether the trained model is better on the held-out queries (recall@1, then recall@5), and the
/// sentence that says so.
pub(super) fn judge(before: &[EvalResult], after: &[EvalResult]) -> (bool, String) {
    let (b1, a1) = (recall(before, "1"), recall(after, "1"));
    let (b5, a5) = (recall(before, "5"), recall(after, "5"));
    let better = a1 > b1 || (a1 == b1 && a5 > b5);
    let reason = if better {
        format!(
            "recall@1 {b1:.3} -> {a1:.3}, recall@5 {b5:.3} -> {a5:.3} on {} held-out queries",
            before.first().map(|r| r.queries).unwrap_or(0)
        )
    } else {
        format!("not better on the held-out queries (recall@1 {b1:.3} -> {a1:.3}, recall@5 {b5:.3} -> {a5:.3}): the current model stays")
    };
    (better, reason)
}
