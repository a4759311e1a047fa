//! Confidence calibration: a logistic model turning evidence features into the probability that
//! the true location lies within the proposal's radius, fitted on held-out tagged photos (each
//! tagged photo proposed from the others), and the table that shows how well it holds.

use serde::{Deserialize, Serialize};

/// Logistic model p = 1 / (1 + exp(-(b0 + b . x))).
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Logistic {
    pub intercept: f64,
    pub weights: Vec<f64>,
}

impl Logistic {
    pub fn probability(&self, x: &[f64]) -> f64 {
        let z = self.intercept + self.weights.iter().zip(x).map(|(w, v)| w * v).sum::<f64>();
        1.0 / (1.0 + (-z).exp())
    }

    /// Fits by Newton's method (IRLS) with an L2 penalty `ridge` on the weights (not the intercept).
    /// Returns `None` when the samples do not hold both outcomes.
    pub fn fit(samples: &[(Vec<f64>, bool)], ridge: f64) -> Option<Logistic> {
        let n_pos = samples.iter().filter(|s| s.1).count();
        if samples.is_empty() || n_pos == 0 || n_pos == samples.len() {
            return None;
        }
        let d = samples[0].0.len() + 1;
        let mut beta = vec![0.0; d];
        beta[0] = (n_pos as f64 / (samples.len() - n_pos) as f64).ln();
        for _ in 0..50 {
            let mut grad = vec![0.0; d];
            let mut hess = vec![vec![0.0; d]; d];
            for (x, y) in samples {
                let xs: Vec<f64> = std::iter::once(1.0).chain(x.iter().copied()).collect();
                let z: f64 = beta.iter().zip(&xs).map(|(b, v)| b * v).sum();
                let p = 1.0 / (1.0 + (-z).exp());
                let w = (p * (1.0 - p)).max(1e-9);
                for i in 0..d {
                    grad[i] += (p - *y as u8 as f64) * xs[i];
                    for j in 0..d {
                        hess[i][j] += w * xs[i] * xs[j];
                    }
                }
            }
            for i in 1..d {
                grad[i] += ridge * beta[i];
                hess[i][i] += ridge;
            }
            let step = solve(hess, grad)?;
            let mut change = 0.0f64;
            for i in 0..d {
                beta[i] -= step[i];
                change = change.max(step[i].abs());
            }
            if change < 1e-8 {
                break;
            }
        }
        Some(Logistic {
            intercept: beta[0],
            weights: beta[1..].to_vec(),
        })
    }
}

/// Gaussian elimination with partial pivoting.
fn solve(mut a: Vec<Vec<f64>>, mut b: Vec<f64>) -> Option<Vec<f64>> {
    let n = b.len();
    for col in 0..n {
        let pivot = (col..n).max_by(|&i, &j| a[i][col].abs().total_cmp(&a[j][col].abs()))?;
        if a[pivot][col].abs() < 1e-12 {
            return None;
        }
        a.swap(col, pivot);
        b.swap(col, pivot);
        let (top, bottom) = a.split_at_mut(col + 1);
        let pivot_row = &top[col];
        for (offset, row) in bottom.iter_mut().enumerate() {
            let f = row[col] / pivot_row[col];
            for (x, p) in row[col..].iter_mut().zip(&pivot_row[col..]) {
                *x -= f * p;
            }
            b[col + 1 + offset] -= f * b[col];
        }
    }
    let mut x = vec![0.0; n];
    for row in (0..n).rev() {
        let s: f64 = (row + 1..n).map(|k| a[row][k] * x[k]).sum();
        x[row] = (b[row] - s) / a[row][row];
    }
    Some(x)
}

/// Calibrations for each kind of evidence.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct Calibration {
    /// Visual: features [top, margin, share, support, verified] (see `visual::VisualFeatures`).
    /// A calibration stored before `verified` existed has four weights and ignores it.
    pub visual: Logistic,
    /// Capture time: features [ln(1 + gap in minutes), interpolated (0/1)].
    pub time: Logistic,
    /// Held-out samples the calibration was fitted on (0: the built-in prior).
    pub samples: usize,
    pub source: String,
}

