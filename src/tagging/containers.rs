//! Putting a GPS position into (or taking it out of) a photo's own metadata: the EXIF of a JPEG,
//! a TIFF, a PNG (eXIf chunk) or an extended WebP (EXIF chunk). Each writer changes only the
//! metadata container and, where the container says how long it is, its length; every other byte
//! (image data, ICC profiles, XMP, IPTC, thumbnails, MakerNotes) stays where it was.

use super::tiff_gps::{check_structure, set_gps, set_gps_in_place};
use crate::geo::GeoPoint;
use crate::library::PhotoFormat;

/// Formats whose pixels or metadata live in containers Pinpoint writes itself.
pub fn can_embed(format: PhotoFormat) -> bool {
    matches!(
        format,
        PhotoFormat::Jpeg | PhotoFormat::Tiff | PhotoFormat::Png | PhotoFormat::Webp
    )
}

/// Why a file's own metadata could not take the position.
#[derive(Debug, Clone, PartialEq)]
pub enum EmbedError {
    /// A valid file Pinpoint does not write into (a sidecar takes the location).
    Unsupported(String),
    /// The file's structure is damaged: nothing is written.
    Damaged(String),
}

impl std::fmt::Display for EmbedError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            EmbedError::Unsupported(s) | EmbedError::Damaged(s) => f.write_str(s),
        }
    }
}

/// The file's bytes with the GPS position set (`Some`) or removed (`None`).
pub fn embed(
    format: PhotoFormat,
    original: &[u8],
    point: Option<&GeoPoint>,
) -> Result<Vec<u8>, EmbedError> {
    let result = match format {
        PhotoFormat::Jpeg => jpeg(original, point),
        PhotoFormat::Tiff => check_structure(original).and_then(|()| {
            let mut out = original.to_vec();
            set_gps(&mut out, point).map(|()| out)
        }),
        PhotoFormat::Png => png(original, point),
        PhotoFormat::Webp => webp(original, point),
        other => {
            return Err(EmbedError::Unsupported(format!(
                "no safe embedded writer for {} files",
                other.as_str()
            )))
        }
    };
    // Writers say "a sidecar is used instead" for valid files they leave alone; anything else is
    // a damaged structure.
    result.map_err(|e| {
        if e.contains("sidecar is used instead") {
            EmbedError::Unsupported(e)
        } else {
            EmbedError::Damaged(e)
        }
    })
}

/// JPEG segments before the image data: (marker, start of the marker, end of the segment).
fn jpeg_segments(data: &[u8]) -> Result<Vec<(u8, usize, usize)>, String> {
    if !data.starts_with(&[0xFF, 0xD8]) {
        return Err("not a JPEG".into());
    }
    let mut out = Vec::new();
    let mut pos = 2;
    loop {
        if pos + 4 > data.len() {
            return Err("JPEG ends before its image data".into());
        }
        if data[pos] != 0xFF {
            return Err(format!("JPEG segment structure broken at byte {pos}"));
        }
        let marker = data[pos + 1];
        if marker == 0xFF {
            pos += 1;
            continue;
        }
        if marker == 0xDA {
            return Ok(out); // start of scan: the image data follows
        }
        if marker == 0xD9 {
            return Err("JPEG has no image data".into());
        }
        let len = u16::from_be_bytes([data[pos + 2], data[pos + 3]]) as usize;
        let end = pos + 2 + len;
        if len < 2 || end > data.len() {
            return Err(format!("JPEG segment at byte {pos} overruns the file"));
        }
        out.push((marker, pos, end));
        pos = end;
    }
}

const EXIF_HEADER: &[u8] = b"Exif\0\0";

/// An AFCP trailer (written by some newsroom software) records absolute file offsets, which a
/// growing EXIF segment would shift.
fn has_afcp_trailer(data: &[u8]) -> bool {
    data.len() >= 12
        && data[data.len().saturating_sub(4096)..]
            .windows(4)
            .any(|w| w == b"AXS!" || w == b"AXS*")
}

/// No EXIF to extend: adding a whole new EXIF block means inventing the tags validators require
/// (resolution, ...), so the location goes to a sidecar.
const NO_EXIF: &str = "the file has no EXIF block to add GPS to (a sidecar is used instead)";

