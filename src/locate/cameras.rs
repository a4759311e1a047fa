//! Camera clocks, read from what the photos show.
//!
//! A photographer carries a camera without GPS and a phone with it; the camera's clock is off by
//! minutes, or by a time zone. Where a photo of that camera and a GPS-tagged photo of another
//! camera show the same scene (re-ranked retrieval and geometric verification,
//! [`super::rerank`]), both were most likely taken at about the same moment, and the difference of
//! their capture times is one reading of the camera's clock error. The estimate is the median of
//! those readings, with its spread (the median absolute deviation) and the pairs as evidence; a
//! pair taken on another day is one outlier among many. With an offset known — estimated, or
//! set by the user — the camera's photos are placed by time along the tagged photos of the other
//! cameras (as along a GPX track), and GPX correlation uses the same offset.
//!
//! Offsets are stored in the catalog's `cameras.clocks` setting:
//! `{camera: {"offset_s", "spread_s", "source": "estimated"|"set", "pairs": [...]}}`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};

use super::rerank::{RerankStats, Reranker};
use super::visual::Match;
use super::{LocateOptions, Locator};
use crate::catalog::{Catalog, PhotoFilter, PhotoRecord};
use crate::error::{Error, Result};
use crate::library::{CaptureTime, LocationSource};
use crate::progress::{CancelToken, ProgressMeter, ProgressSink};

const SETTING: &str = "cameras.clocks";

/// A camera's name as Pinpoint groups photos: make and model (or whichever is known).
pub fn camera_of(photo: &PhotoRecord) -> Option<String> {
    match (&photo.make, &photo.model) {
        (Some(a), Some(b)) if b.starts_with(a.as_str()) => Some(b.clone()),
        (Some(a), Some(b)) => Some(format!("{a} {b}")),
        (a, b) => a.clone().or(b.clone()),
    }
}

/// One reading of a camera's clock: a photo of it and a GPS-tagged photo of another camera that
/// show the same scene.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct ClockPair {
    /// The camera's photo (path).
    pub photo: String,
    /// The tagged photo it was verified against (path).
    pub reference: String,
    /// The reference's capture time minus the photo's: what this pair says to add to the clock.
    pub seconds: f64,
    /// Inliers of the geometric verification.
    #[serde(default)]
    pub inliers: u32,
}

#[derive(Debug, Clone, Copy, Serialize, Deserialize, PartialEq, Eq)]
#[serde(rename_all = "lowercase")]
pub enum OffsetSource {
    /// From visually verified pairs.
    Estimated,
    /// Confirmed or entered by the user.
    Set,
}

/// A stored clock offset.
#[derive(Debug, Clone, Serialize, Deserialize, PartialEq)]
pub struct StoredClock {
    pub offset_s: f64,
    pub spread_s: Option<f64>,
    pub source: OffsetSource,
    #[serde(default)]
    pub pairs: Vec<ClockPair>,
}

/// A camera of the library, as `pinpoint cameras` lists it.
#[derive(Debug, Clone, Serialize)]
pub struct CameraClock {
    pub camera: String,
    pub photos: usize,
    /// Photos with a location.
    pub tagged: usize,
    /// What to add to the camera's clock to get the true time; null without an estimate.
    pub offset_s: Option<f64>,
    pub spread_s: Option<f64>,
    pub pairs: Vec<ClockPair>,
    pub source: Option<OffsetSource>,
    /// Why there is no estimate, or that none is needed.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub note: Option<String>,
}

/// The offsets stored in the catalog, by camera.
pub fn stored_offsets(catalog: &Catalog) -> Result<HashMap<String, StoredClock>> {
    Ok(catalog
        .setting(SETTING)?
        .and_then(|v| serde_json::from_value(v).ok())
        .unwrap_or_default())
}

fn save(catalog: &Catalog, clocks: &HashMap<String, StoredClock>) -> Result<()> {
    catalog.set_setting(SETTING, &serde_json::to_value(clocks).expect("serialises"))
}

