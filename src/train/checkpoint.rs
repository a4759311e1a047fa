//! Training checkpoints: everything a run needs to continue exactly where it stopped — the trained
//! tensors, the optimiser's momentum buffers, the random generator's state, the step and the
//! losses so far — so that a run stopped (Ctrl-C, a closed app, a crash) and started again with
//! the same command gives the same model as one that never stopped.
//!
//! A checkpoint is a folder: `state.json` and `tensors.safetensors` (f32, exact). It is keyed by a
//! fingerprint of what defines the run (model weights, training images and their places, every
//! option but the step and time bounds), so a changed command starts afresh instead of mixing two
//! runs. Both files are written to temporaries and renamed, `state.json` last: a crash while
//! saving leaves the previous checkpoint whole.

use std::collections::HashMap;
use std::path::{Path, PathBuf};

use candle_core::{DType, Device, Tensor};
use serde::{Deserialize, Serialize};

use crate::error::{Error, IoContext, Result};

const STATE_FILE: &str = "state.json";
const TENSORS_FILE: &str = "tensors.safetensors";
const FORMAT: u32 = 1;
/// Prefix of the momentum buffers among the saved tensors.
const VELOCITY: &str = "velocity/";
/// Prefix of the trained tensors.
const PARAM: &str = "param/";
/// The losses so far, f64.
const LOSSES: &str = "losses";

#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct CheckpointState {
    pub format: u32,
    pub fingerprint: String,
    /// Steps done.
    pub step: usize,
    /// The loss of every step done (kept in the tensors file, exactly: JSON's decimal text may
    /// come back one unit in the last place off).
    #[serde(skip)]
    pub losses: Vec<f64>,
    /// The random generator's state after `step` steps.
    pub rng: u64,
    /// Training seconds spent before this checkpoint (over every earlier part of the run).
    pub seconds: f64,
    pub saved_at: String,
    /// Optimiser updates made (steps where some batch had a loss; AdamW's bias correction).
    #[serde(default)]
    pub updates: u64,
}

/// A checkpoint as loaded: its state, the trained tensors and the momentum buffers by name.
pub struct Checkpoint {
    pub state: CheckpointState,
    pub params: HashMap<String, Tensor>,
    pub velocities: HashMap<String, Tensor>,
}

/// SHA-256 over the JSON of what defines a run.
pub fn fingerprint(parts: &serde_json::Value) -> String {
    use sha2::{Digest, Sha256};
    crate::model::hex(&Sha256::digest(parts.to_string().as_bytes()))
}

/// The checkpoint folder of a run with `fingerprint` under `root`.
pub fn folder(root: &Path, fingerprint: &str) -> PathBuf {
    root.join(&fingerprint[..16.min(fingerprint.len())])
}

fn write_atomically(path: &Path, write: impl FnOnce(&Path) -> Result<()>) -> Result<()> {
    let tmp = path.with_extension("partial");
    write(&tmp)?;
    std::fs::File::open(&tmp)
        .and_then(|f| f.sync_all())
        .at(&tmp)?;
    std::fs::rename(&tmp, path).at(path)
}

/// Saves a checkpoint into `dir` (created if needed), replacing the one there.
pub fn save(
    dir: &Path,
    state: &CheckpointState,
    params: &[(String, Tensor)],
    velocities: &[(String, Tensor)],
) -> Result<()> {
    std::fs::create_dir_all(dir).at(dir)?;
    let mut tensors = HashMap::new();
    for (name, t) in params {
        tensors.insert(
            format!("{PARAM}{name}"),
            t.to_dtype(DType::F32)?.contiguous()?,
        );
    }
    for (name, t) in velocities {
        tensors.insert(
            format!("{VELOCITY}{name}"),
            t.to_dtype(DType::F32)?.contiguous()?,
        );
    }
    tensors.insert(
        LOSSES.to_string(),
        Tensor::new(state.losses.as_slice(), &Device::Cpu)?,
    );
    write_atomically(&dir.join(TENSORS_FILE), |tmp| {
        candle_core::safetensors::save(&tensors, tmp).map_err(|e| Error::ModelFile {
            path: tmp.to_path_buf(),
            reason: e.to_string(),
        })
    })?;
    let text = serde_json::to_string_pretty(state).expect("a checkpoint state serialises");
    write_atomically(&dir.join(STATE_FILE), |tmp| {
        std::fs::write(tmp, text).at(tmp)
    })
}

