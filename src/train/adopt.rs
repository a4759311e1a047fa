//! Adopting a better model: writing its folder (card, weights, loss curve) and, for the catalog's
//! own training, making it the catalog's model.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};

use super::checkpoint;
use super::network::TrainableAggregation;
use super::options::TrainOptions;
use crate::error::{Error, IoContext, Result};
use crate::eval::Dataset;
use crate::model::whiten::Whitening;
use crate::model::LoadedModel;

/// What an adopted model is made of and how it was made, for its folder and card.
pub(super) struct Trained<'a> {
    pub agg: &'a TrainableAggregation,
    pub whiten: Option<&'a Whitening>,
    pub dataset: &'a Dataset,
    pub opts: &'a TrainOptions,
    pub steps: usize,
    pub losses: &'a [f64],
    /// Why it was adopted (the recall it gained).
    pub reason: &'a str,
}

/// Writes the model folder `out` with its loss curve (`loss.svg`); returns the folder.
pub(super) fn write_model(model: &LoadedModel, trained: &Trained, out: &Path) -> Result<PathBuf> {
    let path = save_model(
        model,
        trained.agg,
        trained.whiten,
        out,
        trained.dataset,
        trained.opts,
        trained.steps,
        trained.reason,
    )?;
    let curve = path.join("loss.svg");
    std::fs::write(&curve, checkpoint::loss_curve_svg(trained.losses)).at(&curve)?;
    Ok(path)
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

/// Makes the adopted model at `path` the catalog's: descriptors are keyed by model, so the next
/// describe (or update) computes them again, and with them the indexes. Installed reference
/// databases described with the `previous` model wait to be described again: the warning names
/// them.
pub(super) fn make_catalog_model(
    catalog: &crate::catalog::Catalog,
    previous: &LoadedModel,
    path: &Path,
) -> Result<Option<String>> {
    crate::model::set_active_model(catalog, Some(path))?;
    let stale: Vec<String> = catalog
        .refdbs()?
        .into_iter()
        .filter(|d| d.model_hash == previous.hash)
        .map(|d| d.name)
        .collect();
    Ok((!stale.is_empty()).then(|| {
        format!(
            "reference databases described with the previous model ({}) are not used until described again: `pinpoint refdb redescribe`",
            stale.join(", ")
        )
    }))
}
