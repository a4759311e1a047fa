//! A photo's capture time: the camera's local wall-clock time with its UTC offset when known, as
//! EXIF, XMP and IPTC record it. Its own module so that each metadata reader can produce one
//! without depending on the others.

use chrono::{NaiveDateTime, TimeDelta};

/// Capture time as the camera recorded it (local wall-clock time), with its UTC offset when known.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CaptureTime {
    pub local: NaiveDateTime,
    pub offset_minutes: Option<i32>,
}

impl CaptureTime {
    /// ISO 8601: `2019-05-04T12:00:00`, with fractional seconds and `+02:00` when known.
    pub fn to_iso(&self) -> String {
        let mut s = if self.local.and_utc().timestamp_subsec_nanos() == 0 {
            self.local.format("%Y-%m-%dT%H:%M:%S").to_string()
        } else {
            self.local.format("%Y-%m-%dT%H:%M:%S%.3f").to_string()
        };
        if let Some(off) = self.offset_minutes {
            let sign = if off < 0 { '-' } else { '+' };
            s.push_str(&format!(
                "{sign}{:02}:{:02}",
                off.abs() / 60,
                off.abs() % 60
            ));
        }
        s
    }

    /// Parses what [`CaptureTime::to_iso`] writes, and XMP dates (`2020-01-02T03:04:05+01:00`, `Z`).
    pub fn parse_iso(s: &str) -> Option<CaptureTime> {
        let s = s.trim();
        let (body, offset) = split_offset(s);
        let local = [
            "%Y-%m-%dT%H:%M:%S%.f",
            "%Y-%m-%dT%H:%M:%S",
            "%Y-%m-%dT%H:%M",
            "%Y:%m:%d %H:%M:%S",
        ]
        .iter()
        .find_map(|f| NaiveDateTime::parse_from_str(body, f).ok())?;
        Some(CaptureTime {
            local,
            offset_minutes: offset,
        })
    }

    /// The instant in UTC, when the offset is known.
    pub fn utc(&self) -> Option<NaiveDateTime> {
        self.offset_minutes
            .map(|o| self.local - TimeDelta::minutes(o as i64))
    }
}

fn split_offset(s: &str) -> (&str, Option<i32>) {
    if let Some(body) = s.strip_suffix('Z') {
        return (body, Some(0));
    }
    if s.len() > 6 {
        let (body, tail) = s.split_at(s.len() - 6);
        let b = tail.as_bytes();
        if (b[0] == b'+' || b[0] == b'-') && b[3] == b':' && body.contains('T') {
            if let (Ok(h), Ok(m)) = (tail[1..3].parse::<i32>(), tail[4..6].parse::<i32>()) {
                let off = h * 60 + m;
                return (body, Some(if b[0] == b'-' { -off } else { off }));
            }
        }
    }
    (s, None)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn capture_time_iso_round_trip() {
        let t = CaptureTime::parse_iso("2020-01-02T03:04:05+01:30").unwrap();
        assert_eq!(t.offset_minutes, Some(90));
        assert_eq!(t.to_iso(), "2020-01-02T03:04:05+01:30");
        assert_eq!(t.utc().unwrap().to_string(), "2020-01-02 01:34:05");
        let t = CaptureTime::parse_iso("2020-01-02T03:04:05.250-05:00").unwrap();
        assert_eq!(t.to_iso(), "2020-01-02T03:04:05.250-05:00");
        let t = CaptureTime::parse_iso("2020-01-02T03:04:05").unwrap();
        assert_eq!(
            (t.offset_minutes, t.to_iso().as_str()),
            (None, "2020-01-02T03:04:05")
        );
        assert_eq!(
            CaptureTime::parse_iso("2020-01-02T03:04:05Z")
                .unwrap()
                .offset_minutes,
            Some(0)
        );
        assert!(CaptureTime::parse_iso("yesterday").is_none());
    }
}
