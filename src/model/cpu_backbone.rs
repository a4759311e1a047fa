//! The VGG16 backbone's inference path on the CPU, outside Candle's op graph.
//!
//! Candle's CPU convolution (im2col into a huge matrix, then gemm, then a layout copy) spends more
//! time copying than multiplying, and VGG16 is nearly all 3x3 convolutions. This path keeps
//! activations channel-last (H, W, C) from the first layer to conv5_3 and computes each 3x3
//! convolution with Winograd's minimal filtering F(4x4, 3x3) (Lavin & Gray, 2016): a 6x6 input
//! tile becomes 36 independent matrix products over channels, which cost a quarter of the direct
//! convolution's multiplications. Tiles are processed in blocks small enough to stay in cache,
//! blocks run in parallel, and bias and ReLU are applied as each output tile is written.
//! conv1_1 (3 input channels) is a direct im2col product.
//!
//! The result equals the direct convolution up to float rounding (a few 1e-6 relative per layer);
//! the test suite checks the whole network against an independent NumPy implementation.
//! Training and GPU inference use Candle's own convolutions.

use candle_core::{Device, Result, Tensor};
use rayon::prelude::*;

use super::vgg16::{Vgg16, CONVS};

/// Tiles per block: the block's transformed input and products stay in the core's cache.
const TILE_BLOCK: usize = 64;

/// Winograd F(4x4, 3x3) kernel transform G (6x3).
const G: [[f32; 3]; 6] = [
    [0.25, 0.0, 0.0],
    [-1.0 / 6.0, -1.0 / 6.0, -1.0 / 6.0],
    [-1.0 / 6.0, 1.0 / 6.0, -1.0 / 6.0],
    [1.0 / 24.0, 1.0 / 12.0, 1.0 / 6.0],
    [1.0 / 24.0, -1.0 / 12.0, 1.0 / 6.0],
    [0.0, 0.0, 1.0],
];

/// A raw pointer that rayon tasks may share: every task writes a disjoint region.
#[derive(Clone, Copy)]
struct SharedMut(*mut f32);
unsafe impl Send for SharedMut {}
unsafe impl Sync for SharedMut {}

impl SharedMut {
    /// The pointer `offset` elements further (a method, so closures capture the whole wrapper).
    unsafe fn offset(self, offset: usize) -> SharedMut {
        SharedMut(self.0.add(offset))
    }
}

/// Row-major single-threaded matrix product into `dst` (m x n) = `a` (m x k) * `b` (k x n).
fn matmul(
    dst: &mut [f32],
    a: &[f32],
    b: &[f32],
    m: usize,
    k: usize,
    n: usize,
    par: gemm::Parallelism,
) {
    debug_assert!(dst.len() >= m * n && a.len() >= m * k && b.len() >= k * n);
    // SAFETY: the slices hold at least the extents given; strides describe row-major layouts.
    unsafe {
        gemm::gemm(
            m,
            n,
            k,
            dst.as_mut_ptr(),
            1,
            n as isize,
            false,
            a.as_ptr(),
            1,
            k as isize,
            b.as_ptr(),
            1,
            n as isize,
            0.0,
            1.0,
            false,
            false,
            false,
            par,
        );
    }
}

/// Per-thread buffers of one tile block: transformed inputs, products, and three tile scratches.
type BlockScratch = (Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>, Vec<f32>);

/// One 3x3, padding-1 convolution with its Winograd-transformed weights.
struct WinogradConv {
    cin: usize,
    cout: usize,
    /// U[xi][c][k] = (G g G^T)[xi] for filter k, channel c; xi = 6 * row + column.
    u: Vec<f32>,
    bias: Vec<f32>,
}

