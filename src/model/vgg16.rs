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
                x = x.max_pool2d(2)?;
            }
        }
        Ok(x)
    }
}
