//! Reading one photo: identity (size, mtime, content hash), pixel size, orientation, capture time,
//! camera, and location, from embedded EXIF / XMP and from an XMP sidecar.
//!
//! Only the bytes needed are read: a JPEG up to its first scan, a PNG/WebP/HEIF through its
//! metadata boxes. TIFF-based RAW files keep their metadata near the start, so a large one is first
//! parsed from its first 8 MiB and read whole only if that fails.
//!
//! Location precedence: an XMP sidecar's GPS wins over the GPS embedded in the file, because
//! sidecars are where editors (and Pinpoint in sidecar mode) record corrections while leaving the
//! original untouched; embedded EXIF GPS wins over an embedded XMP packet's GPS, as in ExifTool.

use std::fs::File;
use std::io::{BufRead, BufReader, Cursor, Read, Seek, SeekFrom};
use std::path::{Path, PathBuf};
use std::time::UNIX_EPOCH;

use chrono::{NaiveDate, NaiveDateTime, NaiveTime, TimeDelta};
use exif::{In, Tag, Value};
use serde::{Deserialize, Serialize};

use super::capture_time::CaptureTime;
use super::format::{format_from_extension, sniff, PhotoFormat};
use super::iptc::iptc_capture_time;
use super::xmp::{embedded_jpeg_xmp, parse_xmp, XmpData};
use crate::error::{Error, IoContext, Result};
use crate::geo::{dms_to_degrees, GeoPoint};

/// Bytes read up front: enough for the EXIF of nearly every JPEG (APP1 is at most 64 KiB).
const HEAD_BYTES: u64 = 128 * 1024;
/// The first part of a large TIFF-based file that is tried before reading it whole.
const TIFF_FIRST_TRY_BYTES: u64 = 8 * 1024 * 1024;
/// Files larger than this are not read whole for their metadata.
const TIFF_MAX_BYTES: u64 = 512 * 1024 * 1024;

/// Where a photo's location came from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum LocationSource {
    /// Embedded in the file (EXIF GPS, or the file's own XMP packet).
    Exif,
    /// An XMP sidecar beside the file.
    Sidecar,
    /// Placed by the user in Pinpoint.
    User,
    /// A Pinpoint proposal the user accepted.
    Proposal,
}

impl LocationSource {
    pub fn as_str(self) -> &'static str {
        match self {
            LocationSource::Exif => "exif",
            LocationSource::Sidecar => "sidecar",
            LocationSource::User => "user",
            LocationSource::Proposal => "proposal",
        }
    }
    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "exif" => LocationSource::Exif,
            "sidecar" => LocationSource::Sidecar,
            "user" => LocationSource::User,
            "proposal" => LocationSource::Proposal,
            _ => return None,
        })
    }
}

/// A location together with where it came from.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Located {
    pub point: GeoPoint,
    pub source: LocationSource,
}

/// Everything the catalog records about one photo file.
#[derive(Debug, Clone)]
pub struct PhotoMetadata {
    pub format: PhotoFormat,
    pub size: u64,
    pub mtime_ns: i64,
    /// Sampled BLAKE3 hash (see [`content_hash`]): identifies the file across renames and moves.
    pub content_hash: [u8; 32],
    /// Pixel size as stored, before orientation is applied.
    pub width: Option<u32>,
    pub height: Option<u32>,
    /// EXIF orientation 1..=8.
    pub orientation: Option<u8>,
    /// A video's length in seconds.
    pub duration_s: Option<f64>,
    pub taken_at: Option<CaptureTime>,
    /// UTC time from the GPS receiver (GPSDateStamp + GPSTimeStamp).
    pub gps_time_utc: Option<NaiveDateTime>,
    pub make: Option<String>,
    pub model: Option<String>,
    pub location: Option<Located>,
    /// The sidecar that was read, if any.
    pub sidecar: Option<PathBuf>,
    /// The sidecar's position overrides another one still embedded in the file's EXIF.
    pub embedded_gps_stale: bool,
    /// Problems that did not stop the file from being catalogued (bad EXIF, GPS 0,0, ...).
    pub warnings: Vec<String>,
}

/// Modification time in nanoseconds since the Unix epoch.
pub fn mtime_ns(meta: &std::fs::Metadata) -> i64 {
    meta.modified()
        .ok()
        .and_then(|t| match t.duration_since(UNIX_EPOCH) {
            Ok(d) => i64::try_from(d.as_nanos()).ok(),
            Err(e) => i64::try_from(e.duration().as_nanos()).ok().map(|n| -n),
        })
        .unwrap_or(0)
}