impl Default for Calibration {
    /// The prior used until a library has enough tagged photos to fit its own: a cautious reading
    /// of the features (a near-duplicate match well ahead of every other place is likely right;
    /// a lone weak match is not).
    fn default() -> Self {
        Calibration {
            visual: Logistic {
                intercept: -7.0,
                // A verified cluster of 40 inliers adds 2.6 to the log-odds: about as much as a
                // margin of 0.2 in similarity, which only near-duplicates reach.
                weights: vec![9.0, 12.0, 2.0, 0.8, 0.7],
            },
            time: Logistic {
                intercept: 2.5,
                weights: vec![-1.1, 0.8],
            },
            samples: 0,
            source: "built-in prior".into(),
        }
    }
}

/// Minimum held-out samples (with both outcomes) before a library's own fit replaces the prior.
pub const MIN_SAMPLES: usize = 40;

/// One bin of the calibration table: proposals whose confidence fell in [lo, hi).
#[derive(Debug, Clone, Serialize, PartialEq)]
pub struct CalibrationBin {
    pub lo: f64,
    pub hi: f64,
    pub proposals: usize,
    pub mean_confidence: f64,
    /// Fraction whose true location was within the radius.
    pub within_radius: f64,
}

/// Reliability table over 5 equal bins of confidence, plus the expected calibration error.
pub fn calibration_table(samples: &[(f64, bool)]) -> (Vec<CalibrationBin>, f64) {
    let mut bins = Vec::new();
    let mut ece = 0.0;
    for b in 0..5 {
        let (lo, hi) = (b as f64 / 5.0, (b + 1) as f64 / 5.0);
        let inside: Vec<&(f64, bool)> = samples
            .iter()
            .filter(|(c, _)| *c >= lo && (*c < hi || (b == 4 && *c <= 1.0)))
            .collect();
        if inside.is_empty() {
            bins.push(CalibrationBin {
                lo,
                hi,
                proposals: 0,
                mean_confidence: 0.0,
                within_radius: 0.0,
            });
            continue;
        }
        let n = inside.len() as f64;
        let mean_c = inside.iter().map(|s| s.0).sum::<f64>() / n;
        let hit = inside.iter().filter(|s| s.1).count() as f64 / n;
        ece += n / samples.len().max(1) as f64 * (mean_c - hit).abs();
        bins.push(CalibrationBin {
            lo,
            hi,
            proposals: inside.len(),
            mean_confidence: mean_c,
            within_radius: hit,
        });
    }
    (bins, ece)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn logistic_fit_recovers_a_known_model() {
        // Outcomes drawn from p = sigma(-1 + 3x): the fit should land near (-1, 3).
        let truth = Logistic {
            intercept: -1.0,
            weights: vec![3.0],
        };
        let mut seed = 5u64;
        let mut samples = Vec::new();
        for i in 0..4000 {
            let x = (i % 100) as f64 / 50.0 - 1.0;
            seed = seed.wrapping_mul(6364136223846793005).wrapping_add(1);
            let u = (seed >> 11) as f64 / (1u64 << 53) as f64;
            samples.push((vec![x], u < truth.probability(&[x])));
        }
        let fit = Logistic::fit(&samples, 0.0).unwrap();
        assert!(
            (fit.intercept + 1.0).abs() < 0.2 && (fit.weights[0] - 3.0).abs() < 0.4,
            "{fit:?}"
        );
        assert!(Logistic::fit(&[(vec![1.0], true)], 1.0).is_none());
    }

    #[test]
    fn table_bins_and_error() {
        let s = vec![
            (0.1, false),
            (0.15, false),
            (0.9, true),
            (0.95, true),
            (0.85, false),
        ];
        let (bins, ece) = calibration_table(&s);
        assert_eq!(bins[0].proposals, 2);
        assert_eq!(bins[4].proposals, 3);
        assert!((bins[4].within_radius - 2.0 / 3.0).abs() < 1e-9);
        assert!(ece > 0.0 && ece < 0.3);
    }
}