impl WinogradConv {
    /// `weight` is OIHW [cout, cin, 3, 3].
    fn new(weight: &[f32], bias: &[f32], cin: usize, cout: usize) -> Self {
        let mut u = vec![0f32; 36 * cin * cout];
        for k in 0..cout {
            for c in 0..cin {
                let g = &weight[(k * cin + c) * 9..(k * cin + c) * 9 + 9];
                // t = G g (6x3), then U = t G^T (6x6)
                let mut t = [[0f32; 3]; 6];
                for (i, row) in G.iter().enumerate() {
                    for j in 0..3 {
                        t[i][j] = row[0] * g[j] + row[1] * g[3 + j] + row[2] * g[6 + j];
                    }
                }
                for i in 0..6 {
                    for (j, grow) in G.iter().enumerate() {
                        let v = t[i][0] * grow[0] + t[i][1] * grow[1] + t[i][2] * grow[2];
                        u[((i * 6 + j) * cin + c) * cout + k] = v;
                    }
                }
            }
        }
        WinogradConv {
            cin,
            cout,
            u,
            bias: bias.to_vec(),
        }
    }

    /// x: (b, h, w, cin) channel-last -> (b, h, w, cout), with ReLU when `relu`.
    fn forward(&self, x: &[f32], b: usize, h: usize, w: usize, relu: bool) -> Vec<f32> {
        let (cin, cout) = (self.cin, self.cout);
        let (th, tw) = (h.div_ceil(4), w.div_ceil(4));
        let per_image = th * tw;
        let tiles = b * per_image;
        let mut out = vec![0f32; b * h * w * cout];
        let out_ptr = SharedMut(out.as_mut_ptr());
        let blocks = tiles.div_ceil(TILE_BLOCK);
        // Few blocks (a small input): run them one after the other, each spreading its products.
        let parallel_products = blocks < 2 * rayon::current_num_threads();
        let run_blocks = |f: &(dyn Fn(&mut BlockScratch, usize) + Sync)| {
            let init = || {
                let cmax = cin.max(cout);
                (
                    vec![0f32; 36 * TILE_BLOCK * cin],
                    vec![0f32; 36 * TILE_BLOCK * cout],
                    vec![0f32; 36 * cmax],
                    vec![0f32; 36 * cmax],
                    vec![0f32; 36 * cmax],
                )
            };
            if !parallel_products {
                (0..blocks)
                    .into_par_iter()
                    .for_each_init(init, |state, block| f(state, block));
            } else {
                let mut state = init();
                (0..blocks).for_each(|block| f(&mut state, block));
            }
        };
        run_blocks(&|(v, m, scratch, tmp_a, tmp_b), block| {
            let first = block * TILE_BLOCK;
            let n = TILE_BLOCK.min(tiles - first);
            // 1. Input transform: V[xi][t][c] = (B^T d B)[xi].
            for t in 0..n {
                let (img, rem) = ((first + t) / per_image, (first + t) % per_image);
                let (ti, tj) = (rem / tw, rem % tw);
                let image = &x[img * h * w * cin..(img + 1) * h * w * cin];
                input_tile(
                    image,
                    h,
                    w,
                    cin,
                    4 * ti as isize - 1,
                    4 * tj as isize - 1,
                    scratch,
                    tmp_a,
                    tmp_b,
                );
                for xi in 0..36 {
                    let dst = &mut v[(xi * n + t) * cin..(xi * n + t + 1) * cin];
                    dst.copy_from_slice(&scratch[xi * cin..(xi + 1) * cin]);
                }
            }
            // 2. 36 products over channels: M[xi] (n x cout) = V[xi] (n x cin) * U[xi] (cin x cout).
            // A lone block (a small input) spreads its 36 products over the threads.
            let product = |xi: usize, dst: &mut [f32]| {
                let (a, u) = (
                    &v[xi * n * cin..(xi + 1) * n * cin],
                    &self.u[xi * cin * cout..(xi + 1) * cin * cout],
                );
                matmul(dst, a, u, n, cin, cout, gemm::Parallelism::None);
            };
            if parallel_products {
                m[..36 * n * cout]
                    .par_chunks_mut(n * cout)
                    .enumerate()
                    .for_each(|(xi, dst)| product(xi, dst));
            } else {
                m[..36 * n * cout]
                    .chunks_mut(n * cout)
                    .enumerate()
                    .for_each(|(xi, dst)| product(xi, dst));
            }
            // 3. Output transform, bias, ReLU, write.
            for t in 0..n {
                let (img, rem) = ((first + t) / per_image, (first + t) % per_image);
                let (ti, tj) = (rem / tw, rem % tw);
                for xi in 0..36 {
                    scratch[xi * cout..(xi + 1) * cout]
                        .copy_from_slice(&m[(xi * n + t) * cout..(xi * n + t + 1) * cout]);
                }
                // SAFETY: each tile writes its own 4x4 pixels of `out`; tiles never overlap.
                let image_out = unsafe { out_ptr.offset(img * h * w * cout) };
                unsafe {
                    output_tile(
                        scratch,
                        &self.bias,
                        image_out,
                        h,
                        w,
                        cout,
                        4 * ti,
                        4 * tj,
                        relu,
                        tmp_a,
                        tmp_b,
                    )
                };
            }
        });
        out
    }
}

