//! Decoding a photo's pixels, upright (EXIF orientation applied), for thumbnails and the model.
//!
//! JPEG, PNG, TIFF and WebP are decoded directly, HEIF/HEIC and AVIF through libheif
//! ([`super::heif`]) in a child process, videos by a poster frame from ffmpeg
//! ([`super::video::poster_frame`]). TIFF-based RAW files are decoded from the
//! largest JPEG preview they embed, as photo organizers do. Every decode runs under memory
//! limits, so a forged header (20000 x 20000) is refused instead of exhausting memory, and inside
//! [`crate::contain::contain`], so a decoder bug costs one file.

use std::io::{BufReader, Cursor};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits, RgbImage};

use super::format::{sniff, PhotoFormat};
use super::metadata::jpeg_frame;
use crate::contain::contain;
use crate::error::{Error, IoContext, Result};

/// Largest allocation a single decode may make.
pub const MAX_DECODE_BYTES: u64 = 768 * 1024 * 1024;
/// Largest side accepted.
pub const MAX_SIDE: u32 = 40_000;

pub(super) fn limits() -> Limits {
    let mut l = Limits::default();
    l.max_image_width = Some(MAX_SIDE);
    l.max_image_height = Some(MAX_SIDE);
    l.max_alloc = Some(MAX_DECODE_BYTES);
    l
}

fn image_format(f: PhotoFormat) -> Option<ImageFormat> {
    Some(match f {
        PhotoFormat::Jpeg => ImageFormat::Jpeg,
        PhotoFormat::Png => ImageFormat::Png,
        PhotoFormat::Tiff => ImageFormat::Tiff,
        PhotoFormat::Webp => ImageFormat::WebP,
        _ => return None,
    })
}

/// Decodes `path` upright. `orientation` (EXIF 1..=8) overrides what the decoder finds, so the
/// catalog's reading wins where a decoder cannot parse the EXIF.
pub fn decode_upright(path: &Path, orientation: Option<u8>) -> Result<DynamicImage> {
    match contain(|| decode_inner(path, orientation)) {
        Ok(r) => r,
        Err(panic) => Err(Error::decode(path, format!("decoder crashed: {panic}"))),
    }
}

fn decode_inner(path: &Path, orientation: Option<u8>) -> Result<DynamicImage> {
    // A video is not read whole (it can be gigabytes): ffmpeg reads what it needs.
    if is_video(path)? {
        return super::video::poster_frame(path);
    }
    let bytes = std::fs::read(path).at(path)?;
    let format = match (sniff(&bytes), super::format::format_from_extension(path)) {
        // TIFF-based RAW: decode the preview the camera embedded, not IFD0's thumbnail.
        (Some(PhotoFormat::Tiff), Some(PhotoFormat::Raw)) => PhotoFormat::Raw,
        (Some(f), _) => f,
        (None, _) => {
            return Err(Error::decode(
                path,
                "not a JPEG, PNG, TIFF, WebP, HEIF/AVIF or RAW file",
            ))
        }
    };
    match format {
        PhotoFormat::Raw | PhotoFormat::Raf => {
            // The largest preview that decodes; a damaged one falls back to the next.
            let previews = embedded_jpeg_previews(&bytes);
            let mut failures = Vec::new();
            for (start, (w, h)) in &previews {
                match decode_bytes(path, &bytes[*start..], PhotoFormat::Jpeg, orientation) {
                    Ok(img) => return Ok(img),
                    Err(e) => failures.push(format!("{w}x{h} preview at byte {start}: {e}")),
                }
            }
            Err(match failures.is_empty() {
                true => Error::decode(path, "RAW file has no embedded JPEG preview"),
                false => Error::decode(
                    path,
                    format!("no embedded JPEG preview decodes ({})", failures.join("; ")),
                ),
            })
        }
        PhotoFormat::Heif => decode_heif_in_child(&bytes, orientation)
            .map_err(|e| Error::decode(path, format!("HEIF: {e}"))),
        f => decode_bytes(path, &bytes, f, orientation),
    }
}

/// Whether the file at `path` is a video, by its first bytes (or its extension when they say
/// nothing).
fn is_video(path: &Path) -> Result<bool> {
    use std::io::Read;
    let mut head = Vec::with_capacity(256);
    std::fs::File::open(path)
        .and_then(|f| f.take(256).read_to_end(&mut head))
        .at(path)?;
    Ok(match sniff(&head) {
        Some(f) => f == PhotoFormat::Video,
        None => super::format::format_from_extension(path) == Some(PhotoFormat::Video),
    })
}

/// How long one HEIF decode may take before its process is stopped (a 48-megapixel grid image
/// decodes in a few seconds on two cores).
const HEIF_DECODE_TIMEOUT: std::time::Duration = std::time::Duration::from_secs(90);

/// libheif and its HEVC/AV1 codecs are C and C++ fed untrusted files: they decode in a child
/// process ([`crate::contain::in_child`]), so a crash inside them refuses this file and nothing
/// else. The pixels come back as width, height (little-endian u32) and RGB rows.
fn decode_heif_in_child(
    bytes: &[u8],
    orientation: Option<u8>,
) -> std::result::Result<DynamicImage, String> {
    let answer = crate::contain::in_child(HEIF_DECODE_TIMEOUT, || {
        let img = super::heif::decode(bytes, orientation, MAX_SIDE, MAX_DECODE_BYTES)?.to_rgb8();
        let mut out = Vec::with_capacity(8 + img.as_raw().len());
        out.extend_from_slice(&img.width().to_le_bytes());
        out.extend_from_slice(&img.height().to_le_bytes());
        out.extend_from_slice(img.as_raw());
        Ok(out)
    })?;
    let size = |at: usize| {
        answer
            .get(at..at + 4)
            .map(|b| u32::from_le_bytes(b.try_into().unwrap()))
    };
    let (w, h) = size(0)
        .zip(size(4))
        .ok_or("the decoder process sent no image size")?;
    RgbImage::from_raw(w, h, answer[8..].to_vec())
        .map(DynamicImage::ImageRgb8)
        .ok_or_else(|| {
            format!(
                "the decoder process sent {} bytes for a {w}x{h} image",
                answer.len() - 8
            )
        })
}

