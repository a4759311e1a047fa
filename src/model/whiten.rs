//! PCA-whitening of NetVLAD vectors: y = W (x - mean), then L2-normalisation, where
//! W = diag(1/sqrt(lambda + eps)) U^T holds the leading principal directions.
//!
//! Weights: `whiten.mean` [32768], `whiten.weight` [dim, 32768], and an optional `whiten.bias`
//! [dim] added after the projection (Patch-NetVLAD's WPCA layer is stored that way).

use candle_core::{Module, Result, Tensor};
use candle_nn::VarBuilder;

use super::netvlad::l2_normalize;

#[derive(Debug, Clone)]
pub struct Whitening {
    mean: Tensor,
    weight: Tensor,
    bias: Option<Tensor>,
}

impl Whitening {
    pub fn new(input_dim: usize, vb: VarBuilder) -> Result<Self> {
        let mean = vb.get(input_dim, "mean")?;
        let weight = vb.get_unchecked("weight")?;
        let (_, d) = weight.dims2()?;
        if d != input_dim {
            candle_core::bail!("whiten.weight has {d} columns, expected {input_dim}");
        }
        let bias = if vb.contains_tensor("bias") {
            Some(vb.get(weight.dim(0)?, "bias")?)
        } else {
            None
        };
        Ok(Whitening { mean, weight, bias })
    }

    pub fn from_parts(mean: Tensor, weight: Tensor) -> Self {
        Whitening {
            mean,
            weight,
            bias: None,
        }
    }

    pub fn output_dim(&self) -> usize {
        self.weight.dim(0).unwrap_or(0)
    }

    pub fn mean(&self) -> &Tensor {
        &self.mean
    }

    pub fn weight(&self) -> &Tensor {
        &self.weight
    }
}

impl Module for Whitening {
    /// [B, 32768] -> [B, dim], unit length.
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let centered = xs.broadcast_sub(&self.mean)?;
        let mut projected = centered.matmul(&self.weight.t()?)?;
        if let Some(b) = &self.bias {
            projected = projected.broadcast_add(b)?;
        }
        l2_normalize(&projected, 1)
    }
}
