//! The capture time from IPTC-IIM (DateCreated 2:55, TimeCreated 2:60), as news and sports
//! photographers' tools (Photo Mechanic) write it in a JPEG's Photoshop APP13 segment.

use chrono::{NaiveDate, NaiveDateTime, NaiveTime};

use super::capture_time::CaptureTime;
use super::jpeg::segments;

/// The IPTC-NAA record of a JPEG's APP13 "Photoshop 3.0" segment.
fn iptc_block(head: &[u8]) -> Option<&[u8]> {
    let (_, body) =
        segments(head).find(|(m, b)| *m == 0xED && b.starts_with(b"Photoshop 3.0\0"))?;
    let mut p = &body[14..];
    while p.len() >= 12 && &p[0..4] == b"8BIM" {
        let id = u16::from_be_bytes([p[4], p[5]]);
        let name_len = p[6] as usize;
        let name_total = (1 + name_len + 1) & !1; // Pascal string padded to even length
        let at = 6 + name_total;
        if p.len() < at + 4 {
            return None;
        }
        let size = u32::from_be_bytes(p[at..at + 4].try_into().ok()?) as usize;
        let data_start = at + 4;
        let data_end = data_start.checked_add(size)?;
        if data_end > p.len() {
            return None;
        }
        if id == 0x0404 {
            return Some(&p[data_start..data_end]);
        }
        p = &p[(data_end + (size & 1)).min(p.len())..];
    }
    None
}

/// Datasets of record 2 (application record): (dataset, value).
fn datasets(iim: &[u8]) -> Vec<(u8, &[u8])> {
    let mut out = Vec::new();
    let mut p = iim;
    while p.len() >= 5 && p[0] == 0x1C {
        let (record, dataset) = (p[1], p[2]);
        let len = u16::from_be_bytes([p[3], p[4]]) as usize;
        if len & 0x8000 != 0 || p.len() < 5 + len {
            break; // extended lengths are only used for large binary data
        }
        if record == 2 {
            out.push((dataset, &p[5..5 + len]));
        }
        p = &p[5 + len..];
    }
    out
}

pub fn iptc_capture_time(head: &[u8]) -> Option<CaptureTime> {
    let sets = datasets(iptc_block(head)?);
    let date = sets.iter().find(|(d, _)| *d == 55).map(|(_, v)| *v)?;
    let date = NaiveDate::parse_from_str(std::str::from_utf8(date).ok()?.trim(), "%Y%m%d").ok()?;
    let time = sets
        .iter()
        .find(|(d, _)| *d == 60)
        .and_then(|(_, v)| std::str::from_utf8(v).ok());
    let (time, offset) = match time.map(str::trim) {
        Some(t) if t.len() >= 6 => {
            let hms = NaiveTime::parse_from_str(&t[..6], "%H%M%S").ok()?;
            let offset = (t.len() >= 11).then(|| {
                let sign = if t.as_bytes()[6] == b'-' { -1 } else { 1 };
                let h: i32 = t[7..9].parse().ok()?;
                let m: i32 = t[9..11].parse().ok()?;
                Some(sign * (h * 60 + m))
            });
            (hms, offset.flatten())
        }
        _ => return None, // a date alone is not a capture time
    };
    Some(CaptureTime {
        local: NaiveDateTime::new(date, time),
        offset_minutes: offset,
    })
}
