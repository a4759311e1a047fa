//! What the model looks at: the CRN reweighting mask over a photo, as a heat map. It is the
//! paper's by-product — CRN learns from GPS tags alone which regions help localisation (facades,
//! skylines) and which do not (cars, people, sky) — made visible to the user.
//!
//! The mask lives on the conv5_3 grid (1/16 of the network input); it is scaled to its own maximum,
//! upsampled bilinearly to the input size, coloured (dark blue = ignored, yellow = counts most)
//! and blended over a dimmed grey copy of the photo so the photo stays recognisable.

use std::path::Path;

use candle_core::{DType, Device};
use image::{GrayImage, Luma, Rgb, RgbImage};
use serde::Serialize;

use super::LoadedModel;
use crate::error::{Error, Result};

/// A photo's heat map and the mask's figures.
pub struct Explanation {
    /// The heat map over the photo, at the network input size.
    pub overlay: RgbImage,
    pub summary: MaskSummary,
}

#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct MaskSummary {
    /// The conv5_3 grid the mask is computed on (columns, rows).
    pub grid: (usize, usize),
    /// The network input the photo was fitted to (width, height).
    pub input: (u32, u32),
    pub min: f32,
    pub max: f32,
    pub mean: f32,
    /// Mean mask of the top and bottom thirds of the photo, relative to the whole mask's mean:
    /// a model that learned street-level context weighs buildings and skyline over the road.
    pub top_third: f32,
    pub bottom_third: f32,
    /// The mask values row by row (`grid.1` rows of `grid.0`).
    pub values: Vec<f32>,
}

/// The CRN mask of `path` as a heat map. Models without CRN (plain NetVLAD, such as the built-in
/// model before fine-tuning) weigh every location alike: there is nothing to show, and the error
/// says so.
pub fn explain(model: &LoadedModel, path: &Path, long_side: u32) -> Result<Explanation> {
    if model.net.crn.is_none() {
        return Err(Error::Model(format!(
            "the model {} has no CRN (it weighs every region alike), so there is no heat map to show: fine-tune one with `pinpoint train` and pass it with --model",
            model.card.name
        )));
    }
    let photo = super::describe::load_input(path, None, long_side)?;
    let input = super::describe::batch_tensor(&[&photo], &model.device)?;
    let features = model.net.features(&input)?;
    let mask = model
        .net
        .mask(&features)?
        .expect("a model with CRN has a mask")
        .to_device(&Device::Cpu)?
        .to_dtype(DType::F32)?;
    let (_, _, rows, cols) = mask.dims4()?;
    let values: Vec<f32> = mask.flatten_all()?.to_vec1()?;
    let summary = summarise(&values, (cols, rows), (photo.width(), photo.height()));
    let overlay = overlay(&photo, &values, (cols, rows), summary.max);
    Ok(Explanation { overlay, summary })
}

fn summarise(values: &[f32], grid: (usize, usize), input: (u32, u32)) -> MaskSummary {
    let (cols, rows) = grid;
    let mean_of = |range: std::ops::Range<usize>| {
        let v: Vec<f32> = range
            .flat_map(|r| values[r * cols..(r + 1) * cols].iter().copied())
            .collect();
        v.iter().sum::<f32>() / v.len().max(1) as f32
    };
    let mean = mean_of(0..rows);
    let third = (rows / 3).max(1);
    let relative = |m: f32| if mean > 0.0 { m / mean } else { 0.0 };
    MaskSummary {
        grid,
        input,
        min: values.iter().cloned().fold(f32::INFINITY, f32::min),
        max: values.iter().cloned().fold(0.0, f32::max),
        mean,
        top_third: relative(mean_of(0..third)),
        bottom_third: relative(mean_of(rows - third..rows)),
        values: values.to_vec(),
    }
}

/// Blends the coloured, upsampled mask over a dimmed grey copy of the photo.
fn overlay(photo: &RgbImage, values: &[f32], grid: (usize, usize), max: f32) -> RgbImage {
    let (cols, rows) = grid;
    let scale = if max > 0.0 { 255.0 / max } else { 0.0 };
    let small = GrayImage::from_fn(cols as u32, rows as u32, |x, y| {
        Luma([(values[y as usize * cols + x as usize] * scale).round() as u8])
    });
    let heat = image::imageops::resize(
        &small,
        photo.width(),
        photo.height(),
        image::imageops::FilterType::Triangle,
    );
    RgbImage::from_fn(photo.width(), photo.height(), |x, y| {
        let p = photo.get_pixel(x, y).0;
        let grey = 0.299 * p[0] as f32 + 0.587 * p[1] as f32 + 0.114 * p[2] as f32;
        let c = colour(heat.get_pixel(x, y).0[0] as f32 / 255.0);
        Rgb(std::array::from_fn(|i| {
            (0.45 * grey + 0.55 * c[i]).round().clamp(0.0, 255.0) as u8
        }))
    })
}

/// A perceptually ordered palette (dark blue -> purple -> orange -> yellow, like "plasma"),
/// interpolated between five stops; `t` in 0..=1.
fn colour(t: f32) -> [f32; 3] {
    const STOPS: [[f32; 3]; 5] = [
        [13.0, 8.0, 135.0],
        [126.0, 3.0, 168.0],
        [204.0, 71.0, 120.0],
        [248.0, 149.0, 64.0],
        [240.0, 249.0, 33.0],
    ];
    let t = t.clamp(0.0, 1.0) * (STOPS.len() - 1) as f32;
    let i = (t.floor() as usize).min(STOPS.len() - 2);
    let f = t - i as f32;
    std::array::from_fn(|c| STOPS[i][c] * (1.0 - f) + STOPS[i + 1][c] * f)
}

/// The heat map as PNG bytes (for the desktop app's image protocol).
pub fn png_bytes(explanation: &Explanation) -> Result<Vec<u8>> {
    let mut out = std::io::Cursor::new(Vec::new());
    explanation
        .overlay
        .write_to(&mut out, image::ImageFormat::Png)
        .map_err(|e| Error::invalid(format!("cannot encode the heat map: {e}")))?;
    Ok(out.into_inner())
}

/// Writes the heat map as a PNG (or any format the extension names that the image crate writes).
pub fn save(explanation: &Explanation, out: &Path) -> Result<()> {
    explanation
        .overlay
        .save(out)
        .map_err(|e| Error::invalid(format!("{}: cannot write the heat map: {e}", out.display())))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_palette_runs_from_dark_blue_to_yellow() {
        assert_eq!(colour(0.0), [13.0, 8.0, 135.0]);
        assert_eq!(colour(1.0), [240.0, 249.0, 33.0]);
        // Brightness grows with the weight.
        let lum = |c: [f32; 3]| 0.299 * c[0] + 0.587 * c[1] + 0.114 * c[2];
        let mut last = -1.0;
        for i in 0..=20 {
            let l = lum(colour(i as f32 / 20.0));
            assert!(l > last, "{i}: {l} <= {last}");
            last = l;
        }
    }

    #[test]
    fn thirds_are_relative_to_the_mean() {
        // 3 rows of 2: top 2.0, middle 1.0, bottom 0.0.
        let s = summarise(&[2.0, 2.0, 1.0, 1.0, 0.0, 0.0], (2, 3), (64, 96));
        assert_eq!((s.min, s.max, s.mean), (0.0, 2.0, 1.0));
        assert_eq!((s.top_third, s.bottom_third), (2.0, 0.0));
    }
}