/// Sampled content hash: BLAKE3 over the size, the first and last 64 KiB, and three 16 KiB samples
/// at 1/4, 1/2 and 3/4 of the file (the whole file when it is at most 256 KiB). Reading a few
/// hundred KiB instead of every byte keeps a cold scan fast; metadata edits (which change the head)
/// and re-encodes (which change the size and every sample) both change it.
pub fn content_hash<R: Read + Seek>(reader: &mut R, size: u64) -> std::io::Result<[u8; 32]> {
    const EDGE: u64 = 64 * 1024;
    const SAMPLE: u64 = 16 * 1024;
    let mut hasher = blake3::Hasher::new();
    hasher.update(&size.to_le_bytes());
    let mut buf = Vec::with_capacity(EDGE as usize);
    let mut take =
        |reader: &mut R, at: u64, len: u64, hasher: &mut blake3::Hasher| -> std::io::Result<()> {
            reader.seek(SeekFrom::Start(at))?;
            buf.clear();
            reader.by_ref().take(len).read_to_end(&mut buf)?;
            hasher.update(&buf);
            Ok(())
        };
    if size <= 4 * EDGE {
        take(reader, 0, size, &mut hasher)?;
    } else {
        take(reader, 0, EDGE, &mut hasher)?;
        for quarter in 1..=3 {
            take(reader, size / 4 * quarter, SAMPLE, &mut hasher)?;
        }
        take(reader, size - EDGE, EDGE, &mut hasher)?;
    }
    Ok(*hasher.finalize().as_bytes())
}

/// Reads one photo. `sidecar` is the XMP sidecar to consult, if the caller found one.
/// Fails only when the file cannot be read or is not a photo; damaged metadata becomes a warning.
pub fn read_photo_metadata(path: &Path, sidecar: Option<&Path>) -> Result<PhotoMetadata> {
    let mut file = File::open(path).at(path)?;
    let stat = file.metadata().at(path)?;
    if !stat.is_file() {
        return Err(Error::metadata(path, "not a regular file"));
    }
    let size = stat.len();
    if size == 0 {
        return Err(Error::metadata(path, "empty file"));
    }
    let mut head = Vec::with_capacity(HEAD_BYTES.min(size) as usize);
    (&mut file)
        .take(HEAD_BYTES)
        .read_to_end(&mut head)
        .at(path)?;
    let claimed = format_from_extension(path);
    let format = match (sniff(&head), claimed) {
        // Most RAW formats are TIFF inside: the extension says which it is.
        (Some(PhotoFormat::Tiff), Some(PhotoFormat::Raw)) => PhotoFormat::Raw,
        (Some(f), _) => f,
        (None, Some(c)) => {
            return Err(Error::metadata(
                path,
                format!("content is not a {} file", c.as_str().to_uppercase()),
            ))
        }
        (None, None) => return Err(Error::metadata(path, "not a photo format Pinpoint reads")),
    };
    let mut warnings = Vec::new();
    if let Some(c) = claimed {
        if c != format && !(c == PhotoFormat::Raw && format == PhotoFormat::Tiff) {
            warnings.push(format!(
                "extension says {} but content is {}",
                c.as_str(),
                format.as_str()
            ));
        }
    }
    let content_hash = content_hash(&mut file, size).at(path)?;

    let mut md = PhotoMetadata {
        format,
        size,
        mtime_ns: mtime_ns(&stat),
        content_hash,
        width: None,
        height: None,
        orientation: None,
        duration_s: None,
        taken_at: None,
        gps_time_utc: None,
        make: None,
        model: None,
        location: None,
        sidecar: None,
        embedded_gps_stale: false,
        warnings,
    };

    if format == PhotoFormat::Video {
        super::video::read_into(&mut file, size, &mut md);
    } else {
        read_embedded(&mut file, format, &head, size, &mut md);
    }

    if let Some(sidecar) = sidecar {
        match std::fs::read(sidecar) {
            Ok(bytes) => match parse_xmp(&bytes) {
                Ok(x) => {
                    md.sidecar = Some(sidecar.to_path_buf());
                    let mut sidecar_gps = None;
                    apply_xmp(
                        &x,
                        "sidecar",
                        LocationSource::Sidecar,
                        &mut md,
                        &mut sidecar_gps,
                    );
                    if let Some(point) = sidecar_gps {
                        md.embedded_gps_stale = md.location.is_some_and(|embedded| {
                            (embedded.point.lat - point.lat).abs() > 1e-7
                                || (embedded.point.lon - point.lon).abs() > 1e-7
                        });
                        md.location = Some(Located {
                            point,
                            source: LocationSource::Sidecar,
                        });
                    }
                }
                Err(e) => md
                    .warnings
                    .push(format!("sidecar {} unreadable: {e}", sidecar.display())),
            },
            Err(e) => md
                .warnings
                .push(format!("sidecar {} unreadable: {e}", sidecar.display())),
        }
    }
    if md.orientation.is_none() && format.has_decodable_pixels() {
        md.orientation = Some(1);
    }
    Ok(md)
}

