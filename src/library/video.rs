//! Phone and camera videos (MP4, MOV, M4V, 3GP): capture time, place, duration, frame size and
//! camera, read from the QuickTime / ISO base media boxes. A video is time and place evidence
//! for the photos around it; Pinpoint never writes into one (a location goes to its sidecar).
//!
//! Where each value comes from, first found wins:
//! - place: the `Keys` item `com.apple.quicktime.location.ISO6709`, then `udta/©xyz` (Android,
//!   Samsung), then an `ilst` `©xyz` item; all ISO 6709 strings (`+51.4169-000.0806/`);
//! - time: `com.apple.quicktime.creationdate` (local time with its UTC offset), then `©day`, then
//!   the movie header's creation time, which the format defines as UTC;
//! - camera: `com.apple.quicktime.make`/`model`, then `udta/©mak`/`©mod`;
//! - size: the first video track's header, rotated by its matrix.
//!
//! Pixels: a poster frame for the grid and the detail pane comes from Debian's `ffmpeg` (FFmpeg's
//! decoders for H.264, HEVC, MJPEG, ...), run as a separate process so that a codec fault costs
//! one file. Without ffmpeg a video has no frame and the app shows its icon.

use std::fs::File;
use std::io::{Read, Seek, SeekFrom};
use std::path::Path;

use chrono::{DateTime, NaiveDate, TimeDelta};

use super::capture_time::CaptureTime;
use super::isobmff::boxes;
use super::metadata::{Located, LocationSource, PhotoMetadata};
use crate::geo::GeoPoint;

/// A `moov` larger than this is not read (phone videos' are tens of KB; the media is in `mdat`).
const MAX_MOOV_BYTES: u64 = 64 << 20;

/// What a video's boxes say.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct VideoInfo {
    pub duration_s: Option<f64>,
    /// Frame size as shown (the track matrix's rotation applied).
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// Clockwise rotation of the track matrix, in degrees.
    pub rotation: u16,
    pub taken_at: Option<CaptureTime>,
    /// ISO 6709 text, as found.
    pub iso6709: Option<String>,
    pub make: Option<String>,
    pub model: Option<String>,
}

/// How long ffmpeg may take for one poster frame.
const POSTER_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(60);

/// The ffmpeg program: `$PINPOINT_FFMPEG`, else `ffmpeg` on the PATH.
fn ffmpeg_program() -> std::path::PathBuf {
    std::env::var_os("PINPOINT_FFMPEG")
        .filter(|p| !p.is_empty())
        .map(Into::into)
        .unwrap_or_else(|| "ffmpeg".into())
}

/// Whether poster frames can be made on this machine (an ffmpeg that runs), checked once.
pub fn poster_frames_available() -> bool {
    static AVAILABLE: std::sync::OnceLock<bool> = std::sync::OnceLock::new();
    *AVAILABLE.get_or_init(|| {
        std::process::Command::new(ffmpeg_program())
            .args(["-hide_banner", "-version"])
            .stdin(std::process::Stdio::null())
            .stdout(std::process::Stdio::null())
            .stderr(std::process::Stdio::null())
            .status()
            .is_ok_and(|s| s.success())
    })
}

/// A frame of the video at `path`, upright (ffmpeg applies the track's rotation), as a poster:
/// the frame one second in (past a fade-in), or the first frame of a shorter clip.
pub fn poster_frame(path: &Path) -> crate::error::Result<image::DynamicImage> {
    use crate::error::Error;
    if !poster_frames_available() {
        return Err(Error::decode(
            path,
            "no video decoder: install ffmpeg to see video frames",
        ));
    }
    let mut last_error = String::new();
    for seek in ["1", "0"] {
        match run_ffmpeg_for_frame(path, seek) {
            Ok(Some(img)) => return Ok(img),
            Ok(None) => last_error = "the video has no frame ffmpeg can decode".into(),
            Err(e) => last_error = e,
        }
    }
    Err(Error::decode(path, format!("video frame: {last_error}")))
}

