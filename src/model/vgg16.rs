//! VGG16 convolutional backbone, conv1_1 ... conv5_3 (Simonyan & Zisserman, 2015), as the paper
//! uses it: 3x3 convolutions with padding 1, ReLU after every convolution except conv5_3, 2x2 max
//! pooling after blocks 1-4, no pool5 and no fully connected layers.
//!
//! Weights: `backbone.{0,2,5,7,10,12,14,17,19,21,24,26,28}.{weight,bias}`, the indices of
//! torchvision's `vgg16().features`, so PyTorch checkpoints convert by renaming only.
//! Input: RGB, 0-255, with the Caffe means subtracted (see [`super::preprocess`]).

use candle_core::{Module, Result, Tensor};
use candle_nn::{Conv2d, Conv2dConfig, VarBuilder};

/// (torchvision index, input channels, output channels) of the 13 convolutions, in order.
pub const CONVS: [(usize, usize, usize); 13] = [
    (0, 3, 64),
    (2, 64, 64),
    (5, 64, 128),
    (7, 128, 128),
    (10, 128, 256),
    (12, 256, 256),
    (14, 256, 256),
    (17, 256, 512),
    (19, 512, 512),
    (21, 512, 512),
    (24, 512, 512),
    (26, 512, 512),
    (28, 512, 512),
];

/// Convolutions after which a block ends with max pooling (conv1_2, conv2_2, conv3_3, conv4_3).
const POOL_AFTER: [usize; 4] = [2, 7, 14, 21];

/// Output channels of conv5_3.
pub const FEATURE_DIM: usize = 512;
/// conv5_3 is 1/16 of the input size.
pub const STRIDE: usize = 16;

/// 2x2 max pooling, stride 2, for even sides (VGG16 inputs are multiples of 32), written as a
/// reshape and two `max` reductions because Candle's own `max_pool2d` has a wrong backward pass
/// (candle-core 0.11 multiplies the gradient by the fraction of maxima in the window, 1/4 for a
/// unique maximum, instead of dividing by their count): through VGG16's four pools the gradient
/// of conv1 came out 256 times too small. Forward values are identical.
pub fn max_pool_2x2(x: &Tensor) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    if h % 2 != 0 || w % 2 != 0 {
        candle_core::bail!("max_pool_2x2 needs even sides, got {h}x{w}");
    }
    x.reshape((b, c, h / 2, 2, w / 2, 2))?.max(5)?.max(3)
}

#[derive(Debug, Clone)]
pub struct Vgg16 {
    convs: Vec<(usize, Conv2d)>,
}

impl Vgg16 {
    pub fn new(vb: VarBuilder) -> Result<Self> {
        let cfg = Conv2dConfig {
            padding: 1,
            ..Default::default()
        };
        let convs = CONVS
            .iter()
            .map(|&(i, cin, cout)| Ok((i, candle_nn::conv2d(cin, cout, 3, cfg, vb.pp(i))?)))
            .collect::<Result<Vec<_>>>()?;
        Ok(Vgg16 { convs })
    }

    /// The convolutions, in order, with their checkpoint indices (for freezing and training).
    pub fn convs(&self) -> &[(usize, Conv2d)] {
        &self.convs
    }

    /// The activations of the `count`-th convolution (1..=13), after its ReLU (conv5_3 has none)
    /// and before the pooling that may follow it: `count = 10` gives conv4_3, [B, 512, H/8, W/8].
    pub fn forward_until(&self, xs: &Tensor, count: usize) -> Result<Tensor> {
        if count == 0 || count > self.convs.len() {
            candle_core::bail!(
                "forward_until: count {count} is not in 1..={}",
                self.convs.len()
            );
        }
        let last = self.convs.len() - 1;
        let mut x = xs.clone();
        for (n, (index, conv)) in self.convs.iter().take(count).enumerate() {
            x = conv.forward(&x)?;
            if n != last {
                x = x.relu()?;
            }
            if n + 1 < count && POOL_AFTER.contains(index) {
                x = max_pool_2x2(&x)?;
            }
        }
        Ok(x)
    }

    /// pool4: conv4_3 with its ReLU, max-pooled, [B, 3, H, W] -> [B, 512, H/16, W/16]; the input
    /// of conv5_1, computed once per photo when conv5 trains.
    pub fn pool4(&self, xs: &Tensor) -> Result<Tensor> {
        max_pool_2x2(&self.forward_until(xs, 10)?)
    }

    /// The network cut after its first `count` convolutions (1..=13), sharing the weights. Its
    /// output, like the whole network's, is the last convolution without ReLU, pooled when that
    /// convolution ends a block: `truncated(9)` gives conv4_2 at 1/8 of the input. Local features
    /// for geometric verification (`geometry`) use the finer layers, on the CPU through
    /// `CpuBackbone::new(&vgg.truncated(9))`.
    pub fn truncated(&self, count: usize) -> Vgg16 {
        let count = count.clamp(1, self.convs.len());
        Vgg16 {
            convs: self.convs[..count].to_vec(),
        }
    }
}

impl Module for Vgg16 {
    /// [B, 3, H, W] -> conv5_3 without its ReLU: [B, 512, H/16, W/16].
    fn forward(&self, xs: &Tensor) -> Result<Tensor> {
        let last = self.convs.len() - 1;
        let mut x = xs.clone();
        for (n, (index, conv)) in self.convs.iter().enumerate() {
            x = conv.forward(&x)?;
            if n != last {
                x = x.relu()?;
            }
            if POOL_AFTER.contains(index) {
                x = max_pool_2x2(&x)?;
            }
        }
        Ok(x)
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    /// Regression: the pooling's gradient reaches each window's maximum whole (Candle's own
    /// `max_pool2d` passed a quarter of it).
    #[test]
    fn max_pooling_passes_the_whole_gradient_to_the_maximum() {
        let x =
            Var::from_tensor(&Tensor::new(&[[[[1.0f32, 5.0], [2.0, 3.0]]]], &Device::Cpu).unwrap())
                .unwrap();
        let y = max_pool_2x2(x.as_tensor()).unwrap();
        assert_eq!(
            y.flatten_all().unwrap().to_vec1::<f32>().unwrap(),
            vec![5.0]
        );
        let g = y.sum_all().unwrap().backward().unwrap();
        let g: Vec<f32> = g
            .get(x.as_tensor())
            .unwrap()
            .flatten_all()
            .unwrap()
            .to_vec1()
            .unwrap();
        assert_eq!(g, vec![0.0, 1.0, 0.0, 0.0]);
    }
}
