//! Decoding a photo's pixels, upright (EXIF orientation applied), for thumbnails and the model.
//!
//! JPEG, PNG, TIFF and WebP are decoded directly. TIFF-based RAW files are decoded from the
//! largest JPEG preview they embed, as photo organizers do. Every decode runs under memory
//! limits, so a forged header (20000 x 20000) is refused instead of exhausting memory, and inside
//! [`crate::contain::contain`], so a decoder bug costs one file.

use std::io::{BufReader, Cursor};
use std::path::Path;

use image::{DynamicImage, ImageDecoder, ImageFormat, ImageReader, Limits};

use super::format::{sniff, PhotoFormat};
use super::metadata::jpeg_size;
use crate::contain::contain;
use crate::error::{Error, IoContext, Result};

/// Largest allocation a single decode may make.
pub const MAX_DECODE_BYTES: u64 = 768 * 1024 * 1024;
/// Largest side accepted.
pub const MAX_SIDE: u32 = 40_000;

fn limits() -> Limits {
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
    let bytes = std::fs::read(path).at(path)?;
    let format = match (sniff(&bytes), super::format::format_from_extension(path)) {
        // TIFF-based RAW: decode the preview the camera embedded, not IFD0's thumbnail.
        (Some(PhotoFormat::Tiff), Some(PhotoFormat::Raw)) => PhotoFormat::Raw,
        (Some(f), _) => f,
        (None, _) => {
            return Err(Error::decode(
                path,
                "not a JPEG, PNG, TIFF, WebP or RAW file",
            ))
        }
    };
    match format {
        PhotoFormat::Raw | PhotoFormat::Raf => {
            let (start, _) = largest_embedded_jpeg(&bytes)
                .ok_or_else(|| Error::decode(path, "RAW file has no embedded JPEG preview"))?;
            decode_bytes(path, &bytes[start..], PhotoFormat::Jpeg, orientation)
        }
        PhotoFormat::Heif => Err(Error::Unsupported {
            path: path.to_path_buf(),
            reason: "HEIF/HEIC pixels are not decoded by this build (metadata is read)".into(),
        }),
        f => decode_bytes(path, &bytes, f, orientation),
    }
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

/// Finds the embedded JPEG with the most pixels: (offset, (width, height)).
pub fn largest_embedded_jpeg(bytes: &[u8]) -> Option<(usize, (u32, u32))> {
    let mut best: Option<(usize, (u32, u32))> = None;
    let mut pos = 0;
    while let Some(i) = find(&bytes[pos..], &[0xFF, 0xD8, 0xFF]) {
        let start = pos + i;
        if let Ok((w, h)) = jpeg_size(&mut Cursor::new(&bytes[start..])) {
            let area = w as u64 * h as u64;
            if best.is_none_or(|(_, (bw, bh))| area > bw as u64 * bh as u64) {
                best = Some((start, (w, h)));
            }
        }
        pos = start + 3;
    }
    best
}

fn find(haystack: &[u8], needle: &[u8]) -> Option<usize> {
    haystack.windows(needle.len()).position(|w| w == needle)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_largest_embedded_jpeg() {
        let mut small = Vec::new();
        DynamicImage::new_rgb8(8, 6)
            .write_to(&mut Cursor::new(&mut small), ImageFormat::Jpeg)
            .unwrap();
        let mut big = Vec::new();
        DynamicImage::new_rgb8(64, 48)
            .write_to(&mut Cursor::new(&mut big), ImageFormat::Jpeg)
            .unwrap();
        let mut raw = b"IIU\0junkjunk".to_vec();
        raw.extend_from_slice(&small);
        raw.extend_from_slice(b"more");
        let at = raw.len();
        raw.extend_from_slice(&big);
        assert_eq!(largest_embedded_jpeg(&raw), Some((at, (64, 48))));
        assert_eq!(largest_embedded_jpeg(b"no jpeg here"), None);
    }
}
