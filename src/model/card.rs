//! Model cards: the JSON file beside a model's weights that says what it is and where it came from.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};

use super::preprocess::{DEFAULT_LONG_SIDE, MEAN_RGB, SIDE_MULTIPLE};
use crate::error::{Error, IoContext, Result};

/// The folder name of the model that ships in `models/`.
pub const DEFAULT_MODEL_DIR: &str = "pinpoint-vgg16-netvlad";
pub const CARD_FILE: &str = "model.json";
pub const WEIGHTS_FILE: &str = "model.safetensors";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct InputPolicy {
    /// The long side of the network input, in pixels.
    pub long_side: u32,
    /// Both sides are rounded to multiples of this.
    pub side_multiple: u32,
    pub resize: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Preprocessing {
    pub channel_order: String,
    pub value_range: String,
    pub mean_rgb: [f32; 3],
    pub orientation: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct DescriptorInfo {
    pub backbone: String,
    pub clusters: usize,
    pub netvlad_dim: usize,
    /// Whitened dimension; `None` when the descriptor is the NetVLAD vector itself.
    pub whitened_dim: Option<usize>,
    pub crn: bool,
    pub layout: String,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct WeightsInfo {
    pub file: String,
    /// SHA-256 of the weights file, hex. Checked on every load when present.
    pub sha256: Option<String>,
    pub dtype: String,
    pub bytes: Option<u64>,
}

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ModelCard {
    pub name: String,
    pub version: String,
    pub description: String,
    pub input: InputPolicy,
    pub preprocessing: Preprocessing,
    pub descriptor: DescriptorInfo,
    pub weights: WeightsInfo,
    pub provenance: String,
    pub licence: String,
    pub attribution: String,
    pub created_at: String,
    /// How the model was built (sample, k-means, whitening), for reproducibility.
    #[serde(default)]
    pub build: serde_json::Value,
}

impl ModelCard {
    /// A card for weights that arrived without one (an imported checkpoint).
    pub fn for_weights(
        name: &str,
        file: &str,
        whitened_dim: Option<usize>,
        crn: bool,
    ) -> ModelCard {
        ModelCard {
            name: name.to_string(),
            version: "0".to_string(),
            description: "Weights without a model card".to_string(),
            input: InputPolicy::default(),
            preprocessing: Preprocessing::default(),
            descriptor: DescriptorInfo {
                backbone: "vgg16".into(),
                clusters: super::netvlad::CLUSTERS,
                netvlad_dim: super::netvlad::CLUSTERS * super::vgg16::FEATURE_DIM,
                whitened_dim,
                crn,
                layout: "cluster-major (k*512 + d)".into(),
            },
            weights: WeightsInfo {
                file: file.to_string(),
                sha256: None,
                dtype: "unknown".into(),
                bytes: None,
            },
            provenance: "unknown".into(),
            licence: "unknown".into(),
            attribution: String::new(),
            created_at: String::new(),
            build: serde_json::Value::Null,
        }
    }

    pub fn write(&self, path: &Path) -> Result<()> {
        let json = serde_json::to_string_pretty(self).expect("model card serialises");
        std::fs::write(path, json + "\n").at(path)
    }
}

impl Default for InputPolicy {
    fn default() -> Self {
        InputPolicy {
            long_side: DEFAULT_LONG_SIDE,
            side_multiple: SIDE_MULTIPLE,
            resize: "upright (EXIF orientation applied); long side scaled to long_side, both sides rounded to multiples \
                     of side_multiple; an image already of such a size is used as is"
                .into(),
        }
    }
}

impl Default for Preprocessing {
    fn default() -> Self {
        Preprocessing {
            channel_order:
                "RGB (conv1_1 input channels flipped from the BGR Caffe weights at import)".into(),
            value_range: "0-255".into(),
            mean_rgb: MEAN_RGB,
            orientation: "EXIF orientation applied before resizing".into(),
        }
    }
}

/// A model path (folder, card or weights file) -> (card, weights file).
pub fn resolve(path: &Path) -> Result<(ModelCard, PathBuf)> {
    let read_card = |card_path: &Path| -> Result<ModelCard> {
        let text = std::fs::read_to_string(card_path).at(card_path)?;
        serde_json::from_str(&text).map_err(|e| Error::ModelFile {
            path: card_path.to_path_buf(),
            reason: format!("bad model card: {e}"),
        })
    };
    if path.is_dir() {
        let card_path = path.join(CARD_FILE);
        if !card_path.is_file() {
            return Err(Error::ModelFile {
                path: path.to_path_buf(),
                reason: format!("no {CARD_FILE} in this folder"),
            });
        }
        let card = read_card(&card_path)?;
        let weights = path.join(&card.weights.file);
        return Ok((card, weights));
    }
    if !path.exists() {
        return Err(Error::ModelFile {
            path: path.to_path_buf(),
            reason: "no such file or folder".into(),
        });
    }
    if path.extension().is_some_and(|e| e == "json") {
        let card = read_card(path)?;
        let weights = path.with_file_name(&card.weights.file);
        return Ok((card, weights));
    }
    // A bare weights file: use a card beside it if there is one.
    let beside = path.with_extension("json");
    if beside.is_file() {
        let card = read_card(&beside)?;
        return Ok((card, path.to_path_buf()));
    }
    let name = path
        .file_stem()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    let file = path
        .file_name()
        .map(|s| s.to_string_lossy().into_owned())
        .unwrap_or_default();
    Ok((
        ModelCard::for_weights(&name, &file, None, false),
        path.to_path_buf(),
    ))
}
