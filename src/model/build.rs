//! Building the default model from ImageNet VGG16 and a generic image sample:
//! NetVLAD centroids by k-means on L2-normalised conv5_3 features, the soft-assignment initialised
//! from them (pytorch-NetVlad's vladv1 rule), and PCA-whitening learned on NetVLAD vectors of the
//! sample. PCA never forms a 32768 x 32768 matrix: with N < 32768 vectors it diagonalises the
//! N x N Gram matrix, as NetVLAD does. Every random choice comes from a seeded generator, so a build
//! is reproducible.

use std::collections::HashMap;
use std::path::PathBuf;

use candle_core::{DType, Device, Module, Tensor};
use serde::Serialize;

use super::netvlad::{init_assignment, l2_normalize, NetVlad, CLUSTERS};
use super::vgg16::Vgg16;
use crate::error::{Error, Result};
use crate::progress::{CancelToken, ProgressMeter, ProgressSink};

/// SplitMix64: a tiny, fast, well-mixed generator; enough for sampling and k-means++ seeding.
#[derive(Debug, Clone)]
pub struct Rng(u64);

impl Rng {
    pub fn new(seed: u64) -> Self {
        Rng(seed)
    }
    /// The generator's whole state: `Rng::new(rng.state())` continues the same sequence (what a
    /// training checkpoint stores).
    pub fn state(&self) -> u64 {
        self.0
    }
    pub fn next_u64(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    /// Uniform in [0, 1).
    pub fn next_f64(&mut self) -> f64 {
        (self.next_u64() >> 11) as f64 / (1u64 << 53) as f64
    }
    /// Uniform in 0..n.
    pub fn below(&mut self, n: usize) -> usize {
        (self.next_f64() * n as f64) as usize % n.max(1)
    }
    /// `k` distinct indices of 0..n (all of them when k >= n), in random order.
    pub fn sample(&mut self, n: usize, k: usize) -> Vec<usize> {
        let mut idx: Vec<usize> = (0..n).collect();
        let k = k.min(n);
        for i in 0..k {
            let j = i + self.below(n - i);
            idx.swap(i, j);
        }
        idx.truncate(k);
        idx
    }
}

/// Lloyd's k-means with k-means++ seeding. `data` [N, D] f32 -> centroids [k, D].
pub fn kmeans(data: &Tensor, k: usize, iterations: usize, rng: &mut Rng) -> Result<Tensor> {
    let (n, _) = data.dims2()?;
    if n < k {
        return Err(Error::Model(format!(
            "k-means needs at least {k} samples, got {n}"
        )));
    }
    let sq_norms = data.sqr()?.sum_keepdim(1)?; // [N, 1]
                                                // k-means++: each next centre drawn with probability proportional to squared distance.
    let mut chosen = vec![rng.below(n)];
    let mut best_d2: Vec<f32> = vec![f32::INFINITY; n];
    while chosen.len() < k {
        let c = data.get(*chosen.last().unwrap())?.unsqueeze(0)?;
        let d2 = (sq_norms
            .broadcast_sub(&data.matmul(&c.t()?)?.affine(2.0, 0.0)?)?
            .broadcast_add(&c.sqr()?.sum_keepdim(1)?)?)
        .squeeze(1)?
        .to_vec1::<f32>()?;
        for (b, d) in best_d2.iter_mut().zip(d2) {
            *b = b.min(d.max(0.0));
        }
        let total: f64 = best_d2.iter().map(|&d| d as f64).sum();
        let mut target = rng.next_f64() * total;
        let mut pick = n - 1;
        for (i, &d) in best_d2.iter().enumerate() {
            target -= d as f64;
            if target <= 0.0 {
                pick = i;
                break;
            }
        }
        chosen.push(pick);
    }
    let ids = Tensor::from_vec(
        chosen.iter().map(|&i| i as u32).collect::<Vec<_>>(),
        k,
        data.device(),
    )?;
    let mut centroids = data.index_select(&ids, 0)?;
    for _ in 0..iterations {
        let c_norms = centroids.sqr()?.sum_keepdim(1)?.t()?; // [1, k]
        let d2 = sq_norms
            .broadcast_sub(&data.matmul(&centroids.t()?)?.affine(2.0, 0.0)?)?
            .broadcast_add(&c_norms)?; // [N, k]
        let assign = d2.argmin(1)?; // [N]
        let assign_v: Vec<u32> = assign.to_vec1()?;
        let mut counts = vec![0f32; k];
        for &a in &assign_v {
            counts[a as usize] += 1.0;
        }
        let onehot = one_hot(&assign_v, k, data.device())?; // [N, k]
        let sums = onehot.t()?.matmul(data)?; // [k, D]
        let mut rows = Vec::with_capacity(k);
        // An empty cluster takes the point farthest from its centre.
        let worst = d2.min(1)?.to_vec1::<f32>()?;
        let mut order: Vec<usize> = (0..n).collect();
        order.sort_by(|&a, &b| worst[b].total_cmp(&worst[a]));
        let mut spare = order.into_iter();
        for (j, &cnt) in counts.iter().enumerate() {
            if cnt > 0.0 {
                rows.push((sums.get(j)? / cnt as f64)?);
            } else {
                rows.push(data.get(spare.next().unwrap_or(0))?);
            }
        }
        centroids = Tensor::stack(&rows, 0)?;
    }
    Ok(centroids)
}

fn one_hot(labels: &[u32], k: usize, device: &Device) -> Result<Tensor> {
    let mut v = vec![0f32; labels.len() * k];
    for (i, &l) in labels.iter().enumerate() {
        v[i * k + l as usize] = 1.0;
    }
    Ok(Tensor::from_vec(v, (labels.len(), k), device)?)
}

/// PCA-whitening learned from `vectors` [N, D]: (mean [D], weight [dim, D], eigenvalues of the
/// kept components). The weight rows are U_i / sqrt(lambda_i + eps), eigenvalues descending, with
/// eps = `eps_rel` times the mean kept eigenvalue: a floor that keeps whitening from blowing up the
/// weakest (noisiest) components.
pub fn learn_whitening(
    vectors: &Tensor,
    dim: usize,
    eps_rel: f64,
) -> Result<(Tensor, Tensor, Vec<f64>)> {
    let (n, d) = vectors.dims2()?;
    if dim >= n {
        return Err(Error::Model(format!(
            "whitening to {dim} dimensions needs more than {dim} vectors, got {n}"
        )));
    }
    let mean = vectors.mean(0)?; // [D]
    let x = vectors.broadcast_sub(&mean)?; // [N, D]
    let gram = x.matmul(&x.t()?)?.to_dtype(DType::F64)?.to_vec2::<f64>()?; // [N, N]
    let g = faer::Mat::<f64>::from_fn(n, n, |i, j| gram[i][j]);
    let evd = g
        .self_adjoint_eigen(faer::Side::Lower)
        .map_err(|e| Error::Model(format!("eigendecomposition failed: {e:?}")))?;
    let (u, s) = (evd.U(), evd.S());
    // Eigenvalues come in increasing order: take the largest `dim`.
    let order: Vec<usize> = (0..n).rev().take(dim).collect();
    let kept_mean = order
        .iter()
        .map(|&i| s[i].max(0.0) / (n - 1) as f64)
        .sum::<f64>()
        / dim as f64;
    let eps = eps_rel * kept_mean;
    let mut coeffs = vec![0f32; n * dim]; // [N, dim]: u_i / (sqrt(g_i) * sqrt(lambda_i + eps))
    let mut eigenvalues = Vec::with_capacity(dim);
    for (col, &i) in order.iter().enumerate() {
        let g_i = s[i].max(1e-12);
        let lambda = g_i / (n - 1) as f64; // covariance eigenvalue
        eigenvalues.push(lambda);
        let scale = 1.0 / (g_i.sqrt() * (lambda + eps).sqrt());
        for row in 0..n {
            coeffs[row * dim + col] = (u[(row, i)] * scale) as f32;
        }
    }
    let coeffs = Tensor::from_vec(coeffs, (n, dim), vectors.device())?;
    // Principal directions in D-space: X^T u_i / sqrt(g_i); weight = their rows scaled.
    let weight = coeffs.t()?.matmul(&x)?; // [dim, D]
    debug_assert_eq!(weight.dims(), &[dim, d]);
    Ok((mean, weight, eigenvalues))
}

/// What `build_default` did, for the model card and the report.
#[derive(Debug, Clone, Serialize)]
pub struct BuildReport {
    pub sample_images: usize,
    /// The images used, in order (relative to the sample folders).
    pub images: Vec<String>,
    pub skipped_images: Vec<String>,
    pub local_features: usize,
    pub kmeans_samples: usize,
    pub kmeans_iterations: usize,
    pub alpha: f64,
    pub whitening_vectors: usize,
    pub whitened_dim: usize,
    pub whitening_eps: f64,
    pub seed: u64,
    pub seconds: f64,
}

#[derive(Debug, Clone)]
pub struct BuildOptions {
    pub sample: Vec<PathBuf>,
    pub long_side: u32,
    /// Images whose short side is smaller are skipped (icons, test patterns).
    pub min_short_side: u32,
    pub features_per_image: usize,
    pub kmeans_iterations: usize,
    /// NetVLAD vectors per image for whitening: the whole image and this many random crops of its
    /// conv5_3 map (60-95% of each side), so that whitening sees more vectors than images.
    pub crops_per_image: usize,
    pub whitened_dim: usize,
    pub whitening_eps: f64,
    pub seed: u64,
    /// Leave geotagged photos out of the sample, so that no photo an evaluation may use is seen.
    pub skip_geotagged: bool,
}

/// Random crop of a conv5_3 map [1, C, H, W] with sides 60-95% of the original.
fn random_crop(f: &Tensor, rng: &mut Rng) -> Result<Tensor> {
    let (_, _, h, w) = f.dims4()?;
    let side = |len: usize, rng: &mut Rng| {
        ((len as f64 * (0.6 + 0.35 * rng.next_f64())).round() as usize).clamp(2, len)
    };
    let (ch, cw) = (side(h, rng), side(w, rng));
    let (y, x) = (rng.below(h - ch + 1), rng.below(w - cw + 1));
    Ok(f.narrow(2, y, ch)?.narrow(3, x, cw)?)
}

/// Builds the default model's aggregation and whitening tensors on top of `backbone`.
pub fn build_default(
    backbone: &HashMap<String, Tensor>,
    opts: &BuildOptions,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<(HashMap<String, Tensor>, BuildReport)> {
    let started = std::time::Instant::now();
    let device = Device::Cpu;
    let vb = candle_nn::VarBuilder::from_tensors(backbone.clone(), DType::F32, &device);
    let net = Vgg16::new(vb.pp("backbone"))?;
    let mut rng = Rng::new(opts.seed);

    // 1. The sample: every decodable photo under the sample folders, large enough, in path order.
    let mut files: Vec<PathBuf> = opts
        .sample
        .iter()
        .flat_map(|dir| {
            walkdir::WalkDir::new(dir)
                .into_iter()
                .filter_map(|e| e.ok())
        })
        .filter(|e| e.file_type().is_file())
        .map(|e| e.into_path())
        .filter(|p| {
            crate::library::format::format_from_extension(p)
                .is_some_and(|f| f.has_decodable_pixels())
        })
        .collect();
    files.sort();
    let mut meter = ProgressMeter::new(progress, "build-model");
    meter.stage("conv5 features", Some(files.len() as u64));
    let mut maps = Vec::new();
    let mut used = Vec::new();
    let mut skipped = Vec::new();
    for path in &files {
        cancel.check()?;
        if opts.skip_geotagged {
            let sidecar = crate::library::xmp::find_sidecar(path);
            if let Ok(md) = crate::library::read_photo_metadata(path, sidecar.as_deref()) {
                if md.location.is_some() {
                    skipped.push(format!("{}: geotagged", path.display()));
                    meter.advance(1);
                    continue;
                }
            }
        }
        let img = match crate::library::decode::decode_upright(path, None) {
            Ok(i) if i.width().min(i.height()) >= opts.min_short_side => i,
            Ok(i) => {
                skipped.push(format!(
                    "{}: {}x{} is too small",
                    path.display(),
                    i.width(),
                    i.height()
                ));
                meter.advance(1);
                continue;
            }
            Err(e) => {
                skipped.push(e.to_string());
                meter.advance(1);
                continue;
            }
        };
        let input = super::preprocess::fit_input(&img.to_rgb8(), opts.long_side);
        let t = super::preprocess::to_tensor(&input, &device)?.unsqueeze(0)?;
        maps.push(net.forward(&t)?); // [1, 512, h, w]
        let shown = opts
            .sample
            .iter()
            .find_map(|root| path.strip_prefix(root).ok())
            .unwrap_or(path);
        used.push(shown.display().to_string());
        meter.advance(1);
    }
    if maps.len() < 8 {
        return Err(Error::Model(format!(
            "the sample has only {} usable images",
            maps.len()
        )));
    }

    // 2. k-means on L2-normalised local features, a fixed number drawn from each image.
    let mut sampled = Vec::new();
    let mut local_features = 0;
    for m in &maps {
        let (_, c, h, w) = m.dims4()?;
        local_features += h * w;
        let flat = l2_normalize(m, 1)?.reshape((c, h * w))?.t()?.contiguous()?; // [h*w, C]
        let pick = rng.sample(h * w, opts.features_per_image);
        let ids = Tensor::from_vec(
            pick.iter().map(|&i| i as u32).collect::<Vec<_>>(),
            pick.len(),
            &device,
        )?;
        sampled.push(flat.index_select(&ids, 0)?);
    }
    let sampled = Tensor::cat(&sampled, 0)?;
    meter.stage("k-means", Some(opts.kmeans_iterations as u64));
    let centroids = kmeans(&sampled, CLUSTERS, opts.kmeans_iterations, &mut rng)?;
    let (conv_weight, alpha) = init_assignment(&centroids, &sampled)?;
    let netvlad = NetVlad::from_parts(centroids.clone(), conv_weight.clone());

    // 3. NetVLAD vectors of each image and random crops, then PCA-whitening.
    meter.stage("NetVLAD vectors", Some(maps.len() as u64));
    let mut vlads = Vec::new();
    for m in &maps {
        cancel.check()?;
        vlads.push(netvlad.forward(m)?);
        for _ in 0..opts.crops_per_image {
            vlads.push(netvlad.forward(&random_crop(m, &mut rng)?)?);
        }
        meter.advance(1);
    }
    let vlads = Tensor::cat(&vlads, 0)?;
    meter.stage("whitening", None);
    let (mean, weight, _) = learn_whitening(&vlads, opts.whitened_dim, opts.whitening_eps)?;
    meter.finish();

    let mut out = HashMap::new();
    out.insert("aggregation.centroids".to_string(), centroids);
    out.insert("aggregation.conv.weight".to_string(), conv_weight);
    out.insert("whiten.mean".to_string(), mean);
    out.insert("whiten.weight".to_string(), weight);
    let report = BuildReport {
        sample_images: maps.len(),
        images: used,
        skipped_images: skipped,
        local_features,
        kmeans_samples: sampled.dim(0)?,
        kmeans_iterations: opts.kmeans_iterations,
        alpha,
        whitening_vectors: vlads.dim(0)?,
        whitened_dim: opts.whitened_dim,
        whitening_eps: opts.whitening_eps,
        seed: opts.seed,
        seconds: started.elapsed().as_secs_f64(),
    };
    Ok((out, report))
}

/// The smallest cosine between descriptors computed with `tensors` and with the same tensors
/// rounded to f16, over `images`: the check that storing a model in f16 changes nothing that matters.
pub fn f16_agreement(
    tensors: &HashMap<String, Tensor>,
    images: &[PathBuf],
    long_side: u32,
) -> Result<f64> {
    let device = Device::Cpu;
    let rounded: HashMap<String, Tensor> = tensors
        .iter()
        .map(|(k, v)| Ok((k.clone(), v.to_dtype(DType::F16)?.to_dtype(DType::F32)?)))
        .collect::<Result<_>>()?;
    let net32 = super::PlaceNet::new(candle_nn::VarBuilder::from_tensors(
        tensors.clone(),
        DType::F32,
        &device,
    ))?
    .with_cpu_inference()?;
    let net16 = super::PlaceNet::new(candle_nn::VarBuilder::from_tensors(
        rounded,
        DType::F32,
        &device,
    ))?
    .with_cpu_inference()?;
    let mut worst = 1.0f64;
    for path in images {
        let img = crate::library::decode::decode_upright(path, None)?;
        let input = super::preprocess::fit_input(&img.to_rgb8(), long_side);
        let x = super::preprocess::to_tensor(&input, &device)?.unsqueeze(0)?;
        let a: Vec<f32> = net32.forward(&x)?.descriptor.flatten_all()?.to_vec1()?;
        let b: Vec<f32> = net16.forward(&x)?.descriptor.flatten_all()?.to_vec1()?;
        let cos: f64 = a.iter().zip(&b).map(|(x, y)| *x as f64 * *y as f64).sum();
        worst = worst.min(cos);
    }
    Ok(worst)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn kmeans_finds_separated_clusters() {
        let mut rng = Rng::new(7);
        let centres = [[0f32, 0.0], [10.0, 0.0], [0.0, 10.0]];
        let mut v = Vec::new();
        for i in 0..300 {
            let c = centres[i % 3];
            v.push(c[0] + rng.next_f64() as f32 - 0.5);
            v.push(c[1] + rng.next_f64() as f32 - 0.5);
        }
        let data = Tensor::from_vec(v, (300, 2), &Device::Cpu).unwrap();
        let found = kmeans(&data, 3, 20, &mut Rng::new(1))
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        for c in centres {
            let nearest = found
                .iter()
                .map(|f| ((f[0] - c[0]).powi(2) + (f[1] - c[1]).powi(2)).sqrt())
                .fold(f32::MAX, f32::min);
            assert!(nearest < 0.2, "{c:?} not found in {found:?}");
        }
    }

    #[test]
    fn whitening_decorrelates_and_equalises() {
        // Correlated 2-D data embedded in 5-D: after whitening, unit covariance.
        let mut rng = Rng::new(3);
        let mut v = Vec::new();
        for _ in 0..400 {
            let (a, b) = (rng.next_f64() - 0.5, rng.next_f64() - 0.5);
            v.extend([
                (3.0 * a) as f32,
                (3.0 * a + 0.2 * b) as f32,
                0.0,
                (0.5 * b) as f32,
                1.0,
            ]);
        }
        let x = Tensor::from_vec(v, (400, 5), &Device::Cpu).unwrap();
        let (mean, w, ev) = learn_whitening(&x, 2, 0.0).unwrap();
        assert!(ev[0] >= ev[1]);
        let y = x
            .broadcast_sub(&mean)
            .unwrap()
            .matmul(&w.t().unwrap())
            .unwrap();
        let cov = (y.t().unwrap().matmul(&y).unwrap() / 399.0)
            .unwrap()
            .to_vec2::<f32>()
            .unwrap();
        assert!(
            (cov[0][0] - 1.0).abs() < 1e-3 && (cov[1][1] - 1.0).abs() < 1e-3,
            "{cov:?}"
        );
        assert!(cov[0][1].abs() < 1e-3, "{cov:?}");
        assert!(learn_whitening(&x, 400, 0.0).is_err());
    }

    #[test]
    fn rng_is_reproducible_and_samples_distinct() {
        let a: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(9);
                move |_| r.next_u64()
            })
            .collect();
        let b: Vec<u64> = (0..5)
            .map({
                let mut r = Rng::new(9);
                move |_| r.next_u64()
            })
            .collect();
        assert_eq!(a, b);
        let mut s = Rng::new(2).sample(100, 30);
        s.sort();
        s.dedup();
        assert_eq!(s.len(), 30);
    }
}