fn jpeg(original: &[u8], point: Option<&GeoPoint>) -> Result<Vec<u8>, String> {
    let segments = jpeg_segments(original)?;
    let exif = segments
        .iter()
        .find(|(m, s, e)| *m == 0xE1 && original[s + 4..*e].starts_with(EXIF_HEADER));
    let (insert_at, replace_end, tiff) = match exif {
        Some(&(_, start, end)) => {
            if has_afcp_trailer(original) {
                return Err(
                    "an AFCP trailer holds absolute offsets (a sidecar is used instead)".into(),
                );
            }
            let block = &original[start + 4 + EXIF_HEADER.len()..end];
            check_structure(block)?;
            // A GPS IFD that is already there takes the new position in place: the segment
            // keeps its length (it may be near its 64 KB limit) and the old position is gone.
            let mut tiff = block.to_vec();
            if !point.is_some_and(|p| set_gps_in_place(&mut tiff, p).is_ok()) {
                tiff = block.to_vec();
                set_gps(&mut tiff, point)?;
            }
            (start, end, tiff)
        }
        None if point.is_none() => return Ok(original.to_vec()), // nothing to remove
        None => return Err(NO_EXIF.into()),
    };
    let seg_len = 2 + EXIF_HEADER.len() + tiff.len();
    if seg_len > 0xFFFF {
        return Err("the EXIF segment would exceed 64 KB (a sidecar is used instead)".into());
    }
    let mut out = Vec::with_capacity(original.len() + 512);
    out.extend_from_slice(&original[..insert_at]);
    out.extend_from_slice(&[0xFF, 0xE1]);
    out.extend_from_slice(&(seg_len as u16).to_be_bytes());
    out.extend_from_slice(EXIF_HEADER);
    out.extend_from_slice(&tiff);
    out.extend_from_slice(&original[replace_end..]);
    Ok(out)
}

/// CRC-32 (ISO 3309, as PNG uses).
pub fn crc32(data: &[u8]) -> u32 {
    static TABLE: std::sync::OnceLock<[u32; 256]> = std::sync::OnceLock::new();
    let table = TABLE.get_or_init(|| {
        let mut t = [0u32; 256];
        for (n, slot) in t.iter_mut().enumerate() {
            let mut c = n as u32;
            for _ in 0..8 {
                c = if c & 1 != 0 {
                    0xEDB8_8320 ^ (c >> 1)
                } else {
                    c >> 1
                };
            }
            *slot = c;
        }
        t
    });
    let mut crc = 0xFFFF_FFFFu32;
    for &b in data {
        crc = table[((crc ^ b as u32) & 0xFF) as usize] ^ (crc >> 8);
    }
    !crc
}

/// PNG chunks: (type, start of the chunk, end of the chunk).
fn png_chunks(data: &[u8]) -> Result<Vec<([u8; 4], usize, usize)>, String> {
    if !data.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Err("not a PNG".into());
    }
    let mut out = Vec::new();
    let mut pos = 8;
    while pos < data.len() {
        if pos + 12 > data.len() {
            return Err("PNG chunk truncated".into());
        }
        let len = u32::from_be_bytes(data[pos..pos + 4].try_into().unwrap()) as usize;
        let kind: [u8; 4] = data[pos + 4..pos + 8].try_into().unwrap();
        let end = pos
            .checked_add(12 + len)
            .filter(|&e| e <= data.len())
            .ok_or("PNG chunk overruns the file")?;
        out.push((kind, pos, end));
        pos = end;
        if &kind == b"IEND" {
            break;
        }
    }
    Ok(out)
}

fn png_chunk(kind: &[u8; 4], body: &[u8]) -> Vec<u8> {
    let mut c = Vec::with_capacity(body.len() + 12);
    c.extend_from_slice(&(body.len() as u32).to_be_bytes());
    c.extend_from_slice(kind);
    c.extend_from_slice(body);
    let crc = crc32(&c[4..]);
    c.extend_from_slice(&crc.to_be_bytes());
    c
}

fn png(original: &[u8], point: Option<&GeoPoint>) -> Result<Vec<u8>, String> {
    let chunks = png_chunks(original)?;
    let exif = chunks.iter().find(|(k, _, _)| k == b"eXIf");
    let (at, end, body) = match exif {
        Some(&(_, start, end)) => {
            let data = &original[start + 8..end - 4];
            // Some writers keep JPEG's "Exif\0\0" in front of the TIFF block.
            let prefix = if data.starts_with(EXIF_HEADER) {
                EXIF_HEADER.len()
            } else {
                0
            };
            let mut tiff = data[prefix..].to_vec();
            check_structure(&tiff)?;
            set_gps(&mut tiff, point)?;
            let mut body = data[..prefix].to_vec();
            body.extend_from_slice(&tiff);
            (start, end, body)
        }
        None if point.is_none() => return Ok(original.to_vec()),
        None => return Err(NO_EXIF.into()),
    };
    let mut out = Vec::with_capacity(original.len() + 512);
    out.extend_from_slice(&original[..at]);
    out.extend_from_slice(&png_chunk(b"eXIf", &body));
    out.extend_from_slice(&original[end..]);
    Ok(out)
}