fn decode_bytes(
    path: &Path,
    bytes: &[u8],
    format: PhotoFormat,
    orientation: Option<u8>,
) -> Result<DynamicImage> {
    let fmt =
        image_format(format).ok_or_else(|| Error::decode(path, "no decoder for this format"))?;
    let mut reader = ImageReader::with_format(BufReader::new(Cursor::new(bytes)), fmt);
    reader.limits(limits());
    let mut decoder = reader
        .into_decoder()
        .map_err(|e| Error::decode(path, e.to_string()))?;
    let found = decoder.orientation().ok();
    let (w, h) = decoder.dimensions();
    if w == 0 || h == 0 {
        return Err(Error::decode(path, format!("image is {w}x{h}")));
    }
    let mut img =
        DynamicImage::from_decoder(decoder).map_err(|e| Error::decode(path, e.to_string()))?;
    let orientation = orientation
        .and_then(image::metadata::Orientation::from_exif)
        .or(found)
        .unwrap_or(image::metadata::Orientation::NoTransforms);
    img.apply_orientation(orientation);
    Ok(img)
}

/// The embedded baseline, extended or progressive JPEGs that end, largest first: (offset,
/// (width, height)). Lossless JPEG (SOF3) and other frame kinds are a RAW file's sensor data,
/// not a preview.
pub fn embedded_jpeg_previews(bytes: &[u8]) -> Vec<(usize, (u32, u32))> {
    let mut found = Vec::new();
    let mut pos = 0;
    while let Some(i) = find(&bytes[pos..], &[0xFF, 0xD8, 0xFF]) {
        let start = pos + i;
        if let Ok((w, h, 0xC0..=0xC2)) = jpeg_frame(&mut Cursor::new(&bytes[start..])) {
            // A preview cut off before its end-of-image marker decodes to grey rows: skip it.
            // (In entropy-coded data 0xFF is always followed by 0x00, so the marker is real.)
            if find(&bytes[start..], &[0xFF, 0xD9]).is_some() {
                found.push((start, (w, h)));
            }
        }
        pos = start + 3;
    }
    // Stable: of two previews the same size, the first in the file.
    found.sort_by_key(|(_, (w, h))| std::cmp::Reverse(*w as u64 * *h as u64));
    found
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn jpeg(w: u32, h: u32) -> Vec<u8> {
        let mut out = Vec::new();
        DynamicImage::new_rgb8(w, h)
            .write_to(&mut Cursor::new(&mut out), ImageFormat::Jpeg)
            .unwrap();
        out
    }

    /// A lossless (SOF3) frame header, as CR2 and DNG files store their sensor data.
    fn lossless_frame(w: u16, h: u16) -> Vec<u8> {
        let mut out = vec![0xFF, 0xD8, 0xFF, 0xC3, 0x00, 0x0B, 0x0C];
        out.extend_from_slice(&h.to_be_bytes());
        out.extend_from_slice(&w.to_be_bytes());
        out.extend_from_slice(&[0x01, 0x01, 0x11, 0x00]);
        out.extend_from_slice(&[0u8; 64]);
        out
    }

    #[test]
    fn previews_are_jpegs_largest_first_never_lossless_sensor_data() {
        let (small, big) = (jpeg(8, 6), jpeg(64, 48));
        let mut raw = b"IIU\0junkjunk".to_vec();
        raw.extend_from_slice(&small);
        raw.extend_from_slice(&lossless_frame(6000, 4000));
        raw.extend_from_slice(b"more");
        let at = raw.len();
        raw.extend_from_slice(&big);
        // A larger preview cut off by the end of the file.
        let cut = jpeg(640, 480);
        raw.extend_from_slice(&cut[..cut.len() - 100]);
        assert_eq!(
            embedded_jpeg_previews(&raw),
            vec![(at, (64, 48)), (12, (8, 6))]
        );
        assert!(embedded_jpeg_previews(b"no jpeg here").is_empty());
    }

    #[test]
    fn a_preview_that_does_not_decode_falls_back_to_the_next() {
        let dir = tempfile::tempdir().unwrap();
        let mut raw = b"II*\0\x08\0\0\0".to_vec();
        raw.extend_from_slice(&jpeg(40, 30));
        // A larger preview whose frame header claims a sample precision no decoder reads.
        let mut broken = jpeg(320, 240);
        let sof = broken.windows(2).position(|w| w == [0xFF, 0xC0]).unwrap();
        broken[sof + 4] = 16;
        raw.extend_from_slice(&broken);
        let path = dir.path().join("camera.nef");
        std::fs::write(&path, &raw).unwrap();
        let img = decode_upright(&path, Some(1)).unwrap();
        assert_eq!((img.width(), img.height()), (40, 30));

        std::fs::write(&path, &raw[..8]).unwrap();
        let err = decode_upright(&path, Some(1)).unwrap_err().to_string();
        assert!(
            err.contains("camera.nef") && err.contains("no embedded JPEG preview"),
            "{err}"
        );
    }
}
