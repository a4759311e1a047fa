//! Capture-time evidence: photos taken minutes apart on the same camera are usually near each
//! other, so an untagged photo is placed between the tagged photos taken just before and after it.
//!
//! Times are compared in UTC when both photos record their UTC offset, else on the same camera's
//! clock (its local time, whatever its time zone or error).

use serde::Serialize;

use crate::geo::GeoPoint;
use crate::library::CaptureTime;

/// A tagged photo with a capture time.
#[derive(Debug, Clone)]
pub struct TimedRef {
    pub photo_id: i64,
    pub path: String,
    pub location: GeoPoint,
    pub taken_at: CaptureTime,
    pub camera: Option<String>,
}

/// A tagged photo that informed a time estimate.
#[derive(Debug, Clone, Serialize)]
pub struct TimeNeighbour {
    pub photo_id: i64,
    pub path: String,
    pub location: GeoPoint,
    /// Seconds from the target photo (negative: taken before).
    pub offset_s: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct TimeEstimate {
    pub point: GeoPoint,
    pub radius_m: f64,
    /// Seconds to the nearest tagged neighbour in time.
    pub gap_s: f64,
    /// Between a photo before and one after (rather than next to one).
    pub interpolated: bool,
    pub neighbours: Vec<TimeNeighbour>,
}

impl TimeEstimate {
    /// Features for calibration: [ln(1 + gap in minutes), interpolated].
    pub fn features(&self) -> [f64; 2] {
        [
            (1.0 + self.gap_s / 60.0).ln(),
            self.interpolated as u8 as f64,
        ]
    }
}

/// Walking pace: how far a photographer plausibly moves per second between photos.
const PACE_M_PER_S: f64 = 1.4;

/// Seconds from `target` to `other`, when the two clocks can be compared.
fn seconds_between(
    target: &CaptureTime,
    target_camera: Option<&str>,
    other: &CaptureTime,
    other_camera: Option<&str>,
) -> Option<f64> {
    // UTC first where both offsets are known: one camera's clock moves between time zones on a
    // trip, and a phone records its videos' times in UTC but its photos' in local time.
    if let (Some(a), Some(b)) = (target.utc(), other.utc()) {
        return Some((b - a).as_seconds_f64());
    }
    let same_camera = matches!((target_camera, other_camera), (Some(a), Some(b)) if a == b);
    same_camera.then(|| (other.local - target.local).as_seconds_f64())
}

/// The position implied by the tagged photos taken within `window_s` of the target.
pub fn estimate(
    target: &CaptureTime,
    camera: Option<&str>,
    refs: &[TimedRef],
    window_s: f64,
    exclude: Option<i64>,
) -> Option<TimeEstimate> {
    let mut before: Option<(f64, &TimedRef)> = None;
    let mut after: Option<(f64, &TimedRef)> = None;
    for r in refs {
        if Some(r.photo_id) == exclude {
            continue;
        }
        let Some(dt) = seconds_between(target, camera, &r.taken_at, r.camera.as_deref()) else {
            continue;
        };
        if dt.abs() > window_s {
            continue;
        }
        if dt <= 0.0 {
            if before.is_none_or(|(b, _)| dt > b) {
                before = Some((dt, r));
            }
        } else if after.is_none_or(|(a, _)| dt < a) {
            after = Some((dt, r));
        }
    }
    let neighbour = |(dt, r): (f64, &TimedRef)| TimeNeighbour {
        photo_id: r.photo_id,
        path: r.path.clone(),
        location: r.location,
        offset_s: dt,
    };
    match (before, after) {
        (Some(b), Some(a)) => {
            let (tb, ta) = (-b.0, a.0);
            let f = if tb + ta > 0.0 { tb / (tb + ta) } else { 0.5 };
            let (pb, pa) = (b.1.location, a.1.location);
            let (centre, _) = super::visual::weighted_centre(&[(pb, 1.0 - f), (pa, f)]);
            let gap = tb.min(ta);
            // Uncertain by the walk since the nearer photo, and by where along the way we are.
            let radius = (50.0 + PACE_M_PER_S * gap + 0.25 * pb.distance_m(&pa)).min(10_000.0);
            Some(TimeEstimate {
                point: centre,
                radius_m: radius,
                gap_s: gap,
                interpolated: true,
                neighbours: vec![neighbour(b), neighbour(a)],
            })
        }
        (Some(one), None) | (None, Some(one)) => {
            let gap = one.0.abs();
            Some(TimeEstimate {
                point: one.1.location,
                radius_m: (50.0 + PACE_M_PER_S * gap).min(10_000.0),
                gap_s: gap,
                interpolated: false,
                neighbours: vec![neighbour(one)],
            })
        }
        (None, None) => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn t(s: &str) -> CaptureTime {
        CaptureTime::parse_iso(s).unwrap()
    }

    fn r(id: i64, time: &str, lat: f64, cam: &str) -> TimedRef {
        TimedRef {
            photo_id: id,
            path: format!("{id}.jpg"),
            location: GeoPoint::new(lat, 10.0),
            taken_at: t(time),
            camera: Some(cam.into()),
        }
    }

    #[test]
    fn interpolates_between_photos_of_the_same_camera() {
        let refs = vec![
            r(1, "2020-05-01T10:00:00", 45.0, "A"),
            r(2, "2020-05-01T10:10:00", 45.01, "A"),
            r(3, "2020-05-01T10:05:00", 50.0, "B"),
        ];
        let e = estimate(&t("2020-05-01T10:02:30"), Some("A"), &refs, 3600.0, None).unwrap();
        assert!(e.interpolated);
        assert!((e.point.lat - 45.0025).abs() < 1e-4, "{:?}", e.point);
        assert_eq!(e.gap_s, 150.0);
        // Camera B's photo is ignored: no UTC offsets to compare its clock with A's.
        assert!(e.neighbours.iter().all(|n| n.photo_id != 3));
    }

    #[test]
    fn compares_cameras_in_utc_when_offsets_are_known() {
        let refs = vec![TimedRef {
            camera: Some("B".into()),
            taken_at: t("2020-05-01T12:00:00+02:00"),
            ..r(3, "2020-05-01T00:00:00", 48.0, "B")
        }];
        // 10:01 UTC for the target, 10:00 UTC for the reference.
        let e = estimate(
            &t("2020-05-01T11:01:00+01:00"),
            Some("A"),
            &refs,
            3600.0,
            None,
        )
        .unwrap();
        assert!(!e.interpolated);
        assert_eq!(e.gap_s, 60.0);
        assert!(estimate(
            &t("2020-05-01T14:00:00+01:00"),
            Some("A"),
            &refs,
            3600.0,
            None
        )
        .is_none());
    }

    /// One phone: its video's time in UTC, its photo's in local time at UTC+2. Comparing the
    /// wall clocks would put them two hours apart.
    #[test]
    fn one_camera_in_two_time_zones_is_compared_in_utc() {
        let refs = vec![TimedRef {
            taken_at: t("2020-05-01T10:00:00+00:00"),
            ..r(4, "2020-05-01T00:00:00", 48.0, "Phone")
        }];
        let e = estimate(
            &t("2020-05-01T12:01:00+02:00"),
            Some("Phone"),
            &refs,
            600.0,
            None,
        )
        .unwrap();
        assert_eq!(e.gap_s, 60.0);
    }
}
