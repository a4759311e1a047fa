//! Shared by the benchmarks: arguments, synthetic descriptor-like vectors and memory readings.
#![allow(dead_code)]

pub struct Rng(pub u64);
impl Rng {
    pub fn next(&mut self) -> u64 {
        self.0 = self.0.wrapping_add(0x9E37_79B9_7F4A_7C15);
        let mut z = self.0;
        z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
        z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
        z ^ (z >> 31)
    }
    pub fn uniform(&mut self) -> f32 {
        (self.next() >> 40) as f32 / (1u64 << 24) as f32
    }
    pub fn gauss(&mut self) -> f32 {
        let (u, v) = (self.uniform().max(1e-7), self.uniform());
        (-2.0 * u.ln()).sqrt() * (std::f32::consts::TAU * v).cos()
    }
}

pub fn unit(mut v: Vec<f32>) -> Vec<f32> {
    pinpoint::index::normalize(&mut v);
    v
}

/// `n` database vectors and `q` queries (queries are perturbed copies of database points' cluster
/// mates, so that true neighbours exist).
pub fn vectors(
    kind: &str,
    n: usize,
    q: usize,
    dim: usize,
    seed: u64,
) -> (Vec<Vec<f32>>, Vec<Vec<f32>>) {
    let mut rng = Rng(seed);
    if kind == "uniform" {
        let db = (0..n)
            .map(|_| unit((0..dim).map(|_| rng.gauss()).collect()))
            .collect();
        let qs = (0..q)
            .map(|_| unit((0..dim).map(|_| rng.gauss()).collect()))
            .collect();
        return (db, qs);
    }
    let sub = 64;
    let basis: Vec<Vec<f32>> = (0..sub)
        .map(|_| unit((0..dim).map(|_| rng.gauss()).collect()))
        .collect();
    let centres: Vec<Vec<f32>> = (0..2000)
        .map(|_| (0..sub).map(|_| rng.gauss()).collect())
        .collect();
    let point = |rng: &mut Rng, spread: f32| {
        let c = &centres[(rng.next() % centres.len() as u64) as usize];
        let coeffs: Vec<f32> = c.iter().map(|x| x + spread * rng.gauss()).collect();
        let mut v = vec![0f32; dim];
        for (b, a) in basis.iter().zip(&coeffs) {
            for (vi, bi) in v.iter_mut().zip(b) {
                *vi += a * bi;
            }
        }
        for vi in v.iter_mut() {
            *vi += 0.05 * rng.gauss();
        }
        unit(v)
    };
    let db = (0..n).map(|_| point(&mut rng, 0.5)).collect();
    let qs = (0..q).map(|_| point(&mut rng, 0.5)).collect();
    (db, qs)
}

/// The value after `name` on the command line (`--steps 5`).
pub fn arg(name: &str) -> Option<String> {
    let args: Vec<String> = std::env::args().collect();
    args.iter()
        .position(|a| a == name)
        .and_then(|i| args.get(i + 1))
        .cloned()
}

pub fn rss_mb() -> f64 {
    status_mb("VmRSS")
}

/// The process's peak resident memory so far, in MB.
pub fn peak_rss_mb() -> f64 {
    status_mb("VmHWM")
}

/// A field of /proc/self/status ("VmRSS", "VmHWM", "RssAnon", "RssFile"), in MB.
pub fn status_mb(field: &str) -> f64 {
    std::fs::read_to_string("/proc/self/status")
        .unwrap_or_default()
        .lines()
        .find(|l| l.starts_with(&format!("{field}:")))
        .and_then(|l| l.split_whitespace().nth(1))
        .and_then(|v| v.parse::<f64>().ok())
        .unwrap_or(0.0)
        / 1024.0
}

/// The IE-tower sample's frames, read from its `dataset.csv` by column name: (path, floor,
/// whether the frame is a query).
pub fn ie_tower_frames(root: &std::path::Path) -> Vec<(std::path::PathBuf, String, bool)> {
    #[derive(serde::Deserialize)]
    struct Row {
        image_path: String,
        label: String,
        split: String,
    }
    csv::Reader::from_path(root.join("dataset.csv"))
        .expect("IE-tower sample")
        .deserialize::<Row>()
        .map(|r| {
            let r = r.expect("a dataset.csv row");
            (
                root.join("data").join(r.image_path),
                r.label,
                r.split == "query",
            )
        })
        .collect()
}
