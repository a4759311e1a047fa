//! The place-recognition network: VGG16 conv5_3 features, an optional CRN mask, NetVLAD
//! aggregation and PCA-whitening, in Candle, and the files it is stored in.
//!
//! One file per network part (`vgg16`, `crn`, `netvlad`, `whiten`), weights loaded through
//! `VarBuilder` paths that mirror the checkpoint names. A model is a folder holding
//! `model.safetensors` and its model card `model.json` (name, version, input policy, descriptor
//! size, preprocessing, provenance, licence, attribution and the weights' SHA-256).

pub mod build;
pub mod cache;
pub mod card;
pub mod content_cache;
pub mod cpu_backbone;
pub mod crn;
pub mod describe;
pub mod device;
pub mod explain;
pub mod im2col;
pub mod import;
pub mod netvlad;
pub mod onnx;
pub mod preprocess;
pub mod vgg16;
pub mod whiten;

use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Module, Tensor};
use candle_nn::VarBuilder;

pub use card::ModelCard;
use crn::Crn;
use netvlad::NetVlad;
use vgg16::Vgg16;
use whiten::Whitening;

use crate::error::{Error, IoContext, Result};

/// The network's stages whose output can be asked for.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Stage {
    /// The 32768-d NetVLAD vector.
    NetVlad,
    /// The whitened, L2-normalised descriptor (the NetVLAD vector when the model has no whitening).
    Descriptor,
}

/// CRN + NetVLAD over VGG16, with optional PCA-whitening.
#[derive(Debug, Clone)]
pub struct PlaceNet {
    pub backbone: Vgg16,
    /// The fast CPU inference path for the backbone (see `cpu_backbone`); `None` for training
    /// and on GPUs, where Candle's own convolutions run.
    pub cpu_backbone: Option<std::sync::Arc<cpu_backbone::CpuBackbone>>,
    pub crn: Option<Crn>,
    pub netvlad: NetVlad,
    pub whiten: Option<Whitening>,
}

/// Both outputs of one forward pass.
pub struct Descriptors {
    /// [B, 32768]
    pub netvlad: Tensor,
    /// [B, dim]
    pub descriptor: Tensor,
}

impl PlaceNet {
    /// Builds the network from a `VarBuilder` over checkpoint names. CRN and whitening are used
    /// when their tensors are present: a file without CRN tensors is plain NetVLAD (mask 1).
    pub fn new(vb: VarBuilder) -> candle_core::Result<Self> {
        let backbone = Vgg16::new(vb.pp("backbone"))?;
        let agg = vb.pp("aggregation");
        let crn = if agg.contains_tensor("crn.filter_3_3.weight") {
            Some(Crn::new(agg.pp("crn"))?)
        } else {
            None
        };
        let netvlad = NetVlad::new(vgg16::FEATURE_DIM, agg)?;
        let whiten = if vb.contains_tensor("whiten.weight") {
            Some(Whitening::new(
                netvlad::CLUSTERS * vgg16::FEATURE_DIM,
                vb.pp("whiten"),
            )?)
        } else {
            None
        };
        Ok(PlaceNet {
            backbone,
            cpu_backbone: None,
            crn,
            netvlad,
            whiten,
        })
    }

    /// Switches the backbone to the fast CPU inference path.
    pub fn with_cpu_inference(mut self) -> candle_core::Result<Self> {
        self.cpu_backbone = Some(std::sync::Arc::new(cpu_backbone::CpuBackbone::new(
            &self.backbone,
        )?));
        Ok(self)
    }

    /// conv5_3 features of preprocessed images.
    pub fn features(&self, images: &Tensor) -> candle_core::Result<Tensor> {
        match &self.cpu_backbone {
            Some(fast) if images.device().is_cpu() => fast.forward(images),
            _ => self.backbone.forward(images),
        }
    }

    pub fn netvlad_dim(&self) -> usize {
        netvlad::CLUSTERS * vgg16::FEATURE_DIM
    }

    pub fn descriptor_dim(&self) -> usize {
        self.whiten
            .as_ref()
            .map(|w| w.output_dim())
            .unwrap_or(self.netvlad_dim())
    }

    /// The CRN mask for conv5_3 features, if the model has CRN.
    pub fn mask(&self, features: &Tensor) -> candle_core::Result<Option<Tensor>> {
        self.crn.as_ref().map(|c| c.forward(features)).transpose()
    }

    /// [B, 3, H, W] preprocessed images (H, W multiples of 32) -> descriptors.
    pub fn forward(&self, images: &Tensor) -> candle_core::Result<Descriptors> {
        let features = self.features(images)?;
        self.aggregate(&features)
    }

    /// conv5_3 features -> descriptors.
    pub fn aggregate(&self, features: &Tensor) -> candle_core::Result<Descriptors> {
        let mask = self.mask(features)?;
        let netvlad = self.netvlad.forward_masked(features, mask.as_ref())?;
        let descriptor = match &self.whiten {
            Some(w) => w.forward(&netvlad)?,
            None => netvlad.clone(),
        };
        Ok(Descriptors {
            netvlad,
            descriptor,
        })
    }
}