/// Loads the 6x6 input tile at (y0, x0) (zero outside the image) and transforms it in place:
/// `buf[xi * c ..]` receives (B^T d B)[xi] for every channel.
#[allow(clippy::too_many_arguments)]
fn input_tile(
    x: &[f32],
    h: usize,
    w: usize,
    c: usize,
    y0: isize,
    x0: isize,
    buf: &mut [f32],
    d: &mut [f32],
    r: &mut [f32],
) {
    d[..36 * c].iter_mut().for_each(|v| *v = 0.0);
    for dy in 0..6 {
        let y = y0 + dy as isize;
        if y < 0 || y >= h as isize {
            continue;
        }
        for dx in 0..6 {
            let xx = x0 + dx as isize;
            if xx < 0 || xx >= w as isize {
                continue;
            }
            let src = ((y as usize) * w + xx as usize) * c;
            d[(dy * 6 + dx) * c..(dy * 6 + dx + 1) * c].copy_from_slice(&x[src..src + c]);
        }
    }
    // Rows: r = B^T d (over dy), then columns: (r B) over dx.
    for dx in 0..6 {
        let at = |dy: usize| (dy * 6 + dx) * c;
        for ch in 0..c {
            let (d0, d1, d2, d3, d4, d5) = (
                d[at(0) + ch],
                d[at(1) + ch],
                d[at(2) + ch],
                d[at(3) + ch],
                d[at(4) + ch],
                d[at(5) + ch],
            );
            r[at(0) + ch] = 4.0 * d0 - 5.0 * d2 + d4;
            r[at(1) + ch] = -4.0 * d1 - 4.0 * d2 + d3 + d4;
            r[at(2) + ch] = 4.0 * d1 - 4.0 * d2 - d3 + d4;
            r[at(3) + ch] = -2.0 * d1 - d2 + 2.0 * d3 + d4;
            r[at(4) + ch] = 2.0 * d1 - d2 - 2.0 * d3 + d4;
            r[at(5) + ch] = 4.0 * d1 - 5.0 * d3 + d5;
        }
    }
    for row in 0..6 {
        let at = |dx: usize| (row * 6 + dx) * c;
        for ch in 0..c {
            let (d0, d1, d2, d3, d4, d5) = (
                r[at(0) + ch],
                r[at(1) + ch],
                r[at(2) + ch],
                r[at(3) + ch],
                r[at(4) + ch],
                r[at(5) + ch],
            );
            buf[at(0) + ch] = 4.0 * d0 - 5.0 * d2 + d4;
            buf[at(1) + ch] = -4.0 * d1 - 4.0 * d2 + d3 + d4;
            buf[at(2) + ch] = 4.0 * d1 - 4.0 * d2 - d3 + d4;
            buf[at(3) + ch] = -2.0 * d1 - d2 + 2.0 * d3 + d4;
            buf[at(4) + ch] = 2.0 * d1 - d2 - 2.0 * d3 + d4;
            buf[at(5) + ch] = 4.0 * d1 - 5.0 * d3 + d5;
        }
    }
}

