//! Contextual Reweighting Network (Kim, Dunn, Frahm, CVPR 2017): a small network on the raw
//! conv5_3 features that predicts, for every location, how much it should count in NetVLAD.
//!
//! avg-pool 3x3 stride 2 (ceil mode) -> three parallel convolutions 3x3x32, 5x5x32, 7x7x20 with
//! ReLU -> concatenation (84 channels) -> 1x1 convolution to one channel (weight fixed at 1,
//! learned bias) -> ReLU -> x2 upsampling by a fixed bilinear 4x4 stride-2 transposed convolution.
//!
//! The pooling and upsampling are built from narrow/reshape/sum and `conv_transpose2d`, which
//! Candle can differentiate (its `avg_pool2d` with kernel != stride cannot), so CRN can be trained.
//! Like the authors' Caffe code, the bilinear upsampling is not normalised at the border: an
//! untrained CRN (zero filters, acc bias 1) gives a mask of 1 inside, 0.75 on border rows and
//! columns and 0.5625 in the corners.
//!
//! Weights: `aggregation.crn.filter_3_3.{weight,bias}`, `aggregation.crn.filter_5_5.*`,
//! `aggregation.crn.filter_7_7.*`, `aggregation.crn.acc_w.{weight,bias}`.

use candle_core::{DType, Device, Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, VarBuilder};

/// (name, kernel size, output channels) of the three context filters.
pub const FILTERS: [(&str, usize, usize); 3] = [
    ("filter_3_3", 3, 32),
    ("filter_5_5", 5, 32),
    ("filter_7_7", 7, 20),
];
pub const CONTEXT_CHANNELS: usize = 84;

#[derive(Debug, Clone)]
pub struct Crn {
    filters: Vec<Conv2d>,
    acc_weight: Tensor,
    acc_bias: Tensor,
    upsample: Tensor,
    /// Convolve with [`super::im2col::conv2d_same`], whose backward pass is cheap (training).
    trainable: bool,
}

/// The fixed 4x4 bilinear kernel for x2 upsampling (Caffe's "bilinear" filler): [1, 1, 4, 4].
pub fn bilinear_kernel(device: &Device) -> Result<Tensor> {
    let w = [0.25f32, 0.75, 0.75, 0.25];
    let k: Vec<f32> = (0..16).map(|i| w[i / 4] * w[i % 4]).collect();
    Tensor::from_vec(k, (1, 1, 4, 4), device)
}

/// Sums windows of 3 with stride 2 along `dim` (ceil mode: the last window may overhang the end).
fn window_sum_3_2(x: &Tensor, dim: usize, out: usize) -> Result<Tensor> {
    let len = x.dim(dim)?;
    let padded = x.pad_with_zeros(dim, 0, 2 * out + 2 - len)?;
    let mut dims = padded.dims().to_vec();
    dims[dim] = out;
    dims.insert(dim + 1, 2);
    let mut sum: Option<Tensor> = None;
    for offset in 0..3 {
        // rows offset, offset+2, ..., offset+2(out-1)
        let rows = padded
            .narrow(dim, offset, 2 * out)?
            .reshape(dims.as_slice())?
            .narrow(dim + 1, 0, 1)?
            .squeeze(dim + 1)?;
        sum = Some(match sum {
            None => rows,
            Some(s) => (s + rows)?,
        });
    }
    Ok(sum.expect("three windows"))
}

/// Output length of a 3-wide stride-2 ceil-mode pooling (no padding), as Caffe computes it.
pub fn pooled_len(len: usize) -> usize {
    if len <= 3 {
        1
    } else {
        (len - 3).div_ceil(2) + 1
    }
}

/// Average pooling 3x3, stride 2, ceil mode, dividing by the number of in-image elements of each
/// window (Caffe's AVE pooling without padding): [B, C, H, W] -> [B, C, ceil((H-3)/2)+1, ...].
pub fn avg_pool_3x3_s2_ceil(x: &Tensor) -> Result<Tensor> {
    let (_, _, h, w) = x.dims4()?;
    let (ho, wo) = (pooled_len(h), pooled_len(w));
    let summed = window_sum_3_2(&window_sum_3_2(x, 2, ho)?, 3, wo)?;
    let count = |len: usize, n: usize| -> Vec<f32> {
        (0..n)
            .map(|i| ((2 * i + 3).min(len) - 2 * i) as f32)
            .collect()
    };
    let (ch, cw) = (count(h, ho), count(w, wo));
    let inv: Vec<f32> = (0..ho * wo)
        .map(|i| 1.0 / (ch[i / wo] * cw[i % wo]))
        .collect();
    let inv = Tensor::from_vec(inv, (1, 1, ho, wo), x.device())?.to_dtype(x.dtype())?;
    summed.broadcast_mul(&inv)
}

