//! Geometric verification of image pairs, for training positives (Kim, Dunn, Frahm, CVPR 2017):
//! a positive is a geographic neighbour whose local features match the query's under one
//! RANSAC-estimated transform, and the bounding box of the inliers is the region of interest
//! cropped for data augmentation.
//!
//! Local features are the backbone's own dense activations, so verification needs no second
//! network and training can reuse feature maps it has computed: every cell of a VGG16 feature map
//! is a keypoint at the cell's centre, its descriptor the L2-normalised channel vector, and the
//! cells with the strongest activations are kept. The layer is conv4_2 (1/8 of the input) by
//! default, measured against conv5_3 and conv4_3 on the shared place photos: conv5_3 is too
//! semantic and too coarse (one cell is 1/40 of a 640 px image) — it matched the Berlin cathedral
//! to Sacré-Cœur, porch for porch, about as well as two photos of Sacré-Cœur — while conv4_2 is
//! local enough to tell them apart, runs on the fast CPU path (`CpuBackbone` over the truncated
//! network, about as long as conv5_3 since conv5 is a small part of VGG16), and has a descriptor
//! similarity that separates true from chance matches.
//!
//! Matching: mutual nearest neighbours whose cosine similarity reaches a floor, with a ratio test
//! whose second neighbour is taken outside the best one's neighbourhood (neighbouring cells of a
//! dense map are near-duplicates: a plain ratio test would reject nearly every true match).
//!
//! The transform is a homography (a façade or a distant landmark is close to a plane; in a street
//! scene with depth the inliers, and so the region of interest, are its dominant plane), estimated
//! by RANSAC over 4-point samples with a least-squares refit of each new best model (LO-RANSAC),
//! in coordinates normalised by each image's size. A correspondence is an inlier when both its forward and its backward transfer
//! errors are under the threshold. Transforms that no two photos of one place can be related by —
//! a mirror, a 16-fold change of area, a 6-fold stretch, points sent through the horizon — are
//! refused before they are scored: on unrelated pairs such models are what gathers chance inliers.

pub mod store;

use std::path::Path;

use candle_core::{DType, Module, Tensor};
use image::RgbImage;
use serde::Serialize;

use crate::error::{Error, Result};
use crate::library::decode::decode_upright;
use crate::model::build::Rng;
use crate::model::content_cache::{device_kind, file_hash, CacheKey, ContentCache};
use crate::model::cpu_backbone::CpuBackbone;
use crate::model::describe::batch_tensor;
use crate::model::preprocess::fit_input;
use crate::model::vgg16::Vgg16;
use crate::model::LoadedModel;

/// Keypoints and descriptors of one image.
#[derive(Debug, Clone)]
pub struct LocalFeatures {
    /// (x, y) of each keypoint in pixels of the upright image: the centre of its feature cell.
    pub points: Vec<[f32; 2]>,
    /// Row-major [points.len(), dim], each row L2-normalised.
    pub descriptors: Vec<f32>,
    pub dim: usize,
    /// (width, height) of the upright image.
    pub image_size: (u32, u32),
    /// The feature cell's size in image pixels (its larger side): how precise a keypoint is.
    pub cell: f32,
}

impl LocalFeatures {
    /// One flat vector: [points, dim, width, height, cell, x0, y0, ..., descriptors...] (sizes
    /// are far below 2^24, so f32 holds them exactly).
    fn to_flat(&self) -> Vec<f32> {
        let mut v = Vec::with_capacity(5 + self.points.len() * 2 + self.descriptors.len());
        v.extend([
            self.points.len() as f32,
            self.dim as f32,
            self.image_size.0 as f32,
            self.image_size.1 as f32,
            self.cell,
        ]);
        v.extend(self.points.iter().flatten());
        v.extend(&self.descriptors);
        v
    }

    fn from_flat(v: &[f32]) -> Option<LocalFeatures> {
        let head = v.get(..5)?;
        let (n, dim) = (head[0] as usize, head[1] as usize);
        if v.len() != 5 + n * 2 + n * dim {
            return None;
        }
        let points = v[5..5 + 2 * n]
            .chunks_exact(2)
            .map(|p| [p[0], p[1]])
            .collect();
        Some(LocalFeatures {
            points,
            descriptors: v[5 + 2 * n..].to_vec(),
            dim,
            image_size: (head[2] as u32, head[3] as u32),
            cell: head[4],
        })
    }

    pub fn len(&self) -> usize {
        self.points.len()
    }

    pub fn is_empty(&self) -> bool {
        self.points.is_empty()
    }
}