/// A^T m A for the 6x6 products of one tile -> 4x4 outputs written at (y0, x0).
///
/// # Safety
/// `out` must point to an (h, w, c) buffer that no other thread writes at these pixels.
#[allow(clippy::too_many_arguments)]
unsafe fn output_tile(
    m: &[f32],
    bias: &[f32],
    out: SharedMut,
    h: usize,
    w: usize,
    c: usize,
    y0: usize,
    x0: usize,
    relu: bool,
    r: &mut [f32],
    o: &mut [f32],
) {
    // r: 4 rows x 6 columns
    for col in 0..6 {
        let at = |row: usize| (row * 6 + col) * c;
        for ch in 0..c {
            let (m0, m1, m2, m3, m4, m5) = (
                m[at(0) + ch],
                m[at(1) + ch],
                m[at(2) + ch],
                m[at(3) + ch],
                m[at(4) + ch],
                m[at(5) + ch],
            );
            r[(col) * c + ch] = m0 + m1 + m2 + m3 + m4;
            r[(6 + col) * c + ch] = m1 - m2 + 2.0 * (m3 - m4);
            r[(12 + col) * c + ch] = m1 + m2 + 4.0 * (m3 + m4);
            r[(18 + col) * c + ch] = m1 - m2 + 8.0 * (m3 - m4) + m5;
        }
    }
    for row in 0..4 {
        let y = y0 + row;
        if y >= h {
            break;
        }
        let at = |col: usize| (row * 6 + col) * c;
        for ch in 0..c {
            let (m0, m1, m2, m3, m4, m5) = (
                r[at(0) + ch],
                r[at(1) + ch],
                r[at(2) + ch],
                r[at(3) + ch],
                r[at(4) + ch],
                r[at(5) + ch],
            );
            o[ch] = m0 + m1 + m2 + m3 + m4;
            o[c + ch] = m1 - m2 + 2.0 * (m3 - m4);
            o[2 * c + ch] = m1 + m2 + 4.0 * (m3 + m4);
            o[3 * c + ch] = m1 - m2 + 8.0 * (m3 - m4) + m5;
        }
        for col in 0..4 {
            let xx = x0 + col;
            if xx >= w {
                break;
            }
            let dst = std::slice::from_raw_parts_mut(out.0.add((y * w + xx) * c), c);
            for ch in 0..c {
                let v = o[col * c + ch] + bias[ch];
                dst[ch] = if relu { v.max(0.0) } else { v };
            }
        }
    }
}

/// conv1_1: 3 input channels, direct im2col product. x: (h, w, 3) -> (h, w, cout), ReLU.
struct DirectConv {
    cin: usize,
    cout: usize,
    /// [9 * cin][cout]: row (dy * 3 + dx) * cin + c
    w: Vec<f32>,
    bias: Vec<f32>,
}

impl DirectConv {
    fn new(weight: &[f32], bias: &[f32], cin: usize, cout: usize) -> Self {
        let mut w = vec![0f32; 9 * cin * cout];
        for k in 0..cout {
            for c in 0..cin {
                for t in 0..9 {
                    w[(t * cin + c) * cout + k] = weight[(k * cin + c) * 9 + t];
                }
            }
        }
        DirectConv {
            cin,
            cout,
            w,
            bias: bias.to_vec(),
        }
    }