/// A photo's embedded metadata: EXIF (with a lone-GPS-IFD fallback), pixel size, HEIF
/// transforms, a JPEG's XMP packet and IPTC date.
fn read_embedded(
    file: &mut File,
    format: PhotoFormat,
    head: &[u8],
    size: u64,
    md: &mut PhotoMetadata,
) {
    let mut exif_damaged = true;
    let exif = match read_exif(file, format, head, size) {
        Ok(ExifRead { exif, errors }) => {
            if !errors.is_empty() {
                md.warnings
                    .push(format!("EXIF partly unreadable: {}", errors.join("; ")));
            }
            exif_damaged = !errors.is_empty();
            exif
        }
        Err(reason) => {
            md.warnings.push(format!("EXIF unreadable: {reason}"));
            None
        }
    };

    // A HEIF file's `meta` box, read once: its size and its orientation come from it.
    let heif_meta = match format {
        PhotoFormat::Heif => heif_meta_box(file).unwrap_or_else(|reason| {
            md.warnings.push(format!("no pixel size: {reason}"));
            None
        }),
        _ => None,
    };
    let size_found = match &heif_meta {
        Some(meta) => Ok(heif_size(meta)),
        None => pixel_size(file, format, head),
    };
    match size_found {
        Ok(Some((w, h))) => (md.width, md.height) = (Some(w), Some(h)),
        Ok(None) => {}
        Err(reason) => md.warnings.push(format!("no pixel size: {reason}")),
    }

    let mut embedded_gps = None;
    if let Some(exif) = &exif {
        apply_exif(exif, format, md, &mut embedded_gps);
    }
    // A HEIF file's orientation is its primary item's transforms (see `library::heif`); EXIF's
    // tag counts only where there are none.
    if let Some(Ok(layout)) = heif_meta.as_deref().map(super::heif::layout) {
        if !layout.transforms.is_empty() {
            md.orientation = Some(super::heif::exif_orientation(&layout.transforms));
        }
    }
    if embedded_gps.is_none() && exif_damaged {
        gps_from_lone_ifd(file, format, size, md, &mut embedded_gps);
    }
    // A JPEG's own XMP packet is consulted when EXIF has no GPS or no capture time.
    if format == PhotoFormat::Jpeg && (embedded_gps.is_none() || md.taken_at.is_none()) {
        if let Some(packet) = embedded_jpeg_xmp(head) {
            match parse_xmp(packet) {
                Ok(x) => apply_xmp(
                    &x,
                    "embedded XMP",
                    LocationSource::Exif,
                    md,
                    &mut embedded_gps,
                ),
                Err(e) => md.warnings.push(format!("embedded XMP unreadable: {e}")),
            }
        }
    }
    if format == PhotoFormat::Jpeg && md.taken_at.is_none() {
        md.taken_at = iptc_capture_time(head);
    }
    md.location = embedded_gps.map(|point| Located {
        point,
        source: LocationSource::Exif,
    });
}

struct ExifRead {
    exif: Option<exif::Exif>,
    errors: Vec<String>,
}