/// One `ffmpeg` run: the frame at `seek` seconds as BMP on stdout, or `None` when there is none.
fn run_ffmpeg_for_frame(path: &Path, seek: &str) -> Result<Option<image::DynamicImage>, String> {
    use std::process::{Command, Stdio};
    let mut child = Command::new(ffmpeg_program())
        .args([
            "-nostdin",
            "-hide_banner",
            "-loglevel",
            "error",
            "-ss",
            seek,
            "-i",
        ])
        .arg(path)
        .args(["-map", "0:v:0", "-frames:v", "1", "-an", "-sn", "-dn"])
        .args(["-c:v", "bmp", "-pix_fmt", "bgr24", "-f", "image2pipe", "-"])
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .map_err(|e| format!("cannot run ffmpeg: {e}"))?;
    let mut stdout = child.stdout.take().expect("stdout is piped");
    let mut stderr = child.stderr.take().expect("stderr is piped");
    let reader = std::thread::spawn(move || {
        let mut out = Vec::new();
        let read = stdout.read_to_end(&mut out);
        read.map(|_| out)
    });
    let errors = std::thread::spawn(move || {
        let mut text = String::new();
        let _ = stderr.read_to_string(&mut text);
        text
    });
    let deadline = std::time::Instant::now() + POSTER_TIMEOUT;
    let status = loop {
        match child.try_wait() {
            Ok(Some(status)) => break status,
            Ok(None) if std::time::Instant::now() < deadline => {
                std::thread::sleep(std::time::Duration::from_millis(20))
            }
            Ok(None) => {
                let _ = child.kill();
                let _ = child.wait();
                return Err(format!(
                    "ffmpeg gave no frame within {} s and was stopped",
                    POSTER_TIMEOUT.as_secs()
                ));
            }
            Err(e) => return Err(format!("waiting for ffmpeg: {e}")),
        }
    };
    let frame = reader
        .join()
        .map_err(|_| "reading ffmpeg's output failed".to_string())?
        .map_err(|e| format!("reading ffmpeg's output: {e}"))?;
    let messages = errors.join().unwrap_or_default();
    if !status.success() {
        let first = messages
            .lines()
            .rev()
            .find(|l| !l.trim().is_empty())
            .unwrap_or("");
        return Err(format!("ffmpeg failed ({status}): {}", first.trim()));
    }
    if frame.is_empty() {
        return Ok(None);
    }
    let mut reader =
        image::ImageReader::with_format(std::io::Cursor::new(frame), image::ImageFormat::Bmp);
    reader.limits(super::decode::limits());
    reader
        .decode()
        .map(Some)
        .map_err(|e| format!("ffmpeg's frame does not decode: {e}"))
}

/// Fills `md` from the video in `file`; problems become warnings.
pub fn read_into(file: &mut File, size: u64, md: &mut PhotoMetadata) {
    let info = match read(file, size) {
        Ok(info) => info,
        Err(why) => {
            md.warnings
                .push(format!("video metadata unreadable: {why}"));
            return;
        }
    };
    md.width = info.width;
    md.height = info.height;
    md.duration_s = info.duration_s;
    md.taken_at = info.taken_at;
    md.make = info.make.clone();
    md.model = info.model.clone();
    if let Some(text) = &info.iso6709 {
        match parse_iso6709(text) {
            Some((lat, lon, alt)) => match GeoPoint::validated(lat, lon, alt) {
                Ok(point) => {
                    md.location = Some(Located {
                        point,
                        source: LocationSource::Exif,
                    })
                }
                Err(why) => md.warnings.push(format!("QuickTime {why}")),
            },
            None => md.warnings.push(format!(
                "QuickTime GPS {text:?} is not an ISO 6709 position; ignored"
            )),
        }
    }
}

/// Reads the boxes of a video file.
pub fn read(file: &mut File, size: u64) -> Result<VideoInfo, String> {
    let mut pos = 0u64;
    while pos + 8 <= size {
        let mut header = [0u8; 16];
        file.seek(SeekFrom::Start(pos)).map_err(|e| e.to_string())?;
        let n = file.read(&mut header).map_err(|e| e.to_string())?;
        if n < 8 {
            break;
        }
        let kind: [u8; 4] = header[4..8].try_into().unwrap();
        let (start, len) = match u32::from_be_bytes(header[0..4].try_into().unwrap()) as u64 {
            0 => (8, size - pos),
            1 if n >= 16 => (16, u64::from_be_bytes(header[8..16].try_into().unwrap())),
            l => (8, l),
        };
        if len < start || len > size - pos {
            return Err(format!(
                "box {:?} at byte {pos} overruns the file",
                String::from_utf8_lossy(&kind)
            ));
        }
        if &kind == b"moov" {
            if len - start > MAX_MOOV_BYTES {
                return Err(format!(
                    "movie header of {} bytes is too large",
                    len - start
                ));
            }
            let mut moov = vec![0u8; (len - start) as usize];
            file.seek(SeekFrom::Start(pos + start))
                .map_err(|e| e.to_string())?;
            file.read_exact(&mut moov).map_err(|e| e.to_string())?;
            return Ok(parse_moov(&moov));
        }
        pos += len;
    }
    Err("no movie header (moov box)".into())
}