    /// x: (b, h, w, cin) -> (b, h, w, cout), ReLU.
    fn forward(&self, x: &[f32], b: usize, h: usize, w: usize) -> Vec<f32> {
        let (cin, cout) = (self.cin, self.cout);
        let kdim = 9 * cin;
        let mut out = vec![0f32; b * h * w * cout];
        out.par_chunks_mut(w * cout).enumerate().for_each_init(
            || vec![0f32; w * kdim],
            |cols, (row, row_out)| {
                let (img, y) = (row / h, row % h);
                let x = &x[img * h * w * cin..(img + 1) * h * w * cin];
                cols.iter_mut().for_each(|v| *v = 0.0);
                for xx in 0..w {
                    for dy in 0..3 {
                        let sy = y as isize + dy as isize - 1;
                        if sy < 0 || sy >= h as isize {
                            continue;
                        }
                        for dx in 0..3 {
                            let sx = xx as isize + dx as isize - 1;
                            if sx < 0 || sx >= w as isize {
                                continue;
                            }
                            let src = (sy as usize * w + sx as usize) * cin;
                            let dst = xx * kdim + (dy * 3 + dx) * cin;
                            cols[dst..dst + cin].copy_from_slice(&x[src..src + cin]);
                        }
                    }
                }
                matmul(
                    row_out,
                    cols,
                    &self.w,
                    w,
                    kdim,
                    cout,
                    gemm::Parallelism::None,
                );
                for px in row_out.chunks_exact_mut(cout) {
                    for (v, b) in px.iter_mut().zip(&self.bias) {
                        *v = (*v + b).max(0.0);
                    }
                }
            },
        );
        out
    }
}

/// 2x2 max pooling, stride 2, channel-last. A batch (b, h, w, c) with even h pools as one
/// (b * h, w, c) image: row pairs never straddle two images.
fn max_pool2(x: &[f32], h: usize, w: usize, c: usize) -> (Vec<f32>, usize, usize) {
    let (ho, wo) = (h / 2, w / 2);
    let mut out = vec![0f32; ho * wo * c];
    out.par_chunks_mut(wo * c).enumerate().for_each(|(y, row)| {
        for xx in 0..wo {
            let a = ((2 * y) * w + 2 * xx) * c;
            let b = a + c;
            let cc = a + w * c;
            let d = cc + c;
            for ch in 0..c {
                row[xx * c + ch] = x[a + ch].max(x[b + ch]).max(x[cc + ch]).max(x[d + ch]);
            }
        }
    });
    (out, ho, wo)
}

enum Layer {
    Direct(DirectConv),
    Winograd(WinogradConv),
}

/// The VGG16 backbone prepared for CPU inference.
pub struct CpuBackbone {
    layers: Vec<(usize, Layer)>,
}

impl std::fmt::Debug for CpuBackbone {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(f, "CpuBackbone({} layers)", self.layers.len())
    }
}

impl CpuBackbone {
    pub fn new(vgg: &Vgg16) -> Result<Self> {
        let mut layers = Vec::new();
        for ((index, conv), &(_, cin, cout)) in vgg.convs().iter().zip(CONVS.iter()) {
            let weight: Vec<f32> = conv
                .weight()
                .to_dtype(candle_core::DType::F32)?
                .flatten_all()?
                .to_vec1()?;
            let bias: Vec<f32> = match conv.bias() {
                Some(b) => b.to_dtype(candle_core::DType::F32)?.to_vec1()?,
                None => vec![0.0; cout],
            };
            let layer = if cin < 8 {
                Layer::Direct(DirectConv::new(&weight, &bias, cin, cout))
            } else {
                Layer::Winograd(WinogradConv::new(&weight, &bias, cin, cout))
            };
            layers.push((*index, layer));
        }
        Ok(CpuBackbone { layers })
    }

    /// Images (b, H, W, 3) channel-last -> conv5_3 (b, h, w, 512) without its ReLU.
    fn forward_hwc(
        &self,
        bhwc: Vec<f32>,
        b: usize,
        mut h: usize,
        mut w: usize,
    ) -> (Vec<f32>, usize, usize) {
        let mut x = bhwc;
        let last = self.layers.len() - 1;
        for (n, (index, layer)) in self.layers.iter().enumerate() {
            let c;
            (x, c) = match layer {
                Layer::Direct(l) => (l.forward(&x, b, h, w), l.cout),
                Layer::Winograd(l) => (l.forward(&x, b, h, w, n != last), l.cout),
            };
            if [2, 7, 14, 21].contains(index) {
                let (p, _, wo) = max_pool2(&x, b * h, w, c);
                (x, h, w) = (p, h / 2, wo);
            }
        }
        (x, h, w)
    }