#[derive(Debug, Clone, Serialize)]
pub struct VerifyOptions {
    /// Long side of the network input the features are extracted at.
    pub long_side: u32,
    /// VGG16 convolutions to run, 8..=13: 9 is conv4_2 (1/8 of the input), 13 conv5_3 (1/16).
    pub layer: usize,
    /// Keypoints kept per image: the cells with the largest activation norm.
    pub keypoints: usize,
    /// Lowe's ratio: a match's descriptor distance must be under this fraction of the distance to
    /// the best keypoint more than 1.5 cells away from it.
    pub ratio: f32,
    /// Least cosine similarity of a match's descriptors.
    pub min_similarity: f32,
    /// Inlier threshold on forward and backward transfer errors, as a fraction of each image's
    /// long side (0.012: 7.7 px of a 640 px input, about one conv4 cell).
    pub threshold: f32,
    /// Most RANSAC samples (fewer when the inlier ratio found makes more pointless).
    pub iterations: usize,
    /// Inliers needed to call a pair verified.
    pub min_inliers: usize,
    pub seed: u64,
}

impl Default for VerifyOptions {
    /// Measured on the shared place photos (see `tests/geometry.rs`): the 45 Sacré-Cœur pairs have
    /// 16 to 500 inliers (38 of them 22 or more), unrelated pairs 0 to 14 (14: a round sign matched
    /// to a round floor-number plate, the rest at most 9).
    fn default() -> Self {
        VerifyOptions {
            long_side: 640,
            layer: 9,
            keypoints: 1600,
            ratio: 0.97,
            min_similarity: 0.8,
            threshold: 0.012,
            iterations: 5000,
            min_inliers: 20,
            seed: 2017,
        }
    }
}

/// A region of an image, in fractions (0..1) of its width and height.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct Roi {
    pub x0: f32,
    pub y0: f32,
    pub x1: f32,
    pub y1: f32,
}

impl Roi {
    pub fn width(&self) -> f32 {
        self.x1 - self.x0
    }

    pub fn height(&self) -> f32 {
        self.y1 - self.y0
    }

    /// The region in pixels of an image of `size`, for cropping: (x, y, width, height), at least
    /// 1x1 and inside the image.
    pub fn pixels(&self, size: (u32, u32)) -> (u32, u32, u32, u32) {
        let (w, h) = (size.0.max(1), size.1.max(1));
        let x = ((self.x0 * w as f32).floor().max(0.0) as u32).min(w - 1);
        let y = ((self.y0 * h as f32).floor().max(0.0) as u32).min(h - 1);
        let x1 = ((self.x1 * w as f32).ceil().max(0.0) as u32).clamp(x + 1, w);
        let y1 = ((self.y1 * h as f32).ceil().max(0.0) as u32).clamp(y + 1, h);
        (x, y, x1 - x, y1 - y)
    }
}

/// The outcome of verifying one pair.
#[derive(Debug, Clone, Serialize)]
pub struct Verification {
    pub verified: bool,
    /// Correspondences consistent with the best transform.
    pub inliers: usize,
    /// Tentative correspondences (mutual nearest neighbours passing the similarity floor and the
    /// ratio test).
    pub matches: usize,
    /// The inliers' bounding boxes, padded by half a cell, when the pair is verified.
    pub roi_a: Option<Roi>,
    pub roi_b: Option<Roi>,
}

/// The backbone cut at `opts.layer`, prepared once for many images (preparing the CPU path
/// transforms the weights: about a quarter of a second).
pub struct Extractor<'a> {
    model: &'a LoadedModel,
    net: Vgg16,
    fast: Option<CpuBackbone>,
    layer: usize,
    long_side: u32,
    keypoints: usize,
}

impl<'a> Extractor<'a> {
    pub fn new(model: &'a LoadedModel, opts: &VerifyOptions) -> Result<Self> {
        // Layers 8..=13 have 512 channels, which the CPU path assumes; earlier ones are too local.
        if !(8..=crate::model::vgg16::CONVS.len()).contains(&opts.layer) {
            return Err(Error::invalid(format!(
                "local features need a VGG16 convolution from 8 to 13, not {}",
                opts.layer
            )));
        }
        let net = model.net.backbone.truncated(opts.layer);
        let fast = match model.device.is_cpu() {
            true => Some(CpuBackbone::new(&net)?),
            false => None,
        };
        Ok(Extractor {
            model,
            net,
            fast,
            layer: opts.layer,
            long_side: opts.long_side,
            keypoints: opts.keypoints,
        })
    }