/// The values of a `moov` box's body.
pub fn parse_moov(moov: &[u8]) -> VideoInfo {
    let mut info = VideoInfo::default();
    let mut mvhd_time = None;
    let mut items = Items::default();
    for (kind, body) in boxes(moov) {
        match &kind {
            b"mvhd" => {
                if let Some((created, duration)) = movie_header(body) {
                    mvhd_time = created;
                    info.duration_s = duration;
                }
            }
            b"trak" if info.width.is_none() => {
                if let Some((w, h, rotation)) = video_track(body) {
                    let turned = rotation % 180 == 90;
                    (info.width, info.height) = if turned {
                        (Some(h), Some(w))
                    } else {
                        (Some(w), Some(h))
                    };
                    info.rotation = rotation;
                }
            }
            b"udta" => {
                for (kind, body) in boxes(body) {
                    match &kind {
                        b"\xa9xyz" | b"\xa9mak" | b"\xa9mod" | b"\xa9day" => {
                            if let Some(text) = international_text(body) {
                                items.udta.push((kind, text));
                            }
                        }
                        b"meta" => items.read_meta(body),
                        _ => {}
                    }
                }
            }
            b"meta" => items.read_meta(body),
            _ => {}
        }
    }
    let key = |k: &str| {
        items
            .keyed
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    };
    let udta = |k: &[u8; 4]| {
        items
            .udta
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    };
    let ilst = |k: &[u8; 4]| {
        items
            .listed
            .iter()
            .find(|(name, _)| name == k)
            .map(|(_, v)| v.clone())
    };
    info.iso6709 = key("com.apple.quicktime.location.ISO6709")
        .or_else(|| udta(b"\xa9xyz"))
        .or_else(|| ilst(b"\xa9xyz"));
    info.make = key("com.apple.quicktime.make").or_else(|| udta(b"\xa9mak"));
    info.model = key("com.apple.quicktime.model").or_else(|| udta(b"\xa9mod"));
    info.taken_at = key("com.apple.quicktime.creationdate")
        .or_else(|| udta(b"\xa9day"))
        .or_else(|| ilst(b"\xa9day"))
        .and_then(|t| parse_date(&t))
        .or(mvhd_time);
    info
}

/// Metadata items: `Keys` + `ilst` (QuickTime, names like `com.apple.quicktime.make`),
/// `ilst` with four-character names (iTunes style), and `udta` texts.
#[derive(Default)]
struct Items {
    keyed: Vec<(String, String)>,
    listed: Vec<([u8; 4], String)>,
    udta: Vec<([u8; 4], String)>,
}

impl Items {
    fn read_meta(&mut self, body: &[u8]) {
        // QuickTime's `meta` is a plain box; ISO's is a full box (4 bytes of version and flags).
        let body = match body.get(4..8) {
            Some(b"hdlr") => body,
            _ => body.get(4..).unwrap_or(&[]),
        };
        let mut keys: Vec<String> = Vec::new();
        for (kind, inner) in boxes(body) {
            if &kind == b"keys" {
                keys = key_names(inner);
            }
        }
        for (kind, inner) in boxes(body) {
            if &kind != b"ilst" {
                continue;
            }
            for (item, item_body) in boxes(inner) {
                let Some(value) = item_text(item_body) else {
                    continue;
                };
                let index = u32::from_be_bytes(item) as usize;
                match keys.get(index.wrapping_sub(1)) {
                    Some(name) if !keys.is_empty() => self.keyed.push((name.clone(), value)),
                    _ => self.listed.push((item, value)),
                }
            }
        }
    }
}

/// `keys`: version and flags, a count, then (size, namespace, name) entries.
fn key_names(body: &[u8]) -> Vec<String> {
    let count = body
        .get(4..8)
        .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
        .unwrap_or(0);
    let mut pos = 8usize;
    let mut out = Vec::new();
    for _ in 0..count.min(10_000) {
        let Some(size) = body
            .get(pos..pos + 4)
            .map(|b| u32::from_be_bytes(b.try_into().unwrap()) as usize)
        else {
            break;
        };
        if size < 8 || pos + size > body.len() {
            break;
        }
        out.push(String::from_utf8_lossy(&body[pos + 8..pos + size]).into_owned());
        pos += size;
    }
    out
}