/// A model ready to run: its card, its network on a device, and the hash that keys its descriptors.
pub struct LoadedModel {
    pub card: ModelCard,
    pub net: PlaceNet,
    pub device: Device,
    /// SHA-256 of the weights file, hex.
    pub hash: String,
    pub weights_path: PathBuf,
}

/// Where the built-in model lives: `$PINPOINT_MODEL`, else `models/pinpoint-vgg16-netvlad` next to
/// the executable's installation (`../share/pinpoint/models`), else in the source tree.
pub fn default_model_path() -> PathBuf {
    if let Some(p) = std::env::var_os("PINPOINT_MODEL") {
        return PathBuf::from(p);
    }
    let name = card::DEFAULT_MODEL_DIR;
    if let Ok(exe) = std::env::current_exe() {
        if let Some(prefix) = exe.parent().and_then(|bin| bin.parent()) {
            let installed = prefix.join("share/pinpoint/models").join(name);
            if installed.is_dir() {
                return installed;
            }
        }
    }
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("models")
        .join(name)
}

/// The catalog setting that names the model in use (a model folder or weights file, as a path);
/// absent, the built-in model is used. `pinpoint train` sets it when a fine-tuned model is adopted;
/// `pinpoint model use` changes it by hand.
pub const ACTIVE_MODEL_SETTING: &str = "model.active";

/// The model this catalog uses: the one its setting names, else the built-in model. A setting that
/// names a model no longer there is an error naming it (falling back silently would describe the
/// library with another model than the user chose).
pub fn active_model_path(catalog: &crate::catalog::Catalog) -> Result<PathBuf> {
    match catalog
        .setting(ACTIVE_MODEL_SETTING)?
        .and_then(|v| v.as_str().map(PathBuf::from))
    {
        Some(path) if path.exists() => Ok(path),
        Some(path) => Err(Error::ModelFile {
            path,
            reason: "the catalog's active model is gone: `pinpoint model use builtin` goes back to the built-in model".into(),
        }),
        None => Ok(default_model_path()),
    }
}

/// Makes `path` the catalog's model (`None`: the built-in one), after checking that it is a model
/// (card and weights resolve). Returns the path now in use.
pub fn set_active_model(catalog: &crate::catalog::Catalog, path: Option<&Path>) -> Result<PathBuf> {
    match path {
        Some(p) => {
            card::resolve(p)?;
            let absolute = std::fs::canonicalize(p).at(p)?;
            catalog.set_setting(
                ACTIVE_MODEL_SETTING,
                &serde_json::Value::String(absolute.display().to_string()),
            )?;
            Ok(absolute)
        }
        None => {
            catalog.set_setting(ACTIVE_MODEL_SETTING, &serde_json::Value::Null)?;
            Ok(default_model_path())
        }
    }
}

/// SHA-256 of a file, hex.
pub fn sha256_file(path: &Path) -> Result<String> {
    use sha2::{Digest, Sha256};
    let mut file = std::fs::File::open(path).at(path)?;
    let mut hasher = Sha256::new();
    std::io::copy(&mut file, &mut hasher).at(path)?;
    Ok(hex(&hasher.finalize()))
}

pub fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

impl LoadedModel {
    /// Loads a model folder (`model.json` + weights) or a bare `.safetensors` file, checking the
    /// weights against the card's SHA-256.
    pub fn load(path: &Path, device: &Device) -> Result<LoadedModel> {
        let (card, weights_path) = card::resolve(path)?;
        let hash = sha256_file(&weights_path)?;
        if let Some(expected) = card.weights.sha256.as_deref() {
            if expected != hash {
                return Err(Error::ModelFile {
                    path: weights_path,
                    reason: format!("SHA-256 {hash} does not match the model card's {expected}: the file is damaged or was replaced"),
                });
            }
        }
        let bad = |e: candle_core::Error| Error::ModelFile {
            path: weights_path.clone(),
            reason: e.to_string(),
        };
        // SAFETY: the weights file is memory-mapped read-only; Pinpoint never writes model files
        // it has loaded, and the mapping lives only as long as loading takes.
        let vb =
            unsafe { VarBuilder::from_mmaped_safetensors(&[&weights_path], DType::F32, device) }
                .map_err(bad)?;
        let mut net = PlaceNet::new(vb).map_err(bad)?;
        if device.is_cpu() {
            net = net.with_cpu_inference().map_err(bad)?;
        }
        Ok(LoadedModel {
            card,
            net,
            device: device.clone(),
            hash,
            weights_path,
        })
    }

    /// Runs the network on preprocessed images [B, 3, H, W] and returns the requested stage as rows.
    pub fn run(&self, images: &Tensor, stage: Stage) -> Result<Vec<Vec<f32>>> {
        let out = self.net.forward(images)?;
        let t = match stage {
            Stage::NetVlad => out.netvlad,
            Stage::Descriptor => out.descriptor,
        };
        Ok(t.to_device(&Device::Cpu)?.to_dtype(DType::F32)?.to_vec2()?)
    }
}