    /// Decodes `path` (upright) and extracts its local features (from the content cache when one
    /// is set and holds them).
    pub fn extract(&self, path: &Path) -> Result<LocalFeatures> {
        let cache = ContentCache::from_env();
        let content = match cache {
            Some(_) => Some(file_hash(path)?),
            None => None,
        };
        if let (Some(cache), Some(c)) = (cache, &content) {
            if let Some(f) = cache
                .get(&self.cache_key(c))
                .and_then(|v| LocalFeatures::from_flat(&v))
            {
                return Ok(f);
            }
        }
        let rgb = decode_upright(path, None)?.to_rgb8();
        let features = self
            .extract_rgb(&rgb)
            .map_err(|e| Error::Model(format!("{}: {e}", path.display())))?;
        if let (Some(cache), Some(c)) = (cache, &content) {
            cache.put(&self.cache_key(c), &features.to_flat());
        }
        Ok(features)
    }

    fn cache_key<'k>(&'k self, content: &'k str) -> CacheKey<'k> {
        CacheKey {
            kind: "local-features",
            model_hash: &self.model.hash,
            device: device_kind(&self.model.device),
            settings: self.settings(),
            content,
        }
    }

    /// What the features depend on besides the image: the model, the device kind and the
    /// extraction settings (a key part for stores of features).
    pub fn settings(&self) -> String {
        format!(
            "model={};device={};layer={};long_side={};keypoints={}",
            self.model.hash,
            device_kind(&self.model.device),
            self.layer,
            self.long_side,
            self.keypoints
        )
    }

    /// The local features of decoded, upright pixels.
    pub fn extract_rgb(&self, rgb: &RgbImage) -> Result<LocalFeatures> {
        let input = fit_input(rgb, self.long_side);
        let tensor = batch_tensor(&[&input], &self.model.device)?; // [1, 3, H, W]
        let map = match &self.fast {
            Some(fast) => fast.forward(&tensor)?,
            None => self.net.forward(&tensor)?,
        }; // [1, 512, H / stride, W / stride]
        let stride = input.width() as f32 / map.dim(3)? as f32;
        local_features_from_map(&map, stride, rgb.dimensions(), self.keypoints)
    }
}

/// The local features of one image file (prepares an [`Extractor`]; use one for many images).
pub fn local_features(
    model: &LoadedModel,
    path: &Path,
    opts: &VerifyOptions,
) -> Result<LocalFeatures> {
    Extractor::new(model, opts)?.extract(path)
}

/// Keypoints from a dense feature map `map` [1, C, h, w] of an input `stride` pixels per cell,
/// made from an image of `image_size` (width, height): the `keypoints` cells of largest activation
/// norm after ReLU, each described by its channel vector as it is (before any ReLU; the negative
/// part tells cells apart too), L2-normalised. Positions are in the image's own pixels.
pub fn local_features_from_map(
    map: &Tensor,
    stride: f32,
    image_size: (u32, u32),
    keypoints: usize,
) -> Result<LocalFeatures> {
    let (b, c, h, w) = map.dims4()?;
    if b != 1 || c == 0 || h == 0 || w == 0 || stride <= 0.0 {
        return Err(Error::invalid(format!(
            "local features need one non-empty feature map, got [{b}, {c}, {h}, {w}] at stride {stride}"
        )));
    }
    let cells: Vec<f32> = map
        .get(0)?
        .permute((1, 2, 0))? // [h, w, C]: one cell's channels together
        .to_dtype(DType::F32)?
        .flatten_all()?
        .to_vec1()?;
    let strength: Vec<f32> = cells
        .chunks_exact(c)
        .map(|v| v.iter().map(|x| x.max(0.0).powi(2)).sum::<f32>())
        .collect();
    let mut order: Vec<usize> = (0..h * w).filter(|&i| strength[i] > 0.0).collect();
    order.sort_by(|&i, &j| strength[j].total_cmp(&strength[i]).then(i.cmp(&j)));
    order.truncate(keypoints);
    // Cell centres, scaled from the input (w * stride wide) to the image.
    let sx = image_size.0 as f32 / (w as f32 * stride);
    let sy = image_size.1 as f32 / (h as f32 * stride);
    let mut out = LocalFeatures {
        points: Vec::with_capacity(order.len()),
        descriptors: Vec::with_capacity(order.len() * c),
        dim: c,
        image_size,
        cell: stride * sx.max(sy),
    };
    for i in order {
        let (y, x) = (i / w, i % w);
        out.points.push([
            (x as f32 + 0.5) * stride * sx,
            (y as f32 + 0.5) * stride * sy,
        ]);
        let v = &cells[i * c..(i + 1) * c];
        let norm = v.iter().map(|x| x * x).sum::<f32>().sqrt().max(1e-12);
        out.descriptors.extend(v.iter().map(|x| x / norm));
    }
    Ok(out)
}

