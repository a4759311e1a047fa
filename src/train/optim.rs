//! The optimisers, with per-parameter-group learning rates (Candle's own SGD has neither momentum
//! nor weight decay), and gradients accumulated over several batches.
//!
//! - SGD: Caffe's update, as the authors trained with:
//!   v = momentum * v + lr * mult * (grad + weight_decay * w);  w = w - v.
//! - AdamW (Loshchilov & Hutter): Adam's moments with bias correction, and the weight decay
//!   applied to the weight directly rather than through the gradient:
//!   w = w - lr * mult * (m_hat / (sqrt(v_hat) + eps) + weight_decay * w).

use std::collections::HashMap;

use candle_core::backprop::GradStore;
use candle_core::{Device, Result, Tensor, Var};
use serde::{Deserialize, Serialize};

pub struct Param {
    pub name: String,
    pub var: Var,
    /// Learning-rate multiplier (the paper trains CRN at 10x).
    pub lr_mult: f64,
    /// SGD: [velocity]; AdamW: [first moment, second moment]. Empty before the first update.
    state: Vec<Tensor>,
}

impl Param {
    pub fn new(name: &str, var: Var, lr_mult: f64) -> Self {
        Param {
            name: name.to_string(),
            var,
            lr_mult,
            state: Vec::new(),
        }
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Method {
    Sgd { momentum: f64 },
    AdamW { beta1: f64, beta2: f64, eps: f64 },
}

impl Method {
    pub const ADAMW: Method = Method::AdamW {
        beta1: 0.9,
        beta2: 0.999,
        eps: 1e-8,
    };
}

/// Checkpoint names of a parameter's state tensors.
fn state_names(method: &Method, name: &str) -> Vec<String> {
    match method {
        // A bare name: what checkpoints held before AdamW existed.
        Method::Sgd { .. } => vec![name.to_string()],
        Method::AdamW { .. } => vec![format!("{name}#m"), format!("{name}#v")],
    }
}

pub struct Optimizer {
    pub params: Vec<Param>,
    pub method: Method,
    pub weight_decay: f64,
    /// Updates made so far (AdamW's bias correction needs it).
    pub updates: u64,
}

impl Optimizer {
    /// SGD with momentum (the paper's).
    pub fn new(params: Vec<Param>, momentum: f64, weight_decay: f64) -> Self {
        Self::with_method(params, Method::Sgd { momentum }, weight_decay)
    }

    pub fn with_method(params: Vec<Param>, method: Method, weight_decay: f64) -> Self {
        Optimizer {
            params,
            method,
            weight_decay,
            updates: 0,
        }
    }

    /// The state buffers by checkpoint name, in RAM (what a checkpoint stores besides the
    /// weights).
    pub fn velocities(&self) -> Result<Vec<(String, Tensor)>> {
        let mut out = Vec::new();
        for p in &self.params {
            for (name, t) in state_names(&self.method, &p.name).into_iter().zip(&p.state) {
                out.push((name, t.to_device(&Device::Cpu)?));
            }
        }
        Ok(out)
    }

    /// Restores the state saved by [`Optimizer::velocities`] after `updates` updates, onto each
    /// variable's device; parameters without saved state start without.
    pub fn restore_velocities(
        &mut self,
        saved: &HashMap<String, Tensor>,
        updates: u64,
    ) -> Result<()> {
        self.updates = updates;
        for p in &mut self.params {
            let names = state_names(&self.method, &p.name);
            p.state = if names.iter().all(|n| saved.contains_key(n)) {
                names
                    .iter()
                    .map(|n| saved[n].to_device(p.var.device()))
                    .collect::<Result<_>>()?
            } else {
                Vec::new()
            };
        }
        Ok(())
    }

    /// One update with base learning rate `lr` from one batch's gradients.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        self.step_with(lr, |p| Ok(grads.get(p.var.as_tensor()).cloned()), |_| true)
    }

    /// One update with base learning rate `lr`: `grad` gives each parameter's gradient (`None`
    /// leaves it alone), and only parameters that `trains` accepts change (a training stage).
    pub fn step_with(
        &mut self,
        lr: f64,
        grad: impl Fn(&Param) -> Result<Option<Tensor>>,
        trains: impl Fn(&str) -> bool,
    ) -> Result<()> {
        self.updates += 1;
        let t = self.updates as i32;
        for p in &mut self.params {
            if !trains(&p.name) {
                continue;
            }
            let Some(g) = grad(p)? else {
                continue;
            };
            let w = p.var.as_tensor();
            let rate = lr * p.lr_mult;
            match self.method {
                Method::Sgd { momentum } => {
                    let scaled = ((g + (w * self.weight_decay)?)? * rate)?;
                    let v = match p.state.first() {
                        Some(v) => ((v * momentum)? + scaled)?,
                        None => scaled,
                    };
                    p.var.set(&(w - &v)?)?;
                    p.state = vec![v.detach()];
                }
                Method::AdamW { beta1, beta2, eps } => {
                    let (m, v) = match p.state.as_slice() {
                        [m, v] => (
                            ((m * beta1)? + (&g * (1.0 - beta1))?)?,
                            ((v * beta2)? + (g.sqr()? * (1.0 - beta2))?)?,
                        ),
                        _ => ((&g * (1.0 - beta1))?, (g.sqr()? * (1.0 - beta2))?),
                    };
                    let m_hat = (&m / (1.0 - beta1.powi(t)))?;
                    let v_hat = (&v / (1.0 - beta2.powi(t)))?;
                    let update = ((m_hat / (v_hat.sqrt()? + eps)?)? + (w * self.weight_decay)?)?;
                    p.var.set(&(w - (update * rate)?)?)?;
                    p.state = vec![m.detach(), v.detach()];
                }
            }
        }
        Ok(())
    }
}

/// Gradients summed over several batches, by parameter name: an update from their mean is the
/// update of one batch as large as all of them together (gradient accumulation).
#[derive(Default)]
pub struct Accumulated {
    sums: HashMap<String, Tensor>,
    pub batches: usize,
}

impl Accumulated {
    pub fn add(&mut self, params: &[Param], grads: &GradStore) -> Result<()> {
        for p in params {
            if let Some(g) = grads.get(p.var.as_tensor()) {
                let g = g.detach();
                let sum = match self.sums.remove(&p.name) {
                    Some(s) => (s + g)?,
                    None => g,
                };
                self.sums.insert(p.name.clone(), sum);
            }
        }
        self.batches += 1;
        Ok(())
    }

