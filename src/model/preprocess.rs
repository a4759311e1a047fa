//! From a decoded photo to the network's input tensor.
//!
//! Input size policy: the long side becomes `long_side` (640 by default) and both sides are
//! rounded to multiples of 32, so that conv5_3 (1/16 of the input) has even sides, as CRN's
//! pooling and upsampling need. An image that already has such a size is used as is, without
//! resampling. Pixels: RGB, 0-255, minus the Caffe ImageNet means. The imported VGG16 weights
//! expect BGR; their conv1_1 input channels are flipped once at import so the input stays RGB.

use candle_core::{Device, Result, Tensor};
use image::RgbImage;

use crate::library::thumbnail::resize_rgb;

/// ImageNet means, R, G, B (Caffe's VGG16 preprocessing).
pub const MEAN_RGB: [f32; 3] = [123.68, 116.779, 103.939];
/// Both input sides are multiples of this.
pub const SIDE_MULTIPLE: u32 = 32;
pub const DEFAULT_LONG_SIDE: u32 = 640;

fn round_to_multiple(x: f64) -> u32 {
    let m = SIDE_MULTIPLE as f64;
    (((x / m).round() * m) as u32).max(SIDE_MULTIPLE)
}

/// The network input size for a photo of `width` x `height` (upright).
pub fn input_size(width: u32, height: u32, long_side: u32) -> (u32, u32) {
    let long_side = round_to_multiple(long_side as f64);
    if width.max(height) == long_side && width % SIDE_MULTIPLE == 0 && height % SIDE_MULTIPLE == 0 {
        return (width, height);
    }
    let scale = long_side as f64 / width.max(height) as f64;
    if width >= height {
        (long_side, round_to_multiple(height as f64 * scale))
    } else {
        (round_to_multiple(width as f64 * scale), long_side)
    }
}

/// Resizes (if needed) to the input size for `long_side`.
pub fn fit_input(rgb: &RgbImage, long_side: u32) -> RgbImage {
    let (w, h) = input_size(rgb.width(), rgb.height(), long_side);
    resize_rgb(rgb, w, h)
}

/// RGB8 pixels -> [3, H, W] f32, means subtracted.
pub fn to_tensor(rgb: &RgbImage, device: &Device) -> Result<Tensor> {
    let (w, h) = (rgb.width() as usize, rgb.height() as usize);
    let mut planes = vec![0f32; 3 * w * h];
    for (i, px) in rgb.as_raw().chunks_exact(3).enumerate() {
        for c in 0..3 {
            planes[c * w * h + i] = px[c] as f32 - MEAN_RGB[c];
        }
    }
    Tensor::from_vec(planes, (3, h, w), device)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn input_sizes() {
        assert_eq!(input_size(4000, 3000, 640), (640, 480));
        assert_eq!(input_size(3000, 4000, 640), (480, 640));
        assert_eq!(input_size(1280, 720, 640), (640, 352)); // 360 rounds to 352
        assert_eq!(input_size(160, 120, 640), (640, 480)); // small images are enlarged
        assert_eq!(input_size(640, 448, 640), (640, 448)); // already fits: used as is
        assert_eq!(input_size(1, 1, 640), (640, 640));
        assert_eq!(input_size(10000, 10, 640), (640, 32));
        assert_eq!(input_size(300, 200, 224), (224, 160));
    }

    #[test]
    fn tensor_layout_and_means() {
        let img = RgbImage::from_fn(2, 1, |x, _| image::Rgb([x as u8 * 100, 50, 7]));
        let t = to_tensor(&img, &Device::Cpu).unwrap();
        assert_eq!(t.dims(), &[3, 1, 2]);
        let v: Vec<f32> = t.flatten_all().unwrap().to_vec1().unwrap();
        assert_eq!(
            v,
            vec![
                -123.68,
                100.0 - 123.68,
                50.0 - 116.779,
                50.0 - 116.779,
                7.0 - 103.939,
                7.0 - 103.939
            ]
        );
    }
}