/// Matches `a` to `b` and verifies the matches geometrically. Features of different layers
/// (descriptor sizes) never match.
pub fn verify(a: &LocalFeatures, b: &LocalFeatures, opts: &VerifyOptions) -> Verification {
    let matches = match a.dim == b.dim {
        true => mutual_matches(a, b, opts.ratio, opts.min_similarity),
        false => Vec::new(),
    };
    let mut out = Verification {
        verified: false,
        inliers: 0,
        matches: matches.len(),
        roi_a: None,
        roi_b: None,
    };
    let pa: Vec<[f64; 2]> = matches
        .iter()
        .map(|&(i, _)| normalise(a.points[i], a.image_size))
        .collect();
    let pb: Vec<[f64; 2]> = matches
        .iter()
        .map(|&(_, j)| normalise(b.points[j], b.image_size))
        .collect();
    let params = Ransac {
        // Normalised coordinates span 2 along the long side.
        threshold: 2.0 * opts.threshold as f64,
        iterations: opts.iterations,
        seed: opts.seed,
    };
    let Some((_, mask)) = ransac_homography(&pa, &pb, &params) else {
        return out;
    };
    let kept: Vec<(usize, usize)> = matches
        .iter()
        .zip(&mask)
        .filter(|(_, &inlier)| inlier)
        .map(|(&m, _)| m)
        .collect();
    out.inliers = kept.len();
    out.verified = out.inliers >= opts.min_inliers.max(4);
    if out.verified {
        out.roi_a = Some(bounding_box(a, kept.iter().map(|m| m.0)));
        out.roi_b = Some(bounding_box(b, kept.iter().map(|m| m.1)));
    }
    out
}

/// Image pixels -> coordinates centred on the image, the long side spanning -1..1.
fn normalise(p: [f32; 2], size: (u32, u32)) -> [f64; 2] {
    let half = size.0.max(size.1).max(1) as f64 / 2.0;
    [
        (p[0] as f64 - size.0 as f64 / 2.0) / half,
        (p[1] as f64 - size.1 as f64 / 2.0) / half,
    ]
}

/// The bounding box of some keypoints, padded by half a cell, clamped to the image.
fn bounding_box(f: &LocalFeatures, indices: impl Iterator<Item = usize>) -> Roi {
    let (w, h) = (f.image_size.0.max(1) as f32, f.image_size.1.max(1) as f32);
    let pad = f.cell / 2.0;
    let mut r = Roi {
        x0: 1.0,
        y0: 1.0,
        x1: 0.0,
        y1: 0.0,
    };
    for i in indices {
        let [x, y] = f.points[i];
        r.x0 = r.x0.min(((x - pad) / w).max(0.0));
        r.y0 = r.y0.min(((y - pad) / h).max(0.0));
        r.x1 = r.x1.max(((x + pad) / w).min(1.0));
        r.y1 = r.y1.max(((y + pad) / h).min(1.0));
    }
    r
}

/// Mutual nearest neighbours (cosine similarity of unit descriptors) with a similarity of at least
/// `min_similarity` that pass the ratio test: the best distance under `ratio` times the best to a
/// keypoint of `b` farther than 1.5 cells from the best one. (index in a, index in b) pairs.
fn mutual_matches(
    a: &LocalFeatures,
    b: &LocalFeatures,
    ratio: f32,
    min_similarity: f32,
) -> Vec<(usize, usize)> {
    let (na, nb, d) = (a.len(), b.len(), a.dim);
    if na == 0 || nb == 0 {
        return Vec::new();
    }
    // B A^T [nb, na]: faer stores columns, so column i is row i of A B^T, contiguous.
    let mut sim = faer::Mat::<f32>::zeros(nb, na);
    faer::linalg::matmul::matmul(
        sim.as_mut(),
        faer::Accum::Replace,
        faer::MatRef::from_row_major_slice(&b.descriptors, nb, d),
        faer::MatRef::from_row_major_slice(&a.descriptors, na, d).transpose(),
        1.0,
        faer::Par::rayon(0),
    );
    let row = |i: usize| column(&sim, i);
    // The best of each row and each column, in one pass.
    let mut row_best = vec![(f32::NEG_INFINITY, 0usize); na];
    let mut col_best = vec![(f32::NEG_INFINITY, usize::MAX); nb];
    for (i, best) in row_best.iter_mut().enumerate() {
        for (j, &s) in row(i).iter().enumerate() {
            if s > best.0 {
                *best = (s, j);
            }
            if s > col_best[j].0 {
                col_best[j] = (s, i);
            }
        }
    }
    let distance = |s: f32| (2.0 - 2.0 * s).max(0.0).sqrt();
    let radius2 = (1.5 * b.cell).powi(2);
    let mut out = Vec::new();
    for (i, &(best, j)) in row_best.iter().enumerate() {
        if best < min_similarity || col_best[j].1 != i {
            continue;
        }
        let [bx, by] = b.points[j];
        let second = row(i)
            .iter()
            .zip(&b.points)
            .filter(|(_, [x, y])| (x - bx).powi(2) + (y - by).powi(2) > radius2)
            .fold(f32::NEG_INFINITY, |m, (&s, _)| m.max(s));
        if distance(best) < ratio * distance(second) {
            out.push((i, j));
        }
    }
    out
}