/// Confirms or overrides a camera's offset (`None` removes what was set, so that the estimate
/// applies again).
pub fn set_offset(catalog: &Catalog, camera: &str, offset_s: Option<f64>) -> Result<()> {
    let known = catalog
        .photos(&PhotoFilter::default())?
        .iter()
        .any(|p| camera_of(p).as_deref() == Some(camera));
    if !known {
        return Err(Error::invalid(format!(
            "no photo in the catalog was taken with a camera named {camera:?} (see `pinpoint cameras`)"
        )));
    }
    let mut clocks = stored_offsets(catalog)?;
    match offset_s {
        Some(offset_s) => {
            let pairs = clocks
                .get(camera)
                .map(|c| c.pairs.clone())
                .unwrap_or_default();
            clocks.insert(
                camera.to_string(),
                StoredClock {
                    offset_s,
                    spread_s: None,
                    source: OffsetSource::Set,
                    pairs,
                },
            );
        }
        None => {
            // Only what the user set goes: an estimate stays until the next estimate.
            if clocks
                .get(camera)
                .is_some_and(|c| c.source == OffsetSource::Set)
            {
                clocks.remove(camera);
            }
        }
    }
    save(catalog, &clocks)
}

/// Every camera of the library with its photo counts and the offset stored for it (no matching:
/// what the last [`estimate`] found, or what the user set).
pub fn list(catalog: &Catalog) -> Result<Vec<CameraClock>> {
    let photos = catalog.photos(&PhotoFilter::default())?;
    let stored = stored_offsets(catalog)?;
    let mut by_camera: std::collections::BTreeMap<String, (usize, usize, bool)> =
        Default::default();
    for p in photos.iter().filter(|p| p.format.is_still()) {
        if let Some(c) = camera_of(p) {
            let e = by_camera.entry(c).or_default();
            e.0 += 1;
            e.1 += p.gps.is_some() as usize;
            e.2 |= has_own_gps(p);
        }
    }
    Ok(by_camera
        .into_iter()
        .map(|(camera, (photos, tagged, gps))| {
            let s = stored.get(&camera);
            CameraClock {
                photos,
                tagged,
                offset_s: s.map(|s| s.offset_s),
                spread_s: s.and_then(|s| s.spread_s),
                pairs: s.map(|s| s.pairs.clone()).unwrap_or_default(),
                source: s.map(|s| s.source),
                note: match (gps, s) {
                    (true, _) => Some("records GPS: its photos are the references".into()),
                    (false, None) => Some("no clock offset estimated yet".into()),
                    _ => None,
                },
                camera,
            }
        })
        .collect())
}

/// Whether a photo's position came from its own file: its camera records GPS.
fn has_own_gps(p: &PhotoRecord) -> bool {
    p.gps.is_some() && p.gps_source == Some(LocationSource::Exif)
}

/// Seconds from `a` to `b`: in UTC when both record their offset, else on their wall clocks.
fn seconds_between(a: &CaptureTime, b: &CaptureTime) -> f64 {
    match (a.utc(), b.utc()) {
        (Some(x), Some(y)) => (y - x).as_seconds_f64(),
        _ => (b.local - a.local).as_seconds_f64(),
    }
}

/// Least verified pairs an estimate rests on.
pub const MIN_PAIRS: usize = 1;

