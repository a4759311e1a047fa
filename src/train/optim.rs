//! SGD with momentum and weight decay, per-parameter-group learning rates (Candle's own SGD has
//! neither momentum nor weight decay). Caffe's update, as the authors trained with:
//! v = momentum * v + lr * mult * (grad + weight_decay * w);  w = w - v.

use candle_core::backprop::GradStore;
use candle_core::{Result, Tensor, Var};

pub struct Param {
    pub name: String,
    pub var: Var,
    /// Learning-rate multiplier (the paper trains CRN at 10x).
    pub lr_mult: f64,
    velocity: Option<Tensor>,
}

impl Param {
    pub fn new(name: &str, var: Var, lr_mult: f64) -> Self {
        Param {
            name: name.to_string(),
            var,
            lr_mult,
            velocity: None,
        }
    }
}

pub struct Sgd {
    pub params: Vec<Param>,
    pub momentum: f64,
    pub weight_decay: f64,
}

impl Sgd {
    pub fn new(params: Vec<Param>, momentum: f64, weight_decay: f64) -> Self {
        Sgd {
            params,
            momentum,
            weight_decay,
        }
    }

    /// The momentum buffers by parameter name (what a checkpoint stores besides the weights).
    pub fn velocities(&self) -> Vec<(String, Tensor)> {
        self.params
            .iter()
            .filter_map(|p| p.velocity.as_ref().map(|v| (p.name.clone(), v.clone())))
            .collect()
    }

    /// Restores momentum buffers saved by [`Sgd::velocities`]; parameters not named keep none.
    pub fn restore_velocities(&mut self, saved: &std::collections::HashMap<String, Tensor>) {
        for p in &mut self.params {
            p.velocity = saved.get(&p.name).cloned();
        }
    }

    /// One update with base learning rate `lr`. Parameters without a gradient are left alone.
    pub fn step(&mut self, grads: &GradStore, lr: f64) -> Result<()> {
        for p in &mut self.params {
            let Some(g) = grads.get(p.var.as_tensor()) else {
                continue;
            };
            let w = p.var.as_tensor();
            let g = (g + (w * self.weight_decay)?)?;
            let scaled = (g * (lr * p.lr_mult))?;
            let v = match &p.velocity {
                Some(v) => ((v * self.momentum)? + scaled)?,
                None => scaled,
            };
            p.var.set(&(w - &v)?)?;
            p.velocity = Some(v.detach());
        }
        Ok(())
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use candle_core::{DType, Device};

    #[test]
    fn momentum_and_weight_decay_follow_the_caffe_update() {
        // f(w) = 0.5 * w^2 (gradient w), from w = 1, lr 0.1, momentum 0.9, decay 0.01.
        let var = Var::from_tensor(&Tensor::new(&[1.0f64], &Device::Cpu).unwrap()).unwrap();
        let mut sgd = Sgd::new(vec![Param::new("w", var.clone(), 2.0)], 0.9, 0.01);
        let (mut w, mut v) = (1.0f64, 0.0f64);
        for _ in 0..5 {
            let loss = (var.as_tensor().sqr().unwrap() * 0.5)
                .unwrap()
                .sum_all()
                .unwrap();
            sgd.step(&loss.backward().unwrap(), 0.1).unwrap();
            v = 0.9 * v + 0.1 * 2.0 * (w + 0.01 * w);
            w -= v;
            let got = var
                .as_tensor()
                .to_dtype(DType::F64)
                .unwrap()
                .to_vec1::<f64>()
                .unwrap()[0];
            assert!((got - w).abs() < 1e-12, "{got} vs {w}");
        }
        assert!(w.abs() < 1.0);
    }
}