/// Column `i` of an owned (column-major) matrix.
fn column(m: &faer::Mat<f32>, i: usize) -> &[f32] {
    m.col(i)
        .try_as_col_major()
        .expect("a column of an owned matrix is contiguous")
        .as_slice()
}

/// RANSAC settings in normalised coordinates.
struct Ransac {
    /// Largest forward and backward transfer error of an inlier.
    threshold: f64,
    iterations: usize,
    seed: u64,
}

/// A plane projective transform, row-major 3x3.
#[derive(Debug, Clone, Copy, PartialEq)]
struct Homography([f64; 9]);

impl Homography {
    /// Maps `p`; `None` when `p` goes to or beyond the line at infinity (the horizon of the first
    /// image's plane: points there are not in front of the second camera).
    fn apply(&self, p: [f64; 2]) -> Option<[f64; 2]> {
        let h = &self.0;
        let w = h[6] * p[0] + h[7] * p[1] + h[8];
        if w <= 1e-9 {
            return None;
        }
        Some([
            (h[0] * p[0] + h[1] * p[1] + h[2]) / w,
            (h[3] * p[0] + h[4] * p[1] + h[5]) / w,
        ])
    }

    /// The exact inverse (adjugate over determinant), so that points in front map back with a
    /// positive scale.
    fn inverse(&self) -> Option<Homography> {
        let m = &self.0;
        let adj = [
            m[4] * m[8] - m[5] * m[7],
            m[2] * m[7] - m[1] * m[8],
            m[1] * m[5] - m[2] * m[4],
            m[5] * m[6] - m[3] * m[8],
            m[0] * m[8] - m[2] * m[6],
            m[2] * m[3] - m[0] * m[5],
            m[3] * m[7] - m[4] * m[6],
            m[1] * m[6] - m[0] * m[7],
            m[0] * m[4] - m[1] * m[3],
        ];
        let det = m[0] * adj[0] + m[1] * adj[3] + m[2] * adj[6];
        if !det.is_finite() || det.abs() < 1e-12 {
            return None;
        }
        Some(Homography(adj.map(|v| v / det)))
    }

    /// The homography through 4 correspondences, or the least-squares one (algebraic error, with
    /// h[8] = 1) through more; `None` when they are degenerate.
    fn fit(pa: &[[f64; 2]], pb: &[[f64; 2]]) -> Option<Homography> {
        // Normal equations of the 2N x 8 system, as an 8 x 9 augmented matrix.
        let mut m = [[0f64; 9]; 8];
        for (a, b) in pa.iter().zip(pb) {
            let (x, y, u, v) = (a[0], a[1], b[0], b[1]);
            let rows = [
                [x, y, 1.0, 0.0, 0.0, 0.0, -u * x, -u * y, u],
                [0.0, 0.0, 0.0, x, y, 1.0, -v * x, -v * y, v],
            ];
            for r in &rows {
                for (i, mi) in m.iter_mut().enumerate() {
                    for (j, mij) in mi.iter_mut().enumerate() {
                        *mij += r[i] * r[j];
                    }
                }
            }
        }
        let h = solve8(m)?;
        let mut out = [1.0; 9];
        out[..8].copy_from_slice(&h);
        Some(Homography(out))
    }

    /// Whether two photos of one scene could be related by this transform around `p` (in the first
    /// image): `p` in front, orientation kept (no mirror), area changed less than 16 times either
    /// way, stretch (ratio of the local Jacobian's singular values) under 6.
    fn plausible_at(&self, p: [f64; 2]) -> bool {
        let h = &self.0;
        let Some([u, v]) = self.apply(p) else {
            return false;
        };
        let w = h[6] * p[0] + h[7] * p[1] + h[8];
        let j = [
            (h[0] - u * h[6]) / w,
            (h[1] - u * h[7]) / w,
            (h[3] - v * h[6]) / w,
            (h[4] - v * h[7]) / w,
        ];
        let det = j[0] * j[3] - j[1] * j[2];
        if !(1.0 / 16.0..=16.0).contains(&det) {
            return false;
        }
        // Singular values s1 >= s2 of a 2x2: s1^2 + s2^2 = |J|_F^2 and s1 s2 = det.
        let f2 = j.iter().map(|x| x * x).sum::<f64>();
        let disc = (f2 * f2 - 4.0 * det * det).max(0.0).sqrt();
        let (s1, s2) = (((f2 + disc) / 2.0).sqrt(), ((f2 - disc) / 2.0).sqrt());
        s1 < 6.0 * s2
    }
}

