//! The training resolution, chosen from the memory the device has free.
//!
//! A step's memory grows with the input's pixels: the activations of every image in the batch
//! (kept for the backward pass) and, in RAM, the cached conv5_3 (or pool4) features of every
//! photo. The per-pixel figures below come from `cargo bench --bench train` (peak memory of a
//! 13-image step at 224x224 and 640x480, on the CPU and on an H100; README "Measured"), rounded
//! up: at 640x480 the GPU held 3.27 GB (CRN + NetVLAD) and 6.34 GB (with conv5).

use candle_core::Device;
use serde::Serialize;

use crate::model::device::{self, DeviceMemory};

/// Long sides tried on a GPU, largest first.
const GPU_SIDES: [u32; 4] = [640, 480, 320, 224];
/// On the CPU the largest is 320: a step at 640 takes several seconds there, so the CPU trains
/// at reduced resolution unless asked otherwise.
const CPU_SIDES: [u32; 2] = [320, 224];
/// What the model, the runtime and the evaluation need whatever the input size.
const FIXED_BYTES: u64 = 600 << 20;
/// Bytes per input pixel of each image in a step: CRN + NetVLAD over frozen features, and with
/// conv5 running forward and backward too.
const STEP_BYTES_PER_PIXEL: u64 = 700;
const CONV5_STEP_BYTES_PER_PIXEL: u64 = 1500;
/// Use at most this share of what is free: the estimate is rough, and the machine has other work.
const SHARE: f64 = 0.7;

/// The chosen resolution and why.
#[derive(Debug, Clone, Serialize)]
pub struct MemoryPlan {
    pub long_side: u32,
    /// Estimated peak of training on the device (activations; the feature cache for the CPU).
    pub estimated_bytes: u64,
    /// Estimated RAM for the feature cache when training on a GPU.
    pub cache_bytes: u64,
    /// What the device had free when the plan was made (`None` when it could not be read).
    pub memory: Option<DeviceMemory>,
    /// Whether `long_side` was asked for rather than chosen.
    pub requested: bool,
    /// A warning when the plan may not fit.
    pub warning: Option<String>,
}

/// Estimated bytes of one configuration: (on the device, cache in RAM). Inputs are assumed 4:3,
/// the usual photo shape.
pub fn estimate(long_side: u32, images_per_step: usize, photos: usize, conv5: bool) -> (u64, u64) {
    let pixels = long_side as u64 * (long_side as u64 * 3 / 4);
    let per_pixel = if conv5 {
        CONV5_STEP_BYTES_PER_PIXEL
    } else {
        STEP_BYTES_PER_PIXEL
    };
    let step = FIXED_BYTES + images_per_step as u64 * pixels * per_pixel;
    // 512 channels of f32 at 1/16 of each side.
    let cache = photos as u64 * 512 * 4 * (pixels / 256);
    (step, cache)
}

/// Picks the largest long side whose estimate fits in the free memory of `device` (a GPU's own
/// memory for the step and RAM for the feature cache; RAM for both on the CPU). A requested
/// side is kept, with a warning when it may not fit.
pub fn plan(
    device: &Device,
    requested: Option<u32>,
    images_per_step: usize,
    photos: usize,
    conv5: bool,
) -> MemoryPlan {
    let on_gpu = !matches!(device, Device::Cpu);
    let memory = device::memory(device);
    let ram = if on_gpu { device::ram() } else { memory };
    let fits = |side: u32| -> bool {
        let (step, cache) = estimate(side, images_per_step, photos, conv5);
        let budget = |m: Option<DeviceMemory>| m.map(|m| m.available_bytes as f64 * SHARE);
        match (on_gpu, budget(memory), budget(ram)) {
            (true, device_free, ram_free) => {
                device_free.is_none_or(|f| step as f64 <= f)
                    && ram_free.is_none_or(|f| cache as f64 <= f)
            }
            (false, free, _) => free.is_none_or(|f| (step + cache) as f64 <= f),
        }
    };
    let sides: &[u32] = if on_gpu { &GPU_SIDES } else { &CPU_SIDES };
    let (long_side, requested_side) = match requested {
        Some(side) => (side, true),
        None => (
            sides
                .iter()
                .copied()
                .find(|&s| fits(s))
                .unwrap_or(*sides.last().unwrap()),
            false,
        ),
    };
    let (step, cache) = estimate(long_side, images_per_step, photos, conv5);
    let warning = (!fits(long_side)).then(|| {
        let free = memory
            .map(|m| format!("{:.1} GB of {} free", gb(m.available_bytes), m.kind))
            .unwrap_or_else(|| "unknown free memory".into());
        format!(
            "training at a long side of {long_side} px needs about {:.1} GB{} and this machine has {free}: it may run out of memory ({})",
            gb(step),
            if on_gpu {
                format!(" on the GPU and {:.1} GB of RAM", gb(cache))
            } else {
                String::new()
            },
            if requested_side {
                "a smaller --long-side would fit"
            } else {
                "even the smallest size is over the budget"
            }
        )
    });
    MemoryPlan {
        long_side,
        estimated_bytes: if on_gpu { step } else { step + cache },
        cache_bytes: cache,
        memory,
        requested: requested_side,
        warning,
    }
}

fn gb(bytes: u64) -> f64 {
    bytes as f64 / 1e9
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn estimates_grow_with_the_input_and_with_conv5() {
        let small = estimate(224, 13, 100, false);
        let large = estimate(640, 13, 100, false);
        assert!(large.0 > small.0 && large.1 > small.1);
        assert!(estimate(640, 13, 100, true).0 > large.0);
        // The bench's measured peaks (README): 0.88 GB at 224x224 and 2.8 GB at 640x480 for a
        // 13-image step; the estimate must not be below them (24 cached frames there).
        assert!(estimate(224, 13, 24, false).0 as f64 >= 0.88e9 * 0.95);
        assert!(estimate(640, 13, 24, false).0 as f64 >= 2.8e9 * 0.95);
        // And on an H100 at 640x480: 3.27 GB, and 6.34 GB with conv5.
        assert!(estimate(640, 13, 24, false).0 as f64 >= 3.27e9 * 0.95);
        assert!(estimate(640, 13, 24, true).0 as f64 >= 6.34e9 * 0.95);
    }

    #[test]
    fn the_cpu_trains_at_reduced_resolution_and_a_request_is_kept() {
        let plan = plan(&Device::Cpu, None, 13, 50, false);
        assert!(CPU_SIDES.contains(&plan.long_side));
        assert!(plan.memory.is_some(), "this machine's RAM is readable");
        assert!(!plan.requested);
        let asked = super::plan(&Device::Cpu, Some(480), 13, 50, false);
        assert_eq!(asked.long_side, 480);
        assert!(asked.requested);
    }

    #[test]
    fn a_request_beyond_the_memory_is_warned_about() {
        // 100,000 photos at 4096 px cannot be cached in any test machine's RAM.
        let plan = plan(&Device::Cpu, Some(4096), 13, 100_000, true);
        assert_eq!(plan.long_side, 4096);
        let w = plan.warning.expect("a warning");
        assert!(w.contains("4096") && w.contains("--long-side"), "{w}");
    }
}