/// RIFF chunks of a WebP: (FourCC, start of the chunk, end including padding).
fn webp_chunks(data: &[u8]) -> Result<Vec<([u8; 4], usize, usize)>, String> {
    if data.len() < 12 || &data[0..4] != b"RIFF" || &data[8..12] != b"WEBP" {
        return Err("not a WebP".into());
    }
    let riff_end =
        (8 + u32::from_le_bytes(data[4..8].try_into().unwrap()) as usize).min(data.len());
    let mut out = Vec::new();
    let mut pos = 12;
    while pos + 8 <= riff_end {
        let kind: [u8; 4] = data[pos..pos + 4].try_into().unwrap();
        let len = u32::from_le_bytes(data[pos + 4..pos + 8].try_into().unwrap()) as usize;
        let end = pos
            .checked_add(8 + len + (len & 1))
            .ok_or("WebP chunk overruns the file")?;
        if end > riff_end + (len & 1) {
            return Err("WebP chunk overruns the file".into());
        }
        out.push((kind, pos, end.min(riff_end)));
        pos = end;
    }
    Ok(out)
}

fn webp(original: &[u8], point: Option<&GeoPoint>) -> Result<Vec<u8>, String> {
    let chunks = webp_chunks(original)?;
    let vp8x = chunks
        .iter()
        .find(|(k, _, _)| k == b"VP8X")
        .ok_or("simple WebP without extended header (a sidecar is used instead)")?;
    let exif = chunks.iter().find(|(k, _, _)| k == b"EXIF");
    let (at, end, body) = match exif {
        Some(&(_, start, end)) => {
            let len =
                u32::from_le_bytes(original[start + 4..start + 8].try_into().unwrap()) as usize;
            let data = &original[start + 8..start + 8 + len];
            let prefix = if data.starts_with(EXIF_HEADER) {
                EXIF_HEADER.len()
            } else {
                0
            };
            let mut tiff = data[prefix..].to_vec();
            check_structure(&tiff)?;
            set_gps(&mut tiff, point)?;
            let mut body = data[..prefix].to_vec();
            body.extend_from_slice(&tiff);
            (start, end, body)
        }
        None if point.is_none() => return Ok(original.to_vec()),
        None => return Err(NO_EXIF.into()),
    };
    let mut chunk = Vec::with_capacity(body.len() + 9);
    chunk.extend_from_slice(b"EXIF");
    chunk.extend_from_slice(&(body.len() as u32).to_le_bytes());
    chunk.extend_from_slice(&body);
    if body.len() % 2 == 1 {
        chunk.push(0);
    }
    let mut out = Vec::with_capacity(original.len() + 512);
    out.extend_from_slice(&original[..at]);
    out.extend_from_slice(&chunk);
    out.extend_from_slice(&original[end..]);
    // VP8X flags: the EXIF bit (0x08) says whether an EXIF chunk is present.
    let flags = vp8x.1 + 8;
    out[flags] |= 0x08;
    let riff = u32::try_from(out.len() - 8).map_err(|_| "WebP too large")?;
    out[4..8].copy_from_slice(&riff.to_le_bytes());
    Ok(out)
}

/// The TIFF block of a JPEG's EXIF segment, a PNG's eXIf or a WebP's EXIF chunk (without the
/// "Exif\0\0" in front of it), or a whole TIFF file.
pub fn exif_block(format: PhotoFormat, data: &[u8]) -> Option<&[u8]> {
    let body = match format {
        PhotoFormat::Jpeg => {
            let (_, s, e) = jpeg_segments(data)
                .ok()?
                .into_iter()
                .find(|(m, s, e)| *m == 0xE1 && data[s + 4..*e].starts_with(EXIF_HEADER))?;
            &data[s + 4..e]
        }
        PhotoFormat::Tiff | PhotoFormat::Raw => data,
        PhotoFormat::Png => {
            let (_, s, e) = png_chunks(data)
                .ok()?
                .into_iter()
                .find(|(k, _, _)| k == b"eXIf")?;
            &data[s + 8..e - 4]
        }
        PhotoFormat::Webp => {
            let (_, s, _) = webp_chunks(data)
                .ok()?
                .into_iter()
                .find(|(k, _, _)| k == b"EXIF")?;
            let len = u32::from_le_bytes(data[s + 4..s + 8].try_into().ok()?) as usize;
            data.get(s + 8..s + 8 + len)?
        }
        _ => return None,
    };
    Some(body.strip_prefix(EXIF_HEADER).unwrap_or(body))
}