fn read_exif(
    file: &mut File,
    format: PhotoFormat,
    head: &[u8],
    size: u64,
) -> std::result::Result<ExifRead, String> {
    let mut reader = exif::Reader::new();
    reader.continue_on_error(true);
    let parse = |result: std::result::Result<exif::Exif, exif::Error>| -> std::result::Result<ExifRead, String> {
        let mut errors = Vec::new();
        match result.or_else(|e| e.distill_partial_result(|errs| errors = errs.iter().map(|e| e.to_string()).collect())) {
            Ok(exif) => Ok(ExifRead { exif: Some(exif), errors }),
            Err(exif::Error::NotFound(_)) => Ok(ExifRead { exif: None, errors }),
            Err(e) => Err(e.to_string()),
        }
    };
    match format {
        // Videos carry no EXIF (`library::video` reads their boxes).
        PhotoFormat::Video => Ok(ExifRead {
            exif: None,
            errors: Vec::new(),
        }),
        PhotoFormat::Tiff | PhotoFormat::Raw => {
            if size > TIFF_MAX_BYTES {
                return Err(format!(
                    "file of {size} bytes is too large to read its TIFF metadata"
                ));
            }
            let first = read_range(file, 0, TIFF_FIRST_TRY_BYTES).map_err(|e| e.to_string())?;
            let first_try = reader.read_raw(normalise_tiff_magic(first));
            if size <= TIFF_FIRST_TRY_BYTES {
                return parse(first_try);
            }
            match first_try {
                Ok(exif) => Ok(ExifRead {
                    exif: Some(exif),
                    errors: Vec::new(),
                }),
                Err(_) => {
                    let whole = read_range(file, 0, size).map_err(|e| e.to_string())?;
                    parse(reader.read_raw(normalise_tiff_magic(whole)))
                }
            }
        }
        PhotoFormat::Raf => {
            // RAF header: the embedded JPEG's offset and length are big-endian u32 at 84 and 88.
            if head.len() < 92 {
                return Err("RAF header truncated".into());
            }
            let offset = u32::from_be_bytes(head[84..88].try_into().unwrap()) as u64;
            let len = u32::from_be_bytes(head[88..92].try_into().unwrap()) as u64;
            if offset >= size || len == 0 {
                return Err("RAF embedded JPEG out of range".into());
            }
            let jpeg = read_range(file, offset, len.min(1 << 20)).map_err(|e| e.to_string())?;
            parse(reader.read_from_container(&mut Cursor::new(jpeg)))
        }
        PhotoFormat::Png | PhotoFormat::Webp => {
            file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
            let mut buffered = BufReader::with_capacity(64 * 1024, &mut *file);
            match parse(reader.read_from_container(&mut buffered)) {
                Ok(r) if r.exif.is_some() && r.errors.is_empty() => Ok(r),
                // Some writers put JPEG's "Exif\0\0" in front of the chunk's TIFF block.
                first => {
                    let whole =
                        read_range(file, 0, size.min(TIFF_MAX_BYTES)).map_err(|e| e.to_string())?;
                    match crate::tagging::containers::exif_block(format, &whole) {
                        Some(block) if block.len() >= 8 => {
                            match parse(reader.read_raw(block.to_vec())) {
                                Ok(r) if r.exif.is_some() => Ok(r),
                                _ => first,
                            }
                        }
                        _ => first,
                    }
                }
            }
        }
        PhotoFormat::Jpeg | PhotoFormat::Heif => {
            file.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
            let mut buffered = BufReader::with_capacity(64 * 1024, &mut *file);
            parse(reader.read_from_container(&mut buffered))
        }
    }
}

/// Where damage elsewhere in the EXIF block (an IFD pointer outside it, or two pointers to one
/// IFD) made the reader drop GPS, reads the GPS IFD on its own, as ExifTool does, with a warning.
fn gps_from_lone_ifd(
    file: &mut File,
    format: PhotoFormat,
    size: u64,
    md: &mut PhotoMetadata,
    gps: &mut Option<GeoPoint>,
) {
    let read_len = match format {
        PhotoFormat::Tiff | PhotoFormat::Raw => size.min(TIFF_MAX_BYTES),
        // The EXIF segment comes before the image data, in the first 64 KiB segments.
        PhotoFormat::Jpeg => size.min(4 << 20),
        _ => return,
    };
    let Ok(data) = read_range(file, 0, read_len) else {
        return;
    };
    let data = match format {
        PhotoFormat::Jpeg => data,
        _ => normalise_tiff_magic(data),
    };
    let Some(alone) = crate::tagging::containers::exif_block(format, &data)
        .and_then(crate::tagging::tiff_gps::gps_ifd_alone)
    else {
        return;
    };
    let mut reader = exif::Reader::new();
    reader.continue_on_error(true);
    let exif = match reader.read_raw(alone) {
        Ok(exif) => exif,
        Err(e) => match e.distill_partial_result(|_| {}) {
            Ok(exif) => exif,
            Err(_) => return,
        },
    };
    let gps_time = md.gps_time_utc;
    apply_exif_gps(&exif, md, gps);
    if md.gps_time_utc.is_none() {
        md.gps_time_utc = gps_time;
    }
    if gps.is_some() {
        md.warnings.push(
            "GPS read from its own IFD: another IFD pointer in the EXIF block is damaged".into(),
        );
    }
}

fn read_range(file: &mut File, offset: u64, len: u64) -> std::io::Result<Vec<u8>> {
    file.seek(SeekFrom::Start(offset))?;
    let mut buf = Vec::new();
    file.take(len).read_to_end(&mut buf)?;
    Ok(buf)
}

/// RW2 and ORF are TIFF with a maker-specific magic number; give the parser the standard one.
fn normalise_tiff_magic(mut data: Vec<u8>) -> Vec<u8> {
    if data.len() >= 4 {
        match &data[0..4] {
            b"IIU\0" | b"IIRO" | b"IIRS" => data[2..4].copy_from_slice(&[0x2A, 0x00]),
            b"MMOR" => data[2..4].copy_from_slice(&[0x00, 0x2A]),
            _ => {}
        }
    }
    data
}

