//! Choosing the compute device: the one place that knows which backends were compiled in.

use candle_core::Device;
use serde::Serialize;

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Default)]
pub enum DeviceChoice {
    /// The GPU when one was compiled in and is present, else the CPU.
    #[default]
    Auto,
    Cpu,
    Cuda,
    Metal,
}

impl std::str::FromStr for DeviceChoice {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        Ok(match s {
            "auto" => DeviceChoice::Auto,
            "cpu" => DeviceChoice::Cpu,
            "cuda" => DeviceChoice::Cuda,
            "metal" => DeviceChoice::Metal,
            other => {
                return Err(Error::invalid(format!(
                    "unknown device {other:?}: use auto, cpu, cuda or metal"
                )))
            }
        })
    }
}

/// What this build can use, for `pinpoint model info` and the settings screen.
#[derive(Debug, Clone, Serialize)]
pub struct DeviceReport {
    pub compiled: Vec<&'static str>,
    pub cuda_available: bool,
    pub metal_available: bool,
    pub auto_picks: String,
}

pub fn select(choice: DeviceChoice) -> Result<Device> {
    match choice {
        DeviceChoice::Cpu => Ok(Device::Cpu),
        DeviceChoice::Cuda => {
            if !candle_core::utils::cuda_is_available() {
                return Err(Error::invalid(
                    "this build has no CUDA support (build with --features cuda)",
                ));
            }
            Device::new_cuda(0).map_err(|e| Error::invalid(format!("no usable CUDA device: {e}")))
        }
        DeviceChoice::Metal => {
            if !candle_core::utils::metal_is_available() {
                return Err(Error::invalid(
                    "this build has no Metal support (build with --features metal)",
                ));
            }
            Device::new_metal(0).map_err(|e| Error::invalid(format!("no usable Metal device: {e}")))
        }
        DeviceChoice::Auto => {
            if candle_core::utils::cuda_is_available() {
                if let Ok(d) = Device::new_cuda(0) {
                    return Ok(d);
                }
            }
            if candle_core::utils::metal_is_available() {
                if let Ok(d) = Device::new_metal(0) {
                    return Ok(d);
                }
            }
            Ok(Device::Cpu)
        }
    }
}

pub fn describe_device(d: &Device) -> String {
    match d {
        Device::Cpu => format!(
            "cpu ({} threads{})",
            std::thread::available_parallelism()
                .map(|n| n.get())
                .unwrap_or(1),
            if candle_core::utils::with_avx() {
                ", avx"
            } else {
                ""
            }
        ),
        Device::Cuda(_) => "cuda:0".to_string(),
        Device::Metal(_) => "metal:0".to_string(),
    }
}

pub fn report() -> DeviceReport {
    let mut compiled = vec!["cpu"];
    if cfg!(feature = "cuda") {
        compiled.push("cuda");
    }
    if cfg!(feature = "metal") {
        compiled.push("metal");
    }
    let cuda_available = candle_core::utils::cuda_is_available() && Device::new_cuda(0).is_ok();
    let metal_available = candle_core::utils::metal_is_available() && Device::new_metal(0).is_ok();
    let auto_picks = select(DeviceChoice::Auto)
        .map(|d| describe_device(&d))
        .unwrap_or_else(|e| e.to_string());
    DeviceReport {
        compiled,
        cuda_available,
        metal_available,
        auto_picks,
    }
}

/// Memory a computation on `device` can use, in bytes.
#[derive(Debug, Clone, Copy, PartialEq, Serialize)]
pub struct DeviceMemory {
    pub available_bytes: u64,
    pub total_bytes: u64,
    /// Where the figures come from ("RAM" or "GPU").
    pub kind: &'static str,
}

/// What `device` has free now: the GPU's own memory for CUDA (from the driver), else the
/// machine's RAM (`MemAvailable`, which counts reclaimable caches; Metal shares it). `None` when
/// it cannot be read.
pub fn memory(device: &Device) -> Option<DeviceMemory> {
    match device {
        #[cfg(feature = "cuda")]
        Device::Cuda(d) => {
            let (free, total) = d.cuda_stream().context().mem_get_info().ok()?;
            Some(DeviceMemory {
                available_bytes: free as u64,
                total_bytes: total as u64,
                kind: "GPU",
            })
        }
        _ => ram(),
    }
}

/// The machine's RAM from /proc/meminfo.
pub fn ram() -> Option<DeviceMemory> {
    let text = std::fs::read_to_string("/proc/meminfo").ok()?;
    let field = |name: &str| -> Option<u64> {
        let line = text.lines().find(|l| l.starts_with(name))?;
        let kb: u64 = line[name.len()..]
            .trim()
            .trim_start_matches(':')
            .split_whitespace()
            .next()?
            .parse()
            .ok()?;
        Some(kb * 1024)
    };
    Some(DeviceMemory {
        available_bytes: field("MemAvailable")?,
        total_bytes: field("MemTotal")?,
        kind: "RAM",
    })
}
