//! GPX tracks: reading them, and placing a photo by interpolating the track at its capture time,
//! as photo organizers do. The photo's time is turned into UTC with its recorded offset (or the
//! library's default time zone) and corrected by the camera's clock offset.

use quick_xml::events::Event;
use quick_xml::Reader;
use serde::{Deserialize, Serialize};

use crate::geo::GeoPoint;
use crate::library::CaptureTime;

#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct TrackPoint {
    /// UTC, milliseconds since the Unix epoch.
    pub t_ms: i64,
    pub lat: f64,
    pub lon: f64,
    pub ele: Option<f64>,
}

/// A parsed GPX file: its name and its track points (all tracks and segments), by time.
#[derive(Debug, Clone)]
pub struct Track {
    pub name: Option<String>,
    pub points: Vec<TrackPoint>,
}

fn parse_time(s: &str) -> Option<i64> {
    chrono::DateTime::parse_from_rfc3339(s.trim())
        .ok()
        .map(|d| d.timestamp_millis())
        .or_else(|| {
            chrono::NaiveDateTime::parse_from_str(s.trim(), "%Y-%m-%dT%H:%M:%S%.f")
                .ok()
                .map(|d| d.and_utc().timestamp_millis())
        })
}

/// Parses GPX 1.0/1.1 track points (`trkpt` with `lat`, `lon`, `<time>`, optional `<ele>`).
/// Points without a time or with impossible coordinates are skipped; no point at all is an error.
pub fn parse_gpx(bytes: &[u8]) -> Result<Track, String> {
    let text = std::str::from_utf8(bytes).map_err(|_| "not UTF-8 text".to_string())?;
    let mut reader = Reader::from_str(text);
    let mut points = Vec::new();
    let mut name = None;
    let mut current: Option<(f64, f64)> = None;
    let (mut time, mut ele): (Option<i64>, Option<f64>) = (None, None);
    let mut field: Option<&'static str> = None;
    let mut depth_in_trk = false;
    let mut saw_gpx = false;
    loop {
        match reader
            .read_event()
            .map_err(|e| format!("malformed GPX: {e}"))?
        {
            Event::Start(e) | Event::Empty(e) if e.local_name().as_ref() == b"gpx" => {
                saw_gpx = true;
                let _ = e;
            }
            Event::Start(e) => match e.local_name().as_ref() {
                b"trk" => depth_in_trk = true,
                b"trkpt" => {
                    let (mut lat, mut lon) = (None, None);
                    for a in e.attributes().flatten() {
                        let v = a
                            .unescape_value()
                            .ok()
                            .and_then(|v| v.trim().parse::<f64>().ok());
                        match a.key.local_name().as_ref() {
                            b"lat" => lat = v,
                            b"lon" => lon = v,
                            _ => {}
                        }
                    }
                    current = lat.zip(lon);
                    (time, ele) = (None, None);
                }
                b"time" if current.is_some() => field = Some("time"),
                b"ele" if current.is_some() => field = Some("ele"),
                b"name" if depth_in_trk && name.is_none() && current.is_none() => {
                    field = Some("name")
                }
                _ => {}
            },
            Event::Text(t) => {
                if let Some(f) = field {
                    let v = t.unescape().map(|c| c.into_owned()).unwrap_or_default();
                    match f {
                        "time" => time = parse_time(&v),
                        "ele" => ele = v.trim().parse().ok(),
                        _ => name = Some(v.trim().to_string()),
                    }
                }
            }
            Event::End(e) => {
                field = None;
                if e.local_name().as_ref() == b"trkpt" {
                    if let (Some((lat, lon)), Some(t)) = (current.take(), time) {
                        if GeoPoint::validated(lat, lon, None).is_ok() {
                            points.push(TrackPoint {
                                t_ms: t,
                                lat,
                                lon,
                                ele,
                            });
                        }
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if !saw_gpx {
        return Err("not a GPX file (no <gpx> element)".into());
    }
    if points.is_empty() {
        return Err("no track point with a time".into());
    }
    points.sort_by_key(|p| p.t_ms);
    Ok(Track { name, points })
}

/// The photo's capture instant in UTC milliseconds: its own offset, else `default_offset_min`,
/// then corrected by `clock_offset_s` (what to add to the camera's clock to get true time).
pub fn photo_utc_ms(
    taken: &CaptureTime,
    default_offset_min: Option<i32>,
    clock_offset_s: f64,
) -> Option<i64> {
    let offset = taken.offset_minutes.or(default_offset_min)?;
    let utc = taken.local - chrono::TimeDelta::minutes(offset as i64);
    Some(utc.and_utc().timestamp_millis() + (clock_offset_s * 1000.0).round() as i64)
}

/// A position on the track at `t_ms`.
#[derive(Debug, Clone, Serialize)]
pub struct TrackFix {
    pub point: GeoPoint,
    /// Time between the two track points around the photo (0 when one matches exactly).
    pub gap_s: f64,
    pub radius_m: f64,
}

/// Interpolates `points` (sorted by time) at `t_ms`; `None` outside the track or when the points
/// around it are more than `max_gap_s` apart (the receiver lost its fix, or was switched off).
pub fn interpolate(points: &[TrackPoint], t_ms: i64, max_gap_s: f64) -> Option<TrackFix> {
    let i = points.partition_point(|p| p.t_ms <= t_ms);
    let fix = |p: &TrackPoint| GeoPoint {
        lat: p.lat,
        lon: p.lon,
        alt: p.ele,
    };
    if i > 0 && points[i - 1].t_ms == t_ms {
        return Some(TrackFix {
            point: fix(&points[i - 1]),
            gap_s: 0.0,
            radius_m: 25.0,
        });
    }
    if i == 0 || i == points.len() {
        return None;
    }
    let (a, b) = (&points[i - 1], &points[i]);
    let gap_s = (b.t_ms - a.t_ms) as f64 / 1000.0;
    if gap_s > max_gap_s {
        return None;
    }
    let f = (t_ms - a.t_ms) as f64 / (b.t_ms - a.t_ms) as f64;
    let (pa, pb) = (fix(a), fix(b));
    let (mut centre, _) = super::visual::weighted_centre(&[(pa, 1.0 - f), (pb, f)]);
    centre.alt = match (a.ele, b.ele) {
        (Some(x), Some(y)) => Some(x + f * (y - x)),
        _ => None,
    };
    // GPS accuracy, plus a quarter of the stretch between the two fixes (the path may bend).
    let radius_m = 25.0 + 0.25 * pa.distance_m(&pb);
    Some(TrackFix {
        point: centre,
        gap_s,
        radius_m,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const GPX: &str = r#"<?xml version="1.0"?>
<gpx version="1.1" creator="test" xmlns="http://www.topografix.com/GPX/1/1">
 <trk><name>Walk</name><trkseg>
  <trkpt lat="48.0" lon="11.0"><ele>500</ele><time>2021-06-01T08:00:00Z</time></trkpt>
  <trkpt lat="48.001" lon="11.0"><ele>510</ele><time>2021-06-01T08:01:40Z</time></trkpt>
  <trkpt lat="48.5" lon="11.0"><time>2021-06-01T09:00:00Z</time></trkpt>
  <trkpt lat="91" lon="11.0"><time>2021-06-01T09:01:00Z</time></trkpt>
  <trkpt lat="48.6" lon="11.0"></trkpt>
 </trkseg></trk></gpx>"#;

    #[test]
    fn parses_and_interpolates() {
        let t = parse_gpx(GPX.as_bytes()).unwrap();
        assert_eq!(t.name.as_deref(), Some("Walk"));
        assert_eq!(
            t.points.len(),
            3,
            "the point at lat 91 and the one without time are skipped"
        );
        let start = t.points[0].t_ms;
        let fix = interpolate(&t.points, start + 50_000, 300.0).unwrap();
        assert!((fix.point.lat - 48.0005).abs() < 1e-6);
        assert_eq!(fix.point.alt, Some(505.0));
        assert_eq!(fix.gap_s, 100.0);
        // Between points an hour apart: no fix.
        assert!(interpolate(&t.points, start + 1_000_000, 300.0).is_none());
        assert!(interpolate(&t.points, start - 1, 300.0).is_none());
        assert!(parse_gpx(b"<kml/>").is_err());
    }

    #[test]
    fn photo_time_uses_offsets_and_clock_correction() {
        let taken = CaptureTime::parse_iso("2021-06-01T10:00:50").unwrap(); // local, no offset recorded
        assert_eq!(photo_utc_ms(&taken, None, 0.0), None);
        let utc = photo_utc_ms(&taken, Some(120), -10.0).unwrap(); // UTC+2, camera 10 s fast
        assert_eq!(
            utc,
            chrono::DateTime::parse_from_rfc3339("2021-06-01T08:00:40Z")
                .unwrap()
                .timestamp_millis()
        );
        let with_offset = CaptureTime::parse_iso("2021-06-01T09:00:50+01:00").unwrap();
        assert_eq!(
            photo_utc_ms(&with_offset, Some(120), 0.0).unwrap(),
            utc + 10_000
        );
    }
}