fn ascii(exif: &exif::Exif, tag: Tag) -> Option<String> {
    let field = exif.get_field(tag, In::PRIMARY)?;
    match &field.value {
        Value::Ascii(parts) => {
            let raw = parts.first()?;
            let s = String::from_utf8_lossy(raw);
            let s = s.trim_matches(|c: char| c.is_whitespace() || c == '\0');
            (!s.is_empty()).then(|| s.to_string())
        }
        _ => None,
    }
}

fn ascii_bytes(exif: &exif::Exif, tag: Tag) -> Option<Vec<u8>> {
    match &exif.get_field(tag, In::PRIMARY)?.value {
        Value::Ascii(parts) => parts.first().cloned(),
        _ => None,
    }
}

/// Numeric values of any numeric field type. `0/0` rationals count as 0, as cameras write them
/// for unused minute and second parts; `x/0` is not a number.
fn numbers(value: &Value) -> Option<Vec<f64>> {
    let ratio = |n: f64, d: f64| {
        if d == 0.0 {
            if n == 0.0 {
                0.0
            } else {
                f64::NAN
            }
        } else {
            n / d
        }
    };
    Some(match value {
        Value::Rational(v) => v
            .iter()
            .map(|r| ratio(r.num as f64, r.denom as f64))
            .collect(),
        Value::SRational(v) => v
            .iter()
            .map(|r| ratio(r.num as f64, r.denom as f64))
            .collect(),
        Value::Double(v) => v.clone(),
        Value::Float(v) => v.iter().map(|&f| f as f64).collect(),
        Value::Short(v) => v.iter().map(|&x| x as f64).collect(),
        Value::Long(v) => v.iter().map(|&x| x as f64).collect(),
        Value::Byte(v) => v.iter().map(|&x| x as f64).collect(),
        Value::SLong(v) => v.iter().map(|&x| x as f64).collect(),
        Value::SShort(v) => v.iter().map(|&x| x as f64).collect(),
        _ => return None,
    })
}

fn gps_coordinate(exif: &exif::Exif, tag: Tag, ref_tag: Tag, negative_ref: u8) -> Option<f64> {
    let v = numbers(&exif.get_field(tag, In::PRIMARY)?.value)?;
    let degrees = match v.as_slice() {
        [] => return None,
        [d] => *d,
        [d, m] => dms_to_degrees(*d, *m, 0.0),
        [d, m, s, ..] => dms_to_degrees(*d, *m, *s),
    };
    let negative = ascii_bytes(exif, ref_tag)
        .and_then(|r| r.first().copied())
        .is_some_and(|c| c.to_ascii_uppercase() == negative_ref);
    Some(if negative { -degrees } else { degrees })
}

fn exif_time(
    exif: &exif::Exif,
    main: Tag,
    subsec: Tag,
    offset: Tag,
) -> std::result::Result<Option<CaptureTime>, String> {
    let Some(raw) = ascii_bytes(exif, main) else {
        return Ok(None);
    };
    let mut dt = match exif::DateTime::from_ascii(&raw) {
        Ok(dt) => dt,
        Err(exif::Error::BlankValue(_)) => return Ok(None),
        Err(e) => return Err(format!("{main}: {e}")),
    };
    if let Some(s) = ascii_bytes(exif, subsec) {
        let _ = dt.parse_subsec(&s);
    }
    if let Some(o) = ascii_bytes(exif, offset) {
        let _ = dt.parse_offset(&o);
    }
    if dt.year == 0 && dt.month == 0 && dt.day == 0 {
        return Ok(None); // "0000:00:00 00:00:00" means unset
    }
    let date = NaiveDate::from_ymd_opt(dt.year as i32, dt.month as u32, dt.day as u32);
    let time = NaiveTime::from_hms_nano_opt(
        dt.hour as u32,
        dt.minute as u32,
        dt.second as u32,
        dt.nanosecond.unwrap_or(0),
    );
    match (date, time) {
        (Some(d), Some(t)) => Ok(Some(CaptureTime {
            local: NaiveDateTime::new(d, t),
            offset_minutes: dt.offset.map(|o| o as i32),
        })),
        _ => Err(format!("{main}: impossible date {dt}")),
    }
}