/// The text of an `ilst` item's `data` box (UTF-8 or UTF-16 type), trimmed.
fn item_text(item: &[u8]) -> Option<String> {
    let (_, data) = boxes(item).find(|(k, _)| k == b"data")?;
    let typ = u32::from_be_bytes(data.get(0..4)?.try_into().ok()?) & 0x00FF_FFFF;
    let payload = data.get(8..)?;
    let text = match typ {
        1 => String::from_utf8_lossy(payload).into_owned(),
        2 => {
            let units: Vec<u16> = payload
                .chunks_exact(2)
                .map(|c| u16::from_be_bytes([c[0], c[1]]))
                .collect();
            String::from_utf16_lossy(&units)
        }
        _ => return None,
    };
    let text = text.trim_matches(char::from(0)).trim().to_string();
    (!text.is_empty()).then_some(text)
}

/// QuickTime `udta` text: a 16-bit length and a language code, then the text.
fn international_text(body: &[u8]) -> Option<String> {
    let len = u16::from_be_bytes(body.get(0..2)?.try_into().ok()?) as usize;
    let text = body.get(4..4 + len).or_else(|| body.get(4..))?;
    let text = String::from_utf8_lossy(text)
        .trim_matches(char::from(0))
        .trim()
        .to_string();
    (!text.is_empty()).then_some(text)
}

/// `mvhd`: (creation time in UTC, duration in seconds). A creation time of 0 (1904) is unset.
fn movie_header(body: &[u8]) -> Option<(Option<CaptureTime>, Option<f64>)> {
    let version = *body.first()?;
    let (created, timescale, duration) = if version == 1 {
        (
            u64::from_be_bytes(body.get(4..12)?.try_into().ok()?),
            u32::from_be_bytes(body.get(20..24)?.try_into().ok()?),
            u64::from_be_bytes(body.get(24..32)?.try_into().ok()?),
        )
    } else {
        (
            u32::from_be_bytes(body.get(4..8)?.try_into().ok()?) as u64,
            u32::from_be_bytes(body.get(12..16)?.try_into().ok()?),
            u32::from_be_bytes(body.get(16..20)?.try_into().ok()?) as u64,
        )
    };
    // Seconds from 1904-01-01 to 1970-01-01.
    const QUICKTIME_EPOCH_OFFSET: i64 = 2_082_844_800;
    let created = i64::try_from(created)
        .ok()
        .filter(|&s| s > QUICKTIME_EPOCH_OFFSET)
        .and_then(|s| DateTime::from_timestamp(s - QUICKTIME_EPOCH_OFFSET, 0))
        .map(|t| CaptureTime {
            local: t.naive_utc(),
            offset_minutes: Some(0),
        });
    let duration =
        (timescale > 0 && duration != u64::MAX && (version == 1 || duration != u32::MAX as u64))
            .then(|| duration as f64 / timescale as f64);
    Some((created, duration))
}

/// A `trak` whose media handler is `vide`: (width, height, clockwise rotation) from its `tkhd`.
fn video_track(trak: &[u8]) -> Option<(u32, u32, u16)> {
    let is_video = boxes(trak)
        .filter(|(k, _)| k == b"mdia")
        .flat_map(|(_, mdia)| boxes(mdia))
        .any(|(k, hdlr)| &k == b"hdlr" && hdlr.get(8..12) == Some(b"vide"));
    if !is_video {
        return None;
    }
    let (_, tkhd) = boxes(trak).find(|(k, _)| k == b"tkhd")?;
    // After version/flags: times, track id, reserved and duration (v0: 20 bytes, v1: 32), then
    // 8 reserved, layer, group, volume, reserved (8), the 3x3 matrix (36), width, height (16.16).
    let base = if *tkhd.first()? == 1 { 4 + 32 } else { 4 + 20 };
    let matrix = base + 16;
    let fixed = |at: usize| {
        tkhd.get(at..at + 4)
            .map(|b| i32::from_be_bytes(b.try_into().unwrap()))
    };
    let (a, b) = (fixed(matrix)?, fixed(matrix + 4)?);
    let w = (fixed(matrix + 36)? as u32) >> 16;
    let h = (fixed(matrix + 40)? as u32) >> 16;
    let rotation = match (a.signum(), b.signum()) {
        (0, 1) => 90,
        (-1, 0) => 180,
        (0, -1) => 270,
        _ => 0,
    };
    (w > 0 && h > 0).then_some((w, h, rotation))
}