    /// The mean gradient of `p` over the batches added.
    pub fn mean(&self, p: &Param) -> Result<Option<Tensor>> {
        self.sums
            .get(&p.name)
            .map(|s| s / self.batches.max(1) as f64)
            .transpose()
    }

    /// Whether no batch brought a gradient.
    pub fn is_empty(&self) -> bool {
        self.sums.is_empty()
    }

    pub fn clear(&mut self) {
        self.sums.clear();
        self.batches = 0;
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::DType;

    fn value(var: &Var) -> f64 {
        var.as_tensor()
            .to_dtype(DType::F64)
            .unwrap()
            .to_vec1::<f64>()
            .unwrap()[0]
    }

    /// f(w) = 0.5 * w^2, whose gradient is w.
    fn half_square(var: &Var) -> GradStore {
        (var.as_tensor().sqr().unwrap() * 0.5)
            .unwrap()
            .sum_all()
            .unwrap()
            .backward()
            .unwrap()
    }

    #[test]
    fn momentum_and_weight_decay_follow_the_caffe_update() {
        // From w = 1, lr 0.1, momentum 0.9, decay 0.01, multiplier 2.
        let var = Var::from_tensor(&Tensor::new(&[1.0f64], &Device::Cpu).unwrap()).unwrap();
        let mut sgd = Optimizer::new(vec![Param::new("w", var.clone(), 2.0)], 0.9, 0.01);
        let (mut w, mut v) = (1.0f64, 0.0f64);
        for _ in 0..5 {
            sgd.step(&half_square(&var), 0.1).unwrap();
            v = 0.9 * v + 0.1 * 2.0 * (w + 0.01 * w);
            w -= v;
            let got = value(&var);
            assert!((got - w).abs() < 1e-12, "{got} vs {w}");
        }
        assert!(w.abs() < 1.0);
    }

    #[test]
    fn adamw_follows_its_update_with_bias_correction_and_decoupled_decay() {
        let var = Var::from_tensor(&Tensor::new(&[1.0f64], &Device::Cpu).unwrap()).unwrap();
        let mut adam =
            Optimizer::with_method(vec![Param::new("w", var.clone(), 2.0)], Method::ADAMW, 0.01);
        let (b1, b2, eps, lr) = (0.9f64, 0.999f64, 1e-8, 0.05);
        let (mut w, mut m, mut v) = (1.0f64, 0.0f64, 0.0f64);
        for t in 1..=6 {
            adam.step(&half_square(&var), lr).unwrap();
            let g = w;
            m = b1 * m + (1.0 - b1) * g;
            v = b2 * v + (1.0 - b2) * g * g;
            let (m_hat, v_hat) = (m / (1.0 - b1.powi(t)), v / (1.0 - b2.powi(t)));
            w -= lr * 2.0 * (m_hat / (v_hat.sqrt() + eps) + 0.01 * w);
            let got = value(&var);
            assert!((got - w).abs() < 1e-12, "step {t}: {got} vs {w}");
        }
        // The first step moves by about lr * mult whatever the gradient's scale (Adam).
        assert!(w < 1.0);
    }

    #[test]
    fn state_survives_a_checkpoint_round_trip() {
        for method in [Method::Sgd { momentum: 0.9 }, Method::ADAMW] {
            let run = |restart_after: Option<usize>| -> f64 {
                let var = Var::from_tensor(&Tensor::new(&[1.0f64], &Device::Cpu).unwrap()).unwrap();
                let mut opt =
                    Optimizer::with_method(vec![Param::new("w", var.clone(), 1.0)], method, 0.0);
                for step in 0..6 {
                    if restart_after == Some(step) {
                        let saved: HashMap<String, Tensor> =
                            opt.velocities().unwrap().into_iter().collect();
                        let updates = opt.updates;
                        opt = Optimizer::with_method(
                            vec![Param::new("w", var.clone(), 1.0)],
                            method,
                            0.0,
                        );
                        opt.restore_velocities(&saved, updates).unwrap();
                    }
                    opt.step(&half_square(&var), 0.1).unwrap();
                }
                value(&var)
            };
            assert_eq!(run(None), run(Some(3)), "{method:?}");
        }
    }

    #[test]
    fn accumulated_gradients_average_the_batches() {
        let var = Var::from_tensor(&Tensor::new(&[2.0f64, -1.0], &Device::Cpu).unwrap()).unwrap();
        let params = vec![Param::new("w", var.clone(), 1.0)];
        let mut acc = Accumulated::default();
        // Two batches with losses sum(w^2) and sum(3 w): gradients 2w and 3.
        let grads = |loss: Tensor| loss.sum_all().unwrap().backward().unwrap();
        acc.add(&params, &grads(var.as_tensor().sqr().unwrap()))
            .unwrap();
        acc.add(&params, &grads((var.as_tensor() * 3.0).unwrap()))
            .unwrap();
        let mean: Vec<f64> = acc.mean(&params[0]).unwrap().unwrap().to_vec1().unwrap();
        assert_eq!(mean, vec![(4.0 + 3.0) / 2.0, (-2.0 + 3.0) / 2.0]);
        acc.clear();
        assert!(acc.mean(&params[0]).unwrap().is_none());
    }
}
