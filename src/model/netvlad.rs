//! NetVLAD aggregation (Arandjelović et al., CVPR 2016), with the CRN mask of Kim et al. weighting
//! each location's soft-assignment.
//!
//! Weights: `aggregation.centroids` [K, D], `aggregation.conv.weight` [K, D, 1, 1] and an optional
//! `aggregation.conv.bias` [K] (pytorch-NetVlad's names under `aggregation.`).

use candle_core::{DType, Module, Result, Tensor, D};
use candle_nn::{Conv2d, Conv2dConfig, VarBuilder};

/// Number of clusters.
pub const CLUSTERS: usize = 64;

#[derive(Debug, Clone)]
pub struct NetVlad {
    centroids: Tensor,
    conv: Conv2d,
    /// Assign with a matrix product, whose backward pass is cheap (training; see `im2col`).
    trainable: bool,
}

/// x / max(||x||, 1e-12) along `dim`, as torch.nn.functional.normalize. The floor is applied under
/// the root (sqrt(max(sum x^2, 1e-24)), the same value) so that the gradient stays finite for an
/// all-zero vector (an empty cluster's residual), where sqrt's derivative is infinite.
pub fn l2_normalize(x: &Tensor, dim: usize) -> Result<Tensor> {
    let norm = x.sqr()?.sum_keepdim(dim)?.maximum(1e-24)?.sqrt()?;
    x.broadcast_div(&norm)
}

impl NetVlad {
    pub fn new(dim: usize, vb: VarBuilder) -> Result<Self> {
        let centroids = vb.get((CLUSTERS, dim), "centroids")?;
        let cfg = Conv2dConfig::default();
        let conv = if vb.contains_tensor("conv.bias") {
            candle_nn::conv2d(dim, CLUSTERS, 1, cfg, vb.pp("conv"))?
        } else {
            candle_nn::conv2d_no_bias(dim, CLUSTERS, 1, cfg, vb.pp("conv"))?
        };
        Ok(NetVlad {
            centroids,
            conv,
            trainable: false,
        })
    }

    /// NetVLAD from its tensors, for training (where they are variables).
    pub fn from_parts(centroids: Tensor, conv_weight: Tensor) -> Self {
        NetVlad {
            centroids,
            conv: Conv2d::new(conv_weight, None, Conv2dConfig::default()),
            trainable: true,
        }
    }

    pub fn centroids(&self) -> &Tensor {
        &self.centroids
    }

    pub fn conv(&self) -> &Conv2d {
        &self.conv
    }

    /// Soft-assignment of each location to each cluster: [B, D, H, W] (L2-normalised features) ->
    /// [B, K, H*W], softmax over clusters.
    pub fn soft_assign(&self, normalized: &Tensor) -> Result<Tensor> {
        let (b, _, h, w) = normalized.dims4()?;
        let logits = if self.trainable {
            super::im2col::conv2d_same(normalized, self.conv.weight(), self.conv.bias())?
        } else {
            self.conv.forward(normalized)?
        };
        let logits = logits.reshape((b, CLUSTERS, h * w))?;
        candle_nn::ops::softmax(&logits, 1)
    }

    /// conv5_3 features [B, D, H, W] and an optional mask [B, 1, H, W] -> VLAD [B, K*D],
    /// cluster-major (index k*D + d), intra-normalised then L2-normalised.
    pub fn forward_masked(&self, features: &Tensor, mask: Option<&Tensor>) -> Result<Tensor> {
        let (b, d, h, w) = features.dims4()?;
        let x = l2_normalize(features, 1)?;
        let mut a = self.soft_assign(&x)?; // [B, K, N]
        if let Some(m) = mask {
            a = a.broadcast_mul(&m.reshape((b, 1, h * w))?)?;
        }
        let x = x.reshape((b, d, h * w))?; // [B, D, N]
                                           // V_k = sum_i a_k(x_i) x_i - c_k sum_i a_k(x_i)
        let weighted = a.matmul(&x.transpose(1, 2)?)?; // [B, K, D]
        let mass = a.sum_keepdim(2)?; // [B, K, 1]
        let vlad = weighted.broadcast_sub(&mass.broadcast_mul(&self.centroids.unsqueeze(0)?)?)?;
        let vlad = l2_normalize(&vlad, 2)?; // intra-normalisation
        let vlad = vlad.reshape((b, CLUSTERS * d))?;
        l2_normalize(&vlad, 1)
    }
}

impl Module for NetVlad {
    fn forward(&self, features: &Tensor) -> Result<Tensor> {
        self.forward_masked(features, None)
    }
}

/// Soft-assignment initialisation from k-means centroids, as pytorch-NetVlad (vladv1) does:
/// conv weight = alpha * c_k / ||c_k||, no bias, alpha chosen so that the best cluster gets about
/// 100 times the weight of the second best on the training descriptors.
pub fn init_assignment(centroids: &Tensor, sample: &Tensor) -> Result<(Tensor, f64)> {
    let (k, d) = centroids.dims2()?;
    let unit = l2_normalize(centroids, 1)?;
    let dots = sample.matmul(&unit.t()?)?.to_dtype(DType::F32)?; // [N, K]
    let sorted = dots.sort_last_dim(false)?.0; // descending
    let gap = (sorted.narrow(D::Minus1, 0, 1)? - sorted.narrow(D::Minus1, 1, 1)?)?
        .mean_all()?
        .to_scalar::<f32>()?;
    let alpha = -(0.01f64.ln()) / (gap as f64).max(1e-6);
    let weight = (unit * alpha)?.reshape((k, d, 1, 1))?;
    Ok((weight, alpha))
}

#[cfg(test)]
mod normalize_tests {
    use super::*;
    use candle_core::{Device, Var};

    #[test]
    fn normalising_keeps_torch_values_and_a_zero_vector_has_a_finite_gradient() {
        let dev = Device::Cpu;
        let v = Tensor::new(&[[3.0f32, 4.0], [1e-13, 0.0]], &dev).unwrap();
        let n: Vec<Vec<f32>> = l2_normalize(&v, 1).unwrap().to_vec2().unwrap();
        assert_eq!(n[0], vec![0.6, 0.8]);
        // Below the 1e-12 floor the vector is divided by the floor, as torch's normalize does.
        assert!((n[1][0] - 0.1).abs() < 1e-6, "{:?}", n[1]);
        // An all-zero vector (an empty cluster's residual): the first training step used to turn
        // every parameter into NaN through sqrt's infinite derivative at 0.
        let zero = Var::from_tensor(&Tensor::zeros((1, 4), DType::F32, &dev).unwrap()).unwrap();
        let y = l2_normalize(zero.as_tensor(), 1)
            .unwrap()
            .sum_all()
            .unwrap();
        let g: Vec<f32> = y
            .backward()
            .unwrap()
            .get(zero.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert!(g.iter().all(|x| x.is_finite()), "{g:?}");
    }
}