/// Solves the 8x8 system of an augmented matrix by Gaussian elimination with partial pivoting.
fn solve8(mut m: [[f64; 9]; 8]) -> Option<[f64; 8]> {
    let scale = m
        .iter()
        .flat_map(|r| r[..8].iter())
        .fold(0f64, |s, v| s.max(v.abs()));
    if scale == 0.0 || !scale.is_finite() {
        return None;
    }
    for col in 0..8 {
        let pivot = (col..8).max_by(|&i, &j| m[i][col].abs().total_cmp(&m[j][col].abs()))?;
        if m[pivot][col].abs() < 1e-12 * scale {
            return None;
        }
        m.swap(col, pivot);
        let top = m[col];
        for row in m.iter_mut().skip(col + 1) {
            let f = row[col] / top[col];
            if f != 0.0 {
                for (v, t) in row.iter_mut().zip(top).skip(col) {
                    *v -= f * t;
                }
            }
        }
    }
    let mut x = [0f64; 8];
    for row in (0..8).rev() {
        let s: f64 = (row + 1..8).map(|k| m[row][k] * x[k]).sum();
        x[row] = (m[row][8] - s) / m[row][row];
    }
    x.iter().all(|v| v.is_finite()).then_some(x)
}

/// Whether 3 of 4 points are (nearly) collinear: then they determine no homography.
fn degenerate(p: &[[f64; 2]; 4]) -> bool {
    // Twice the triangle's area, in normalised coordinates (a conv4 cell of a 640 px input is
    // 0.025 wide).
    const MIN: f64 = 1e-4;
    let cross = |a: [f64; 2], b: [f64; 2], c: [f64; 2]| {
        (b[0] - a[0]) * (c[1] - a[1]) - (b[1] - a[1]) * (c[0] - a[0])
    };
    [(0, 1, 2), (0, 1, 3), (0, 2, 3), (1, 2, 3)]
        .iter()
        .any(|&(i, j, k)| cross(p[i], p[j], p[k]).abs() < MIN)
}

/// The inlier mask of `h` and its count; `None` when `h` cannot be inverted or is not plausible
/// around its inliers.
fn score(h: &Homography, pa: &[[f64; 2]], pb: &[[f64; 2]], t: f64) -> Option<(usize, Vec<bool>)> {
    let inv = h.inverse()?;
    let t2 = t * t;
    let close = |p: Option<[f64; 2]>, q: [f64; 2]| {
        p.is_some_and(|p| (p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2) < t2)
    };
    let mask: Vec<bool> = pa
        .iter()
        .zip(pb)
        .map(|(&a, &b)| close(h.apply(a), b) && close(inv.apply(b), a))
        .collect();
    let n = mask.iter().filter(|&&m| m).count();
    if n == 0 {
        return Some((0, mask));
    }
    let centroid = pa
        .iter()
        .zip(&mask)
        .filter(|(_, &m)| m)
        .fold([0.0, 0.0], |c, (p, _)| [c[0] + p[0], c[1] + p[1]])
        .map(|s| s / n as f64);
    h.plausible_at(centroid).then_some((n, mask))
}

/// Least-squares refits on the inliers while their number grows (LO-RANSAC); a refit that keeps
/// the count is taken too, being less noisy than the 4-point model.
fn refine(
    mut best: (Homography, usize, Vec<bool>),
    pa: &[[f64; 2]],
    pb: &[[f64; 2]],
    t: f64,
) -> (Homography, usize, Vec<bool>) {
    for _ in 0..4 {
        let (sa, sb): (Vec<[f64; 2]>, Vec<[f64; 2]>) = pa
            .iter()
            .zip(pb)
            .zip(&best.2)
            .filter(|(_, &m)| m)
            .map(|((a, b), _)| (*a, *b))
            .unzip();
        let Some(h) = Homography::fit(&sa, &sb) else {
            break;
        };
        match score(&h, pa, pb, t) {
            Some((n, mask)) if n >= best.1 => {
                let grew = n > best.1;
                best = (h, n, mask);
                if !grew {
                    break;
                }
            }
            _ => break,
        }
    }
    best
}