/// Loads the checkpoint in `dir` if there is one for this fingerprint. A folder without a
/// checkpoint is `None`; one that cannot be read, or that belongs to another run, is an error
/// naming the file and the reason (nothing is deleted: the user decides, e.g. with `--fresh`).
pub fn load(dir: &Path, fingerprint: &str) -> Result<Option<Checkpoint>> {
    let state_path = dir.join(STATE_FILE);
    if !state_path.exists() {
        return Ok(None);
    }
    let text = std::fs::read_to_string(&state_path).at(&state_path)?;
    let mut state: CheckpointState = serde_json::from_str(&text).map_err(|e| Error::ModelFile {
        path: state_path.clone(),
        reason: format!("not a training checkpoint: {e}"),
    })?;
    if state.format != FORMAT || state.fingerprint != fingerprint {
        return Err(Error::ModelFile {
            path: state_path,
            reason:
                "this checkpoint belongs to another training run (other model, images or options)"
                    .into(),
        });
    }
    let tensors_path = dir.join(TENSORS_FILE);
    let tensors = candle_core::safetensors::load(&tensors_path, &Device::Cpu).map_err(|e| {
        Error::ModelFile {
            path: tensors_path.clone(),
            reason: e.to_string(),
        }
    })?;
    let mut params = HashMap::new();
    let mut velocities = HashMap::new();
    for (name, t) in tensors {
        if name == LOSSES {
            state.losses = t.to_vec1()?;
        } else if let Some(n) = name.strip_prefix(PARAM) {
            params.insert(n.to_string(), t);
        } else if let Some(n) = name.strip_prefix(VELOCITY) {
            velocities.insert(n.to_string(), t);
        }
    }
    if state.losses.len() != state.step {
        return Err(Error::ModelFile {
            path: tensors_path,
            reason: format!(
                "damaged checkpoint: {} losses for {} steps",
                state.losses.len(),
                state.step
            ),
        });
    }
    Ok(Some(Checkpoint {
        state,
        params,
        velocities,
    }))
}

/// Removes a finished run's checkpoint.
pub fn remove(dir: &Path) -> Result<()> {
    match std::fs::remove_dir_all(dir) {
        Err(e) if e.kind() != std::io::ErrorKind::NotFound => Err(Error::io(dir, e)),
        _ => Ok(()),
    }
}

impl CheckpointState {
    pub fn new(fingerprint: &str, step: usize, losses: &[f64], rng: u64, seconds: f64) -> Self {
        CheckpointState {
            format: FORMAT,
            fingerprint: fingerprint.to_string(),
            step,
            losses: losses.to_vec(),
            rng,
            seconds,
            saved_at: chrono::Utc::now().to_rfc3339(),
            updates: 0,
        }
    }
}