/// ISO 6709 position: `±DD.D±DDD.D[±AAA.A][CRS]/`, where degrees may also be written
/// `±DDMM.M` / `±DDDMM.M` or `±DDMMSS.S` / `±DDDMMSS.S`.
pub fn parse_iso6709(text: &str) -> Option<(f64, f64, Option<f64>)> {
    let text = text.trim().trim_end_matches('/');
    let text = text.split("CRS").next()?;
    let mut parts = Vec::new();
    let mut current = String::new();
    for c in text.chars() {
        if (c == '+' || c == '-') && !current.is_empty() {
            parts.push(std::mem::take(&mut current));
        }
        current.push(c);
    }
    if !current.is_empty() {
        parts.push(current);
    }
    let angle = |s: &str, degree_digits: usize| -> Option<f64> {
        let (sign, digits) = match s.as_bytes().first()? {
            b'+' => (1.0, &s[1..]),
            b'-' => (-1.0, &s[1..]),
            _ => return None,
        };
        let int_len = digits.find('.').unwrap_or(digits.len());
        let value: f64 = digits.parse().ok()?;
        let degrees = match int_len.checked_sub(degree_digits)? {
            0 => value,
            2 => (value / 100.0).trunc() + (value % 100.0) / 60.0,
            4 => {
                (value / 10_000.0).trunc()
                    + ((value % 10_000.0) / 100.0).trunc() / 60.0
                    + (value % 100.0) / 3600.0
            }
            _ => return None,
        };
        Some(sign * degrees)
    };
    let lat = angle(parts.first()?, 2)?;
    let lon = angle(parts.get(1)?, 3)?;
    let alt = parts.get(2).and_then(|s| s.parse::<f64>().ok());
    Some((lat, lon, alt))
}

/// QuickTime dates: `2019-06-30T14:03:27+0200`, `2019-06-30T14:03:27+02:00`, `...Z`, or a date.
fn parse_date(text: &str) -> Option<CaptureTime> {
    let t = text.trim();
    // `+0200` to `+02:00`, the form CaptureTime reads.
    let bytes = t.as_bytes();
    let normalised = if bytes.len() > 5
        && matches!(bytes[bytes.len() - 5], b'+' | b'-')
        && bytes[bytes.len() - 4..].iter().all(u8::is_ascii_digit)
        && t.contains('T')
    {
        format!("{}:{}", &t[..t.len() - 2], &t[t.len() - 2..])
    } else {
        t.to_string()
    };
    CaptureTime::parse_iso(&normalised).or_else(|| {
        let day = NaiveDate::parse_from_str(t.get(..10)?, "%Y-%m-%d").ok()?;
        Some(CaptureTime {
            local: day.and_hms_opt(0, 0, 0)? + TimeDelta::zero(),
            offset_minutes: None,
        })
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso6709_in_its_forms() {
        assert_eq!(
            parse_iso6709("+51.4169-000.0806/"),
            Some((51.4169, -0.0806, None))
        );
        let (lat, lon, alt) = parse_iso6709("+37.3318-122.0312+012.345/").unwrap();
        assert_eq!((lat, lon, alt), (37.3318, -122.0312, Some(12.345)));
        // Degrees and minutes, then degrees, minutes and seconds.
        let (lat, lon, _) = parse_iso6709("+4030.5-07358.5/").unwrap();
        assert!((lat - 40.508333).abs() < 1e-6 && (lon + 73.975).abs() < 1e-6);
        let (lat, lon, _) = parse_iso6709("+403030-0735830/").unwrap();
        assert!((lat - 40.508333).abs() < 1e-6 && (lon + 73.975).abs() < 1e-6);
        assert_eq!(
            parse_iso6709("+51.4169-000.0806+0.5CRSWGS_84/").unwrap().2,
            Some(0.5)
        );
        assert_eq!(parse_iso6709("garbage"), None);
        assert_eq!(parse_iso6709("+1"), None);
    }

    #[test]
    fn quicktime_dates_keep_their_offset() {
        let t = parse_date("2019-06-30T14:03:27+0200").unwrap();
        assert_eq!(t.to_iso(), "2019-06-30T14:03:27+02:00");
        assert_eq!(
            parse_date("2019-06-30T12:03:27Z").unwrap().offset_minutes,
            Some(0)
        );
        assert_eq!(
            parse_date("2019-06-30").unwrap().to_iso(),
            "2019-06-30T00:00:00"
        );
    }

    #[test]
    fn truncated_boxes_read_as_nothing() {
        assert_eq!(parse_moov(b""), VideoInfo::default());
        assert_eq!(parse_moov(b"\0\0\0\x50mvhd\0\0"), VideoInfo::default());
    }
}