/// The homography with the most inliers among `pa[i] -> pb[i]` (normalised coordinates), and
/// its inlier mask; `None` when no plausible model was found. Deterministic for a seed.
fn ransac_homography(
    pa: &[[f64; 2]],
    pb: &[[f64; 2]],
    params: &Ransac,
) -> Option<(Homography, Vec<bool>)> {
    let n = pa.len();
    if n < 4 {
        return None;
    }
    let mut rng = Rng::new(params.seed);
    let mut best: Option<(Homography, usize, Vec<bool>)> = None;
    let mut needed = params.iterations;
    let mut iteration = 0;
    while iteration < needed {
        iteration += 1;
        let s = rng.sample(n, 4);
        let sa = [pa[s[0]], pa[s[1]], pa[s[2]], pa[s[3]]];
        let sb = [pb[s[0]], pb[s[1]], pb[s[2]], pb[s[3]]];
        if degenerate(&sa) || degenerate(&sb) {
            continue;
        }
        let Some(h) = Homography::fit(&sa, &sb) else {
            continue;
        };
        if sa.iter().any(|&p| !h.plausible_at(p)) {
            continue;
        }
        let Some((count, mask)) = score(&h, pa, pb, params.threshold) else {
            continue;
        };
        if best.as_ref().is_none_or(|b| count > b.1) {
            let found = refine((h, count, mask), pa, pb, params.threshold);
            // Enough samples to draw 4 inliers once with 99.9% confidence.
            let p_good = (found.1 as f64 / n as f64).powi(4);
            if p_good >= 1.0 {
                needed = iteration;
            } else if p_good > 0.0 {
                let k = (0.001f64.ln() / (1.0 - p_good).ln()).ceil();
                needed = needed.min((k as usize).max(iteration));
            }
            best = Some(found);
        }
    }
    best.filter(|b| b.1 > 0).map(|(h, _, mask)| (h, mask))
}

#[cfg(test)]
mod tests {
    use super::*;

    /// A known homography (mild perspective, scale and shear) in normalised coordinates.
    const H: Homography = Homography([0.9, 0.1, 0.05, -0.08, 1.1, -0.1, 0.05, -0.03, 1.0]);

    /// `inliers` correspondences under `H` with uniform noise of +-noise/2, then `outliers`
    /// random ones, in a 2 x 1.5 image.
    fn synthetic(inliers: usize, outliers: usize, noise: f64) -> (Vec<[f64; 2]>, Vec<[f64; 2]>) {
        let mut rng = Rng::new(7);
        let uniform = |r: &mut Rng| [r.next_f64() * 2.0 - 1.0, r.next_f64() * 1.5 - 0.75];
        let (mut pa, mut pb) = (Vec::new(), Vec::new());
        for _ in 0..inliers {
            let a = uniform(&mut rng);
            let b = H.apply(a).unwrap();
            let e = [rng.next_f64() - 0.5, rng.next_f64() - 0.5];
            pa.push(a);
            pb.push([b[0] + noise * e[0], b[1] + noise * e[1]]);
        }
        for _ in 0..outliers {
            pa.push(uniform(&mut rng));
            pb.push(uniform(&mut rng));
        }
        (pa, pb)
    }

    fn distance(p: [f64; 2], q: [f64; 2]) -> f64 {
        ((p[0] - q[0]).powi(2) + (p[1] - q[1]).powi(2)).sqrt()
    }

    #[test]
    fn four_points_give_the_exact_homography_and_its_inverse() {
        let pa = [[-0.5, -0.4], [0.6, -0.3], [0.4, 0.5], [-0.3, 0.4]];
        let pb = pa.map(|p| H.apply(p).unwrap());
        let h = Homography::fit(&pa, &pb).unwrap();
        for (x, y) in h.0.iter().zip(H.0) {
            assert!((x - y).abs() < 1e-9, "{:?} vs {:?}", h.0, H.0);
        }
        let back = h.inverse().unwrap().apply(H.apply([0.2, -0.1]).unwrap());
        assert!(distance(back.unwrap(), [0.2, -0.1]) < 1e-9);
        // Three collinear points determine nothing.
        assert!(degenerate(&[
            [0.0, 0.0],
            [0.5, 0.5],
            [1.0, 1.0],
            [0.0, 1.0]
        ]));
        assert!(!degenerate(&pa));
    }

    #[test]
    fn ransac_recovers_a_known_homography_among_outliers() {
        // 60 noisy inliers among 140 outliers (30%).
        let (pa, pb) = synthetic(60, 140, 0.01);
        let params = Ransac {
            threshold: 0.02,
            iterations: 5000,
            seed: 1,
        };
        let (h, mask) = ransac_homography(&pa, &pb, &params).expect("a model");
        let found = mask.iter().filter(|&&m| m).count();
        // Every true inlier is found; a random outlier falls within the threshold only rarely.
        assert!((0..60).all(|i| mask[i]), "missed inliers: {mask:?}");
        assert!(found <= 63, "{found} inliers");
        for p in [[-0.8, -0.5], [0.0, 0.0], [0.7, 0.6]] {
            let (got, want) = (h.apply(p).unwrap(), H.apply(p).unwrap());
            assert!(distance(got, want) < 0.005, "at {p:?}: {got:?} vs {want:?}");
        }
        // The same seed gives the same answer.
        let again = ransac_homography(&pa, &pb, &params).unwrap();
        assert_eq!((again.0, again.1), (h, mask));
    }