    /// [B, 3, H, W] -> conv5_3 [B, 512, H/16, W/16], like [`Vgg16::forward`].
    pub fn forward(&self, images: &Tensor) -> Result<Tensor> {
        let (b, c, h, w) = images.dims4()?;
        if c != 3 {
            candle_core::bail!("expected 3 input channels, got {c}");
        }
        if h % 16 != 0 || w % 16 != 0 {
            candle_core::bail!("input sides must be multiples of 16, got {w}x{h}");
        }
        let bhwc: Vec<f32> = images.permute((0, 2, 3, 1))?.flatten_all()?.to_vec1()?;
        let (f, fh, fw) = self.forward_hwc(bhwc, b, h, w);
        Tensor::from_vec(f, (b, fh, fw, 512), &Device::Cpu)?
            .permute((0, 3, 1, 2))?
            .contiguous()
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::Module;

    /// The Winograd path equals Candle's direct convolution on random weights and inputs,
    /// including odd sizes where tiles overhang the image.
    #[test]
    fn matches_candle_convolution() {
        let dev = Device::Cpu;
        // Seeded values (uniform, with the spread of the Gaussian ones they replace): the same
        // weights and inputs every run.
        let mut rng = crate::model::build::Rng::new(7);
        let mut randn = |sd: f32, shape: &[usize]| {
            let n: usize = shape.iter().product();
            let v: Vec<f32> = (0..n)
                .map(|_| (rng.next_f64() as f32 * 2.0 - 1.0) * sd * 3f32.sqrt())
                .collect();
            Tensor::from_vec(v, shape, &dev).unwrap()
        };
        for (cin, cout, h, w) in [(8, 16, 9, 7), (16, 8, 4, 4), (3, 8, 5, 6), (32, 32, 12, 10)] {
            let weight = randn(0.3, &[cout, cin, 3, 3]);
            let bias = randn(0.3, &[cout]);
            let x = randn(1.0, &[1, cin, h, w]);
            let conv = candle_nn::Conv2d::new(
                weight.clone(),
                Some(bias.clone()),
                candle_nn::Conv2dConfig {
                    padding: 1,
                    ..Default::default()
                },
            );
            let expected = conv.forward(&x).unwrap().relu().unwrap();
            let wv: Vec<f32> = weight.flatten_all().unwrap().to_vec1().unwrap();
            let bv: Vec<f32> = bias.to_vec1().unwrap();
            let xv: Vec<f32> = x
                .get(0)
                .unwrap()
                .permute((1, 2, 0))
                .unwrap()
                .flatten_all()
                .unwrap()
                .to_vec1()
                .unwrap();
            let got = if cin < 8 {
                DirectConv::new(&wv, &bv, cin, cout).forward(&xv, 1, h, w)
            } else {
                WinogradConv::new(&wv, &bv, cin, cout).forward(&xv, 1, h, w, true)
            };
            let got = Tensor::from_vec(got, (h, w, cout), &dev)
                .unwrap()
                .permute((2, 0, 1))
                .unwrap()
                .unsqueeze(0)
                .unwrap();
            let diff = (got - &expected)
                .unwrap()
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            // Winograd's transforms round differently from a direct sum: the error grows with
            // the outputs' size, so the bound is relative to the largest.
            let scale = expected
                .abs()
                .unwrap()
                .max_all()
                .unwrap()
                .to_scalar::<f32>()
                .unwrap();
            assert!(
                diff < 2e-5 * scale.max(1.0),
                "{cin}->{cout} {h}x{w}: max diff {diff} (outputs up to {scale})"
            );
        }
    }
}