/// Estimates the clock offset of every camera without GPS from visually verified pairs with the
/// GPS-tagged photos of other cameras, stores the estimates (an offset the user set is kept), and
/// lists every camera.
pub fn estimate(
    catalog: &Catalog,
    model_hash: &str,
    reranker: &Reranker,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<Vec<CameraClock>> {
    let photos = catalog.photos(&PhotoFilter::default())?;
    let descriptors: HashMap<i64, Vec<f32>> =
        catalog.descriptors(model_hash)?.into_iter().collect();
    let mut by_camera: HashMap<String, Vec<&PhotoRecord>> = HashMap::new();
    for p in photos.iter().filter(|p| p.format.is_still()) {
        if let Some(c) = camera_of(p) {
            by_camera.entry(c).or_default().push(p);
        }
    }
    let with_gps: std::collections::HashSet<&str> = by_camera
        .iter()
        .filter(|(_, ps)| ps.iter().any(|p| has_own_gps(p)))
        .map(|(c, _)| c.as_str())
        .collect();
    let by_id: HashMap<i64, &PhotoRecord> = photos.iter().map(|p| (p.id, p)).collect();
    let locator = Locator::new(catalog, model_hash, Vec::new(), LocateOptions::default())?;
    let mut stored = stored_offsets(catalog)?;
    let mut cameras: Vec<&String> = by_camera.keys().collect();
    cameras.sort();
    let todo: usize = cameras
        .iter()
        .filter(|c| !with_gps.contains(c.as_str()))
        .map(|c| by_camera[*c].len())
        .sum();
    let mut meter = ProgressMeter::new(progress, "cameras");
    meter.stage("matching photos across cameras", Some(todo as u64));
    let mut stats = RerankStats::default();
    let mut out = Vec::new();
    for camera in cameras {
        let list = &by_camera[camera];
        let mut row = CameraClock {
            camera: camera.clone(),
            photos: list.len(),
            tagged: list.iter().filter(|p| p.gps.is_some()).count(),
            offset_s: None,
            spread_s: None,
            pairs: Vec::new(),
            source: None,
            note: None,
        };
        if with_gps.contains(camera.as_str()) {
            row.note = Some("records GPS: its photos are the references".into());
            out.push(row);
            continue;
        }
        let mut pairs = Vec::new();
        for p in list {
            cancel.check()?;
            meter.advance(1);
            let (Some(taken), Some(d)) = (&p.taken_at, descriptors.get(&p.id)) else {
                continue;
            };
            // References: tagged photos of GPS cameras, with a capture time.
            let skip = |_: usize, r: &super::references::RefInfo| {
                let Some(rp) = r.photo_id.and_then(|id| by_id.get(&id)) else {
                    return true;
                };
                rp.taken_at.is_none()
                    || !camera_of(rp).is_some_and(|c| c != *camera && with_gps.contains(c.as_str()))
            };
            let mut m: Vec<Match> = locator.matches(std::slice::from_ref(d), &skip).remove(0);
            reranker.check(catalog, p, &mut m, &mut stats)?;
            for hit in m.iter().filter(|m| m.inliers.is_some_and(|n| n > 0)) {
                let r = by_id[&hit.reference.photo_id.expect("a library photo")];
                pairs.push(ClockPair {
                    photo: p.path.display().to_string(),
                    reference: r.path.display().to_string(),
                    seconds: seconds_between(taken, r.taken_at.as_ref().expect("checked")),
                    inliers: hit.inliers.unwrap_or(0),
                });
            }
        }
        let estimate = robust_offset(&pairs);
        match (&estimate, stored.get(camera)) {
            (_, Some(set)) if set.source == OffsetSource::Set => {
                row.offset_s = Some(set.offset_s);
                row.source = Some(OffsetSource::Set);
                row.note = estimate.map(|(o, s)| {
                    format!("set by you; the photos suggest {o:+.0} s (spread {s:.0} s)")
                });
            }
            (Some((offset, spread)), _) => {
                row.offset_s = Some(*offset);
                row.spread_s = Some(*spread);
                row.source = Some(OffsetSource::Estimated);
                stored.insert(
                    camera.clone(),
                    StoredClock {
                        offset_s: *offset,
                        spread_s: Some(*spread),
                        source: OffsetSource::Estimated,
                        pairs: pairs.clone(),
                    },
                );
            }
            (None, _) => {
                stored.remove(camera);
                row.note = Some(if with_gps.is_empty() {
                    "no camera in the library records GPS: there is no clock to compare with".into()
                } else {
                    "no photo of this camera shows the same scene as a GPS-tagged photo of another camera (no verified pair)".into()
                });
            }
        }
        pairs.sort_by(|a, b| {
            let o = row.offset_s.unwrap_or(0.0);
            (a.seconds - o).abs().total_cmp(&(b.seconds - o).abs())
        });
        row.pairs = pairs;
        out.push(row);
    }
    meter.finish();
    save(catalog, &stored)?;
    Ok(out)
}

/// The median of the pairs' readings and their median absolute deviation, or `None` with fewer
/// than [`MIN_PAIRS`] pairs.
fn robust_offset(pairs: &[ClockPair]) -> Option<(f64, f64)> {
    if pairs.len() < MIN_PAIRS {
        return None;
    }
    let median = |mut v: Vec<f64>| {
        v.sort_by(f64::total_cmp);
        let n = v.len();
        match n % 2 {
            1 => v[n / 2],
            _ => (v[n / 2 - 1] + v[n / 2]) / 2.0,
        }
    };
    let m = median(pairs.iter().map(|p| p.seconds).collect());
    let spread = median(pairs.iter().map(|p| (p.seconds - m).abs()).collect());
    Some((m, spread))
}

/// Parses a clock offset as people write one: `-1h07m`, `+4020s`, `-01:07:00`, `90` (seconds),
/// `+2h`, `-45m`.
pub fn parse_duration(text: &str) -> Option<f64> {
    let t = text.trim();
    let (sign, rest) = match t.strip_prefix('-') {
        Some(r) => (-1.0, r),
        None => (1.0, t.strip_prefix('+').unwrap_or(t)),
    };
    if rest.is_empty() {
        return None;
    }
    if rest.contains(':') {
        let parts: Vec<&str> = rest.split(':').collect();
        if parts.len() > 3
            || parts
                .iter()
                .any(|p| p.is_empty() || !p.chars().all(|c| c.is_ascii_digit()))
        {
            return None;
        }
        let mut s = 0.0;
        for (i, p) in parts.iter().rev().enumerate() {
            s += p.parse::<f64>().ok()? * 60f64.powi(i as i32);
        }
        return Some(sign * s);
    }
    if let Ok(s) = rest.parse::<f64>() {
        return Some(sign * s);
    }
    let mut total = 0.0;
    let mut number = String::new();
    let mut any = false;
    for c in rest.chars() {
        if c.is_ascii_digit() || c == '.' {
            number.push(c);
            continue;
        }
        let unit = match c {
            'h' => 3600.0,
            'm' => 60.0,
            's' => 1.0,
            _ => return None,
        };
        total += number.parse::<f64>().ok()? * unit;
        number.clear();
        any = true;
    }
    if !number.is_empty() || !any {
        return None;
    }
    Some(sign * total)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_in_their_common_forms() {
        assert_eq!(parse_duration("-1h07m"), Some(-4020.0));
        assert_eq!(parse_duration("+4020s"), Some(4020.0));
        assert_eq!(parse_duration("-01:07:00"), Some(-4020.0));
        assert_eq!(parse_duration("07:30"), Some(450.0));
        assert_eq!(parse_duration("90"), Some(90.0));
        assert_eq!(parse_duration("-45m"), Some(-2700.0));
        assert_eq!(parse_duration("2h"), Some(7200.0));
        for bad in ["", "-", "1x", "h", "1h2", "1::2", "a:b"] {
            assert_eq!(parse_duration(bad), None, "{bad}");
        }
    }

    #[test]
    fn the_estimate_is_the_median_and_one_revisit_does_not_move_it() {
        let pair = |s: f64| ClockPair {
            photo: "a".into(),
            reference: "b".into(),
            seconds: s,
            inliers: 50,
        };
        let pairs: Vec<ClockPair> = [-4025.0, -4018.0, -4021.0, 86_400.0 - 4020.0, -4019.0]
            .into_iter()
            .map(pair)
            .collect();
        let (offset, spread) = robust_offset(&pairs).unwrap();
        assert_eq!(offset, -4019.0);
        assert!(spread <= 2.0, "{spread}");
        assert!(robust_offset(&[]).is_none());
    }
}