    #[test]
    fn ransac_finds_nothing_consistent_in_random_matches() {
        let (pa, pb) = synthetic(0, 200, 0.0);
        let params = Ransac {
            threshold: 0.02,
            iterations: 5000,
            seed: 1,
        };
        let best = ransac_homography(&pa, &pb, &params)
            .map(|(_, m)| m.iter().filter(|&&x| x).count())
            .unwrap_or(0);
        assert!(best < 12, "{best} chance inliers among 200 random matches");
    }

    #[test]
    fn implausible_transforms_are_refused() {
        let mirror = Homography([-1.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0, 0.0, 1.0]);
        let collapse = Homography([0.2, 0.0, 0.0, 0.0, 0.2, 0.0, 0.0, 0.0, 1.0]);
        let sliver = Homography([1.0, 0.0, 0.0, 0.0, 0.1, 0.0, 0.0, 0.0, 1.0]);
        for h in [mirror, collapse, sliver] {
            assert!(!h.plausible_at([0.1, 0.1]), "{h:?}");
        }
        assert!(H.plausible_at([0.1, 0.1]));
        // x = 0.5 is this transform's horizon: beyond it points are behind the camera.
        let tilted = Homography([1.0, 0.0, 0.0, 0.0, 1.0, 0.0, -2.0, 0.0, 1.0]);
        assert!(tilted.apply([0.6, 0.0]).is_none());
        assert!(!tilted.plausible_at([0.6, 0.0]));
    }

    #[test]
    fn keypoints_are_the_strongest_cells_at_their_centres() {
        // [1, 2, 2, 3]: channel 0 rises along the cells, channel 1 is negative in one cell.
        let map = Tensor::from_vec(
            vec![
                0.0f32, 1.0, 2.0, 3.0, 4.0, 5.0, // channel 0, rows 0 and 1
                0.0, 0.0, 0.0, 0.0, 0.0, -3.0, // channel 1
            ],
            (1, 2, 2, 3),
            &candle_core::Device::Cpu,
        )
        .unwrap();
        // A 48 x 32 input (stride 16) from a 96 x 64 image.
        let f = local_features_from_map(&map, 16.0, (96, 64), 3).unwrap();
        assert_eq!(f.len(), 3);
        assert_eq!(f.points, vec![[80.0, 48.0], [48.0, 48.0], [16.0, 48.0]]);
        assert_eq!(f.cell, 32.0);
        // The descriptor keeps the negative channel, normalised: (5, -3) / sqrt(34).
        let n = 34f32.sqrt();
        assert!((f.descriptors[0] - 5.0 / n).abs() < 1e-6);
        assert!((f.descriptors[1] + 3.0 / n).abs() < 1e-6);
        // A cell without any positive activation is no keypoint.
        let all = local_features_from_map(&map, 16.0, (96, 64), 100).unwrap();
        assert_eq!(all.len(), 5);
        let two = Tensor::cat(&[&map, &map], 0).unwrap();
        assert!(local_features_from_map(&two, 16.0, (96, 64), 3).is_err());
    }

    #[test]
    fn rois_are_padded_and_clamped() {
        let f = LocalFeatures {
            points: vec![[16.0, 24.0], [96.0, 40.0], [64.0, 60.0]],
            descriptors: vec![1.0; 3],
            dim: 1,
            image_size: (128, 64),
            cell: 8.0,
        };
        let r = bounding_box(&f, 0..3);
        assert_eq!(
            r,
            Roi {
                x0: 0.09375,
                y0: 0.3125,
                x1: 0.78125,
                y1: 1.0
            }
        );
        assert_eq!(r.pixels((128, 64)), (12, 20, 88, 44));
        // Degenerate and out-of-range regions still give a pixel inside the image.
        let empty = Roi {
            x0: 1.0,
            y0: 1.0,
            x1: 1.0,
            y1: 1.0,
        };
        assert_eq!(empty.pixels((128, 64)), (127, 63, 1, 1));
    }

    #[test]
    fn features_of_different_layers_never_match() {
        let f = |dim: usize| LocalFeatures {
            points: vec![[1.0, 1.0]; 8],
            descriptors: vec![1.0 / (dim as f32).sqrt(); 8 * dim],
            dim,
            image_size: (10, 10),
            cell: 2.0,
        };
        let v = verify(&f(4), &f(8), &VerifyOptions::default());
        assert_eq!((v.verified, v.matches, v.inliers), (false, 0, 0));
    }
}