fn apply_exif(
    exif: &exif::Exif,
    format: PhotoFormat,
    md: &mut PhotoMetadata,
    gps: &mut Option<GeoPoint>,
) {
    md.make = ascii(exif, Tag::Make);
    md.model = ascii(exif, Tag::Model);
    if let Some(o) = exif
        .get_field(Tag::Orientation, In::PRIMARY)
        .and_then(|f| f.value.get_uint(0))
    {
        if (1..=8).contains(&o) {
            md.orientation = Some(o as u8);
        } else {
            md.warnings
                .push(format!("orientation {o} is not 1-8; ignored"));
        }
    }
    // Some writers put DateTimeOriginal in IFD0 instead of the EXIF IFD.
    let ifd0_original = Tag(exif::Context::Tiff, Tag::DateTimeOriginal.number());
    let original = match exif_time(
        exif,
        Tag::DateTimeOriginal,
        Tag::SubSecTimeOriginal,
        Tag::OffsetTimeOriginal,
    ) {
        Ok(None) => exif_time(
            exif,
            ifd0_original,
            Tag::SubSecTimeOriginal,
            Tag::OffsetTimeOriginal,
        ),
        other => other,
    };
    let digitized = exif_time(
        exif,
        Tag::DateTimeDigitized,
        Tag::SubSecTimeDigitized,
        Tag::OffsetTimeDigitized,
    );
    md.taken_at = match (original, digitized) {
        (Ok(Some(t)), _) => Some(t),
        (Ok(None), Ok(t)) => t,
        (Err(e), Ok(t)) => {
            md.warnings.push(format!("capture time unreadable: {e}"));
            t
        }
        (Ok(None), Err(e)) => {
            md.warnings.push(format!("capture time unreadable: {e}"));
            None
        }
        (Err(e1), Err(e2)) => {
            md.warnings
                .push(format!("capture time unreadable: {e1}; {e2}"));
            None
        }
    };
    if md.width.is_none() && matches!(format, PhotoFormat::Tiff) {
        let dim = |t| {
            exif.get_field(t, In::PRIMARY)
                .and_then(|f| f.value.get_uint(0))
        };
        if let (Some(w), Some(h)) = (dim(Tag::ImageWidth), dim(Tag::ImageLength)) {
            (md.width, md.height) = (Some(w), Some(h));
        }
    }
    if md.width.is_none() {
        let dim = |t| {
            exif.get_field(t, In::PRIMARY)
                .and_then(|f| f.value.get_uint(0))
        };
        if let (Some(w), Some(h)) = (dim(Tag::PixelXDimension), dim(Tag::PixelYDimension)) {
            if w > 0 && h > 0 {
                (md.width, md.height) = (Some(w), Some(h));
            }
        }
    }
    apply_exif_gps(exif, md, gps);
}

/// The GPS IFD's position and time stamp.
fn apply_exif_gps(exif: &exif::Exif, md: &mut PhotoMetadata, gps: &mut Option<GeoPoint>) {
    let lat = gps_coordinate(exif, Tag::GPSLatitude, Tag::GPSLatitudeRef, b'S');
    let lon = gps_coordinate(exif, Tag::GPSLongitude, Tag::GPSLongitudeRef, b'W');
    let alt = exif
        .get_field(Tag::GPSAltitude, In::PRIMARY)
        .and_then(|f| numbers(&f.value))
        .and_then(|v| v.first().copied())
        .map(|a| {
            let below = exif
                .get_field(Tag::GPSAltitudeRef, In::PRIMARY)
                .and_then(|f| f.value.get_uint(0))
                == Some(1);
            if below {
                -a
            } else {
                a
            }
        });
    match (lat, lon) {
        (Some(lat), Some(lon)) => match GeoPoint::validated(lat, lon, alt) {
            Ok(p) => *gps = Some(p),
            Err(why) => md.warnings.push(format!("EXIF {why}")),
        },
        (Some(_), None) | (None, Some(_)) => md
            .warnings
            .push("EXIF GPS has only one coordinate; ignored".into()),
        (None, None) => {}
    }
    md.gps_time_utc = gps_timestamp(exif);
}

fn gps_timestamp(exif: &exif::Exif) -> Option<NaiveDateTime> {
    let date = String::from_utf8(ascii_bytes(exif, Tag::GPSDateStamp)?).ok()?;
    let date = NaiveDate::parse_from_str(date.trim(), "%Y:%m:%d").ok()?;
    let hms = numbers(&exif.get_field(Tag::GPSTimeStamp, In::PRIMARY)?.value)?;
    if hms.len() < 3 || hms.iter().any(|v| !v.is_finite() || *v < 0.0) {
        return None;
    }
    let secs = hms[0] * 3600.0 + hms[1] * 60.0 + hms[2];
    if secs >= 86_400.0 {
        return None;
    }
    let nanos = (secs * 1e9).round() as i64;
    Some(date.and_hms_opt(0, 0, 0)? + TimeDelta::nanoseconds(nanos))
}