impl Crn {
    pub fn new(vb: VarBuilder) -> Result<Self> {
        let filters = FILTERS
            .iter()
            .map(|&(name, k, out)| {
                let cfg = Conv2dConfig {
                    padding: k / 2,
                    ..Default::default()
                };
                candle_nn::conv2d(super::vgg16::FEATURE_DIM, out, k, cfg, vb.pp(name))
            })
            .collect::<Result<Vec<_>>>()?;
        let acc_weight = if vb.contains_tensor("acc_w.weight") {
            vb.get((1, CONTEXT_CHANNELS, 1, 1), "acc_w.weight")?
        } else {
            Tensor::ones((1, CONTEXT_CHANNELS, 1, 1), vb.dtype(), vb.device())?
        };
        let acc_bias = vb.get(1, "acc_w.bias")?;
        let upsample = bilinear_kernel(vb.device())?.to_dtype(vb.dtype())?;
        Ok(Crn {
            filters,
            acc_weight,
            acc_bias,
            upsample,
            trainable: false,
        })
    }

    /// A CRN from its tensors (for training, where they are variables): the three filters'
    /// (weight, bias) in `FILTERS` order and the accumulator bias [1]; the accumulator weight is
    /// fixed at 1. It convolves with `im2col`, whose gradients are cheap.
    pub fn from_parts(filters: Vec<(Tensor, Tensor)>, acc_bias: Tensor) -> Result<Self> {
        let (device, dtype) = (acc_bias.device().clone(), acc_bias.dtype());
        let filters = filters
            .into_iter()
            .zip(FILTERS)
            .map(|((w, b), (_, k, _))| {
                Conv2d::new(
                    w,
                    Some(b),
                    Conv2dConfig {
                        padding: k / 2,
                        ..Default::default()
                    },
                )
            })
            .collect();
        Ok(Crn {
            filters,
            acc_weight: Tensor::ones((1, CONTEXT_CHANNELS, 1, 1), dtype, &device)?,
            acc_bias,
            upsample: bilinear_kernel(&device)?.to_dtype(dtype)?,
            trainable: true,
        })
    }

    /// The untrained state: zero filters and an accumulator bias of 1.
    pub fn identity(device: &Device, dtype: DType) -> Result<Self> {
        let filters = FILTERS
            .iter()
            .map(|&(_, k, out)| {
                let w = Tensor::zeros((out, super::vgg16::FEATURE_DIM, k, k), dtype, device)?;
                let b = Tensor::zeros(out, dtype, device)?;
                Ok(Conv2d::new(
                    w,
                    Some(b),
                    Conv2dConfig {
                        padding: k / 2,
                        ..Default::default()
                    },
                ))
            })
            .collect::<Result<Vec<_>>>()?;
        Ok(Crn {
            filters,
            acc_weight: Tensor::ones((1, CONTEXT_CHANNELS, 1, 1), dtype, device)?,
            acc_bias: Tensor::ones(1, dtype, device)?,
            upsample: bilinear_kernel(device)?.to_dtype(dtype)?,
            trainable: false,
        })
    }

    pub fn filters(&self) -> &[Conv2d] {
        &self.filters
    }

    pub fn acc_bias(&self) -> &Tensor {
        &self.acc_bias
    }
}

impl Module for Crn {
    /// conv5_3 features [B, 512, H, W] (H, W even) -> reweighting mask [B, 1, H, W].
    fn forward(&self, features: &Tensor) -> Result<Tensor> {
        let pooled = avg_pool_3x3_s2_ceil(features)?; // [B, 512, H/2, W/2]
        let conv = |x: &Tensor, f: &Conv2d| {
            if self.trainable {
                super::im2col::conv2d_same(x, f.weight(), f.bias())
            } else {
                f.forward(x)
            }
        };
        let context = self
            .filters
            .iter()
            .map(|f| conv(&pooled, f)?.relu())
            .collect::<Result<Vec<_>>>()?;
        let context = Tensor::cat(&context, 1)?; // [B, 84, H/2, W/2]
        let acc = if self.trainable {
            super::im2col::conv2d_same(&context, &self.acc_weight, None)?
        } else {
            context.conv2d(&self.acc_weight, 0, 1, 1, 1)?
        }
        .broadcast_add(&self.acc_bias.reshape((1, 1, 1, 1))?)?
        .relu()?; // [B, 1, H/2, W/2]
        acc.conv_transpose2d(&self.upsample, 1, 0, 2, 1) // [B, 1, H, W]
    }
}