/// The loss curve as a small standalone SVG (steps on x, loss on y, a moving average over the raw
/// values), for the report and the app.
pub fn loss_curve_svg(losses: &[f64]) -> String {
    let (w, h, pad) = (640.0, 240.0, 32.0);
    let max = losses.iter().cloned().fold(0.0f64, f64::max).max(1e-9);
    let n = losses.len().max(2) as f64 - 1.0;
    let point = |i: usize, v: f64| {
        (
            pad + (w - 2.0 * pad) * i as f64 / n,
            h - pad - (h - 2.0 * pad) * v / max,
        )
    };
    let polyline = |values: &[f64]| -> String {
        values
            .iter()
            .enumerate()
            .map(|(i, &v)| {
                let (x, y) = point(i, v);
                format!("{x:.1},{y:.1}")
            })
            .collect::<Vec<_>>()
            .join(" ")
    };
    let window = (losses.len() / 20).max(1);
    let smooth: Vec<f64> = (0..losses.len())
        .map(|i| {
            let lo = i.saturating_sub(window - 1);
            losses[lo..=i].iter().sum::<f64>() / (i - lo + 1) as f64
        })
        .collect();
    format!(
        r##"<svg xmlns="http://www.w3.org/2000/svg" width="{w}" height="{h}" viewBox="0 0 {w} {h}" font-family="sans-serif" font-size="11">
<rect width="{w}" height="{h}" fill="#fff"/>
<line x1="{pad}" y1="{b}" x2="{r}" y2="{b}" stroke="#888"/>
<line x1="{pad}" y1="{pad}" x2="{pad}" y2="{b}" stroke="#888"/>
<text x="{pad}" y="{t}">loss (max {max:.3})</text>
<text x="{r}" y="{bl}" text-anchor="end">step {steps}</text>
<polyline fill="none" stroke="#9ab" stroke-width="1" points="{raw}"/>
<polyline fill="none" stroke="#c33" stroke-width="2" points="{avg}"/>
</svg>
"##,
        b = h - pad,
        r = w - pad,
        t = pad - 8.0,
        bl = h - pad + 16.0,
        steps = losses.len(),
        raw = polyline(losses),
        avg = polyline(&smooth),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_checkpoint_round_trips_exactly_and_refuses_another_run() {
        let dir = tempfile::tempdir().unwrap();
        let w = Tensor::new(&[[0.1f32, -2.5e-7], [3.0, 1e30]], &Device::Cpu).unwrap();
        let v = Tensor::new(&[1.5f32, -0.25], &Device::Cpu).unwrap();
        // Losses whose shortest decimal text JSON may read back one unit in the last place off.
        let losses = [0.094_219_326_972_961_44, 0.1, 1.0 / 3.0];
        let state = CheckpointState::new("abc", 3, &losses, 0xdead_beef, 12.5);
        save(
            dir.path(),
            &state,
            &[("w".into(), w.clone())],
            &[("w".into(), v.clone())],
        )
        .unwrap();
        let back = load(dir.path(), "abc").unwrap().unwrap();
        assert_eq!(back.state, state);
        assert_eq!(back.state.losses, losses);
        let got: Vec<Vec<f32>> = back.params["w"].to_vec2().unwrap();
        assert_eq!(got, w.to_vec2::<f32>().unwrap());
        assert_eq!(
            back.velocities["w"].to_vec1::<f32>().unwrap(),
            vec![1.5, -0.25]
        );
        // Another run's command must not continue this one.
        let err = load(dir.path(), "other").err().unwrap().to_string();
        assert!(
            err.contains("state.json") && err.contains("another training run"),
            "{err}"
        );
        // No checkpoint: nothing to resume. A damaged one: an error naming the file.
        assert!(load(&dir.path().join("none"), "abc").unwrap().is_none());
        std::fs::write(dir.path().join(STATE_FILE), "{").unwrap();
        let err = load(dir.path(), "abc").err().unwrap().to_string();
        assert!(err.contains("not a training checkpoint"), "{err}");
        remove(dir.path()).unwrap();
        assert!(!dir.path().exists());
    }

    #[test]
    fn the_loss_curve_is_an_svg_with_a_point_per_step() {
        let svg = loss_curve_svg(&[0.3, 0.2, 0.25, 0.1]);
        assert!(svg.starts_with("<svg"));
        let raw = svg.lines().find(|l| l.contains("#9ab")).unwrap();
        assert_eq!(raw.matches(',').count(), 4);
        assert!(svg.contains("step 4"));
    }
}