fn apply_xmp(
    x: &XmpData,
    what: &str,
    _source: LocationSource,
    md: &mut PhotoMetadata,
    gps: &mut Option<GeoPoint>,
) {
    if x.has_gps() {
        match GeoPoint::validated(
            x.gps_latitude.unwrap(),
            x.gps_longitude.unwrap(),
            x.gps_altitude,
        ) {
            Ok(p) => {
                if gps.is_none() {
                    *gps = Some(p);
                }
            }
            Err(why) => md.warnings.push(format!("{what} {why}")),
        }
    } else if x.gps_latitude.is_some() != x.gps_longitude.is_some() {
        md.warnings
            .push(format!("{what} GPS has only one coordinate; ignored"));
    }
    if md.taken_at.is_none() {
        md.taken_at = [&x.date_time_original, &x.date_created, &x.create_date]
            .into_iter()
            .find_map(|d| d.as_deref().and_then(CaptureTime::parse_iso));
    }
}

/// Pixel size from the container header, without decoding pixels.
fn pixel_size(
    file: &mut File,
    format: PhotoFormat,
    head: &[u8],
) -> std::result::Result<Option<(u32, u32)>, String> {
    match format {
        PhotoFormat::Jpeg => jpeg_size(file).map(Some),
        PhotoFormat::Png => {
            if head.len() >= 24 && &head[12..16] == b"IHDR" {
                let w = u32::from_be_bytes(head[16..20].try_into().unwrap());
                let h = u32::from_be_bytes(head[20..24].try_into().unwrap());
                Ok(Some((w, h)))
            } else {
                Err("PNG without IHDR".into())
            }
        }
        PhotoFormat::Webp => webp_size(head).map(Some),
        // Read from the `meta` box by the caller.
        PhotoFormat::Heif => Ok(None),
        // TIFF sizes come from IFD0 in apply_exif; RAW sizes from the EXIF pixel dimensions;
        // a video's from its track header (`library::video`).
        PhotoFormat::Tiff | PhotoFormat::Raw | PhotoFormat::Raf | PhotoFormat::Video => Ok(None),
    }
}

/// Walks JPEG segments to the first SOF marker: the frame's size.
pub(crate) fn jpeg_size<R: Read + Seek>(reader: &mut R) -> std::result::Result<(u32, u32), String> {
    jpeg_frame(reader).map(|(w, h, _)| (w, h))
}

/// Walks JPEG segments to the first SOF marker: (width, height, SOF marker). The marker tells
/// baseline (0xC0), extended (0xC1) and progressive (0xC2) from lossless (0xC3) and others.
pub(crate) fn jpeg_frame<R: Read + Seek>(
    reader: &mut R,
) -> std::result::Result<(u32, u32, u8), String> {
    reader.seek(SeekFrom::Start(0)).map_err(|e| e.to_string())?;
    let mut r = BufReader::with_capacity(16 * 1024, reader);
    let mut b2 = [0u8; 2];
    r.read_exact(&mut b2).map_err(|_| "truncated JPEG")?;
    if b2 != [0xFF, 0xD8] {
        return Err("not a JPEG".into());
    }
    for _ in 0..10_000 {
        // Markers may be preceded by fill bytes 0xFF.
        let mut byte = [0u8; 1];
        r.read_exact(&mut byte)
            .map_err(|_| "no frame header before end of file")?;
        if byte[0] != 0xFF {
            return Err("JPEG segment structure broken".into());
        }
        let mut marker = 0xFF;
        while marker == 0xFF {
            r.read_exact(&mut byte).map_err(|_| "truncated JPEG")?;
            marker = byte[0];
        }
        match marker {
            0xD8 | 0x01 | 0xD0..=0xD7 => continue,
            0xD9 | 0xDA => return Err("no frame header before image data".into()),
            _ => {}
        }
        r.read_exact(&mut b2).map_err(|_| "truncated JPEG")?;
        let len = u16::from_be_bytes(b2) as i64;
        if len < 2 {
            return Err("bad JPEG segment length".into());
        }
        let is_sof = matches!(marker, 0xC0..=0xCF) && !matches!(marker, 0xC4 | 0xC8 | 0xCC);
        if is_sof {
            let mut sof = [0u8; 5];
            r.read_exact(&mut sof)
                .map_err(|_| "truncated frame header")?;
            let h = u16::from_be_bytes([sof[1], sof[2]]) as u32;
            let w = u16::from_be_bytes([sof[3], sof[4]]) as u32;
            if w == 0 || h == 0 {
                return Err(format!("frame header says {w}x{h}"));
            }
            return Ok((w, h, marker));
        }
        r.seek_relative(len - 2).map_err(|e| e.to_string())?;
        if r.fill_buf().map_err(|e| e.to_string())?.is_empty() {
            return Err("no frame header before end of file".into());
        }
    }
    Err("too many JPEG segments".into())
}

