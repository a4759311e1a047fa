//! What training reads: the places of a dataset's rows, and the frozen backbone's features of its
//! images, computed once.

use std::path::PathBuf;

use candle_core::{Device, Tensor};

use super::mining::Places;
use crate::error::{Error, Result};
use crate::eval::{Dataset, Truth};
use crate::model::LoadedModel;
use crate::progress::{CancelToken, ProgressMeter};

/// What to train on: the places of the database rows `rows` of an eval-harness dataset (its
/// queries are held out).
pub(super) fn places_of(dataset: &Dataset, rows: &[usize]) -> Result<Places> {
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

/// The frozen features of the dataset's database images, then of its queries.
pub(super) fn frozen_features(
    model: &LoadedModel,
    dataset: &Dataset,
    long_side: u32,
    until_pool4: bool,
    meter: &mut ProgressMeter,
    cancel: &CancelToken,
) -> Result<(Vec<Tensor>, Vec<Tensor>)> {
    meter.stage(
        "features",
        Some((dataset.database.len() + dataset.queries.len()) as u64),
    );
    let database = features(
        model,
        &dataset.database,
        long_side,
        until_pool4,
        meter,
        cancel,
    )?;
    let queries = features(
        model,
        &dataset.queries,
        long_side,
        until_pool4,
        meter,
        cancel,
    )?;
    Ok((database, queries))
}