/// Where a format's compressed image data begins (for byte-identity checks): JPEG's first scan,
/// the whole file otherwise (callers compare per format).
pub fn jpeg_image_data_start(data: &[u8]) -> Option<usize> {
    let segments = jpeg_segments(data).ok()?;
    Some(segments.last().map(|s| s.2).unwrap_or(2))
}

/// The parts of a file that must not change when its GPS does: JPEG segments other than the EXIF
/// one and everything from the first scan; PNG chunks other than eXIf; WebP chunks other than
/// EXIF and VP8X. `None` for TIFF (the caller compares bytes outside the patched header).
pub fn untouched_parts(format: PhotoFormat, data: &[u8]) -> Option<Vec<Vec<u8>>> {
    match format {
        PhotoFormat::Jpeg => {
            let segs = jpeg_segments(data).ok()?;
            let mut parts: Vec<Vec<u8>> = segs
                .iter()
                .filter(|(m, s, e)| !(*m == 0xE1 && data[s + 4..*e].starts_with(EXIF_HEADER)))
                .map(|(_, s, e)| data[*s..*e].to_vec())
                .collect();
            parts.push(data[segs.last().map(|s| s.2).unwrap_or(2)..].to_vec());
            Some(parts)
        }
        PhotoFormat::Png => Some(
            png_chunks(data)
                .ok()?
                .iter()
                .filter(|(k, _, _)| k != b"eXIf")
                .map(|(_, s, e)| data[*s..*e].to_vec())
                .collect(),
        ),
        PhotoFormat::Webp => Some(
            webp_chunks(data)
                .ok()?
                .iter()
                .filter(|(k, _, _)| k != b"EXIF" && k != b"VP8X")
                .map(|(_, s, e)| data[*s..*e].to_vec())
                .collect(),
        ),
        _ => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn crc_matches_the_png_specification_example() {
        assert_eq!(crc32(b"IEND"), 0xAE42_6082);
    }

    #[test]
    fn files_without_exif_go_to_sidecars_and_broken_ones_are_refused() {
        let mut jpg = Vec::new();
        image::RgbImage::new(8, 8)
            .write_to(
                &mut std::io::Cursor::new(&mut jpg),
                image::ImageFormat::Jpeg,
            )
            .unwrap();
        let p = GeoPoint::new(10.5, -20.25);
        assert!(matches!(
            embed(PhotoFormat::Jpeg, &jpg, Some(&p)),
            Err(EmbedError::Unsupported(_))
        ));
        assert_eq!(
            embed(PhotoFormat::Jpeg, &jpg, None).unwrap(),
            jpg,
            "clearing nothing changes nothing"
        );
        assert!(matches!(
            embed(PhotoFormat::Jpeg, b"not a jpeg", Some(&p)),
            Err(EmbedError::Damaged(_))
        ));
        let mut png_bytes = Vec::new();
        image::RgbImage::new(8, 8)
            .write_to(
                &mut std::io::Cursor::new(&mut png_bytes),
                image::ImageFormat::Png,
            )
            .unwrap();
        assert!(matches!(
            embed(PhotoFormat::Png, &png_bytes, Some(&p)),
            Err(EmbedError::Unsupported(_))
        ));
    }

    #[test]
    fn png_exif_chunk_is_rewritten_in_place() {
        let mut png_bytes = Vec::new();
        image::RgbImage::new(8, 8)
            .write_to(
                &mut std::io::Cursor::new(&mut png_bytes),
                image::ImageFormat::Png,
            )
            .unwrap();
        // Give it an eXIf chunk first (before IDAT), as cameras and editors write it.
        let chunks = png_chunks(&png_bytes).unwrap();
        let idat = chunks.iter().find(|c| &c.0 == b"IDAT").unwrap().1;
        let mut with_exif = png_bytes[..idat].to_vec();
        with_exif.extend_from_slice(&png_chunk(b"eXIf", b"II*\0\x08\0\0\0\0\0\0\0\0\0"));
        with_exif.extend_from_slice(&png_bytes[idat..]);
        let out = embed(PhotoFormat::Png, &with_exif, Some(&GeoPoint::new(1.0, 2.0))).unwrap();
        assert!(image::load_from_memory(&out).is_ok(), "still a valid PNG");
        assert_eq!(
            untouched_parts(PhotoFormat::Png, &with_exif),
            untouched_parts(PhotoFormat::Png, &out)
        );
        assert!(exif_block(PhotoFormat::Png, &out).unwrap().len() > 14);
    }
}