fn webp_size(head: &[u8]) -> std::result::Result<(u32, u32), String> {
    if head.len() < 30 {
        return Err("WebP header truncated".into());
    }
    let le24 = |b: &[u8]| u32::from_le_bytes([b[0], b[1], b[2], 0]);
    match &head[12..16] {
        b"VP8X" => Ok((le24(&head[24..27]) + 1, le24(&head[27..30]) + 1)),
        b"VP8 " => {
            if head[23..26] != [0x9D, 0x01, 0x2A] {
                return Err("VP8 start code missing".into());
            }
            let w = u16::from_le_bytes([head[26], head[27]]) & 0x3FFF;
            let h = u16::from_le_bytes([head[28], head[29]]) & 0x3FFF;
            Ok((w as u32, h as u32))
        }
        b"VP8L" => {
            if head[20] != 0x2F {
                return Err("VP8L signature missing".into());
            }
            let bits = u32::from_le_bytes(head[21..25].try_into().unwrap());
            Ok(((bits & 0x3FFF) + 1, ((bits >> 14) & 0x3FFF) + 1))
        }
        other => Err(format!(
            "unknown WebP chunk {:?}",
            String::from_utf8_lossy(other)
        )),
    }
}

/// HEIF: the primary item's `ispe` (image spatial extent) in the `meta` box; for grid images
/// that is the whole picture. Files whose primary item has none fall back to the largest `ispe`
/// in `ipco`.
fn heif_size(meta: &[u8]) -> Option<(u32, u32)> {
    if let Ok(super::heif::HeifLayout {
        size: Some(size), ..
    }) = super::heif::layout(meta)
    {
        return Some(size);
    }
    let mut best: Option<(u32, u32)> = None;
    // The box header, then `meta`'s 4 bytes of version and flags, then its children.
    find_ispe(meta.get(12..).unwrap_or(&[]), 0, &mut best);
    best
}

/// The top-level `meta` box, header included (at most 16 MiB of it).
fn heif_meta_box(file: &mut File) -> std::result::Result<Option<Vec<u8>>, String> {
    let len = file.metadata().map_err(|e| e.to_string())?.len();
    let mut pos = 0u64;
    while pos + 8 <= len {
        let (kind, header, size) = box_header(file, pos, len)?;
        if &kind == b"meta" {
            let body = read_range(file, pos + header, (size - header).min(16 << 20))
                .map_err(|e| e.to_string())?;
            let mut boxed = Vec::with_capacity(body.len() + 8);
            boxed.extend_from_slice(&((body.len() + 8) as u32).to_be_bytes());
            boxed.extend_from_slice(b"meta");
            boxed.extend_from_slice(&body);
            return Ok(Some(boxed));
        }
        pos += size;
    }
    Ok(None)
}

fn box_header(
    file: &mut File,
    pos: u64,
    file_len: u64,
) -> std::result::Result<([u8; 4], u64, u64), String> {
    let h = read_range(file, pos, 16).map_err(|e| e.to_string())?;
    if h.len() < 8 {
        return Err("truncated box".into());
    }
    let kind: [u8; 4] = h[4..8].try_into().unwrap();
    let size32 = u32::from_be_bytes(h[0..4].try_into().unwrap()) as u64;
    let (header, size) = match size32 {
        0 => (8, file_len - pos),
        1 if h.len() >= 16 => (16, u64::from_be_bytes(h[8..16].try_into().unwrap())),
        s => (8, s),
    };
    if size < header || size > file_len - pos {
        return Err(format!(
            "box {:?} overruns the file",
            String::from_utf8_lossy(&kind)
        ));
    }
    Ok((kind, header, size))
}

fn find_ispe(data: &[u8], depth: u32, best: &mut Option<(u32, u32)>) {
    if depth > 4 {
        return;
    }
    let mut pos = 0usize;
    while pos + 8 <= data.len() {
        let size = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        let kind = &data[pos + 4..pos + 8];
        if size < 8 || pos + size > data.len() {
            return;
        }
        let body = &data[pos + 8..pos + size];
        match kind {
            b"iprp" | b"ipco" => find_ispe(body, depth + 1, best),
            b"ispe" if body.len() >= 12 => {
                let w = u32::from_be_bytes(body[4..8].try_into().unwrap());
                let h = u32::from_be_bytes(body[8..12].try_into().unwrap());
                if best.is_none_or(|(bw, bh)| (w as u64 * h as u64) > (bw as u64 * bh as u64)) {
                    *best = Some((w, h));
                }
            }
            _ => {}
        }
        pos += size;
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sampled_hash_sees_head_tail_and_size() {
        let mut data = vec![7u8; 1_000_000];
        let h = |d: &Vec<u8>| content_hash(&mut Cursor::new(d.clone()), d.len() as u64).unwrap();
        let base = h(&data);
        data[10] = 8;
        let head_changed = h(&data);
        assert_ne!(base, head_changed);
        data[999_999] = 9;
        assert_ne!(head_changed, h(&data));
        data.push(0);
        assert_ne!(h(&data[..1_000_000].to_vec()), h(&data));
    }
}
