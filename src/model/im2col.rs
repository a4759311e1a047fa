//! Stride-1, same-padding convolution as one matrix product over shifted copies of the input
//! (im2col), for training. Candle's `conv2d` runs forward fast, but its backward pass always
//! computes the input's gradient with `conv_transpose2d`, whose CPU kernel is a plain loop: for
//! CRN's 512-channel filters and for conv5 that was most of a training step, even where the input
//! is a frozen feature map. Here both gradients are matrix products (and the shifted copies'
//! backward is only copying), so a step costs what its arithmetic costs.

use candle_core::{Result, Tensor};

/// [B, C, H, W] * weight [O, C, k, k] (+ bias [O]) -> [B, O, H, W], padding k / 2, stride 1
/// (k odd). The same numbers as `x.conv2d(weight, k / 2, 1, 1, 1)` plus the bias.
pub fn conv2d_same(x: &Tensor, weight: &Tensor, bias: Option<&Tensor>) -> Result<Tensor> {
    let (b, c, h, w) = x.dims4()?;
    let (o, wc, k, k2) = weight.dims4()?;
    if wc != c || k != k2 || k % 2 == 0 {
        candle_core::bail!(
            "conv2d_same: input has {c} channels, weight is {o}x{wc}x{k}x{k2} (odd square kernels only)"
        );
    }
    let cols = if k == 1 {
        x.reshape((b, c, h * w))?
    } else {
        let pad = k / 2;
        let padded = x.pad_with_zeros(2, pad, pad)?.pad_with_zeros(3, pad, pad)?;
        let mut shifted = Vec::with_capacity(k * k);
        for dy in 0..k {
            for dx in 0..k {
                shifted.push(padded.narrow(2, dy, h)?.narrow(3, dx, w)?);
            }
        }
        // [B, C, k*k, H, W]: row c*k*k + dy*k + dx, the order of the weight's [C, k, k].
        Tensor::stack(&shifted, 2)?.reshape((b, c * k * k, h * w))?
    };
    let out = weight.reshape((1, o, c * k * k))?.broadcast_matmul(&cols)?; // [B, O, H*W]
    let out = out.reshape((b, o, h, w))?;
    match bias {
        Some(bias) => out.broadcast_add(&bias.reshape((1, o, 1, 1))?),
        None => Ok(out),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{Device, Var};

    fn ramp(shape: (usize, usize, usize, usize), scale: f64) -> Tensor {
        let n = shape.0 * shape.1 * shape.2 * shape.3;
        let v: Vec<f64> = (0..n)
            .map(|i| ((i * 7919 % 1000) as f64 / 500.0 - 1.0) * scale)
            .collect();
        Tensor::from_vec(v, shape, &Device::Cpu).unwrap()
    }

    fn max_diff(a: &Tensor, b: &Tensor) -> f64 {
        (a - b)
            .unwrap()
            .abs()
            .unwrap()
            .max_all()
            .unwrap()
            .to_scalar::<f64>()
            .unwrap()
    }

    /// Same values and same gradients as Candle's own convolution.
    #[test]
    fn im2col_matches_candle_forward_and_backward() {
        for (c, o, k, h, w) in [
            (5, 3, 3, 6, 4),
            (4, 2, 5, 3, 7),
            (3, 6, 1, 5, 5),
            (2, 2, 7, 4, 4),
        ] {
            let x = Var::from_tensor(&ramp((2, c, h, w), 1.0)).unwrap();
            let weight = Var::from_tensor(&ramp((o, c, k, k), 0.3)).unwrap();
            let bias = ramp((1, 1, 1, o), 0.1).reshape(o).unwrap();
            let dir = ramp((2, o, h, w), 1.0);
            let ours = conv2d_same(x.as_tensor(), weight.as_tensor(), Some(&bias)).unwrap();
            let theirs = x
                .as_tensor()
                .conv2d(weight.as_tensor(), k / 2, 1, 1, 1)
                .unwrap()
                .broadcast_add(&bias.reshape((1, o, 1, 1)).unwrap())
                .unwrap();
            assert!(max_diff(&ours, &theirs) < 1e-12, "k={k}");
            let g1 = (ours * &dir)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            let g2 = (theirs * &dir)
                .unwrap()
                .sum_all()
                .unwrap()
                .backward()
                .unwrap();
            for v in [&x, &weight] {
                let a = g1.get(v.as_tensor()).unwrap();
                let b = g2.get(v.as_tensor()).unwrap();
                assert!(max_diff(a, b) < 1e-10, "k={k}: gradients differ");
            }
        }
    }
}
