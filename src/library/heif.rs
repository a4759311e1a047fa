//! HEIF/HEIC and AVIF: the primary image's pixels through the system libheif, and the parts of the
//! box structure the catalog needs without decoding (the primary item's size and transforms).
//!
//! libheif applies the primary item's own transforms (`irot`, `imir`, `clap`) and assembles grid
//! images from their tiles. Those transforms are the file's orientation: phones also write an EXIF
//! Orientation tag, which the HEIF specification says readers ignore (Apple's agrees with `irot`,
//! Nokia's says 1 while `irot` says 270). So EXIF orientation is applied only to a file whose
//! primary item has no transform at all, and either way exactly once.

use std::sync::OnceLock;

use image::{DynamicImage, RgbImage};
use libheif_rs::{ColorSpace, HeifContext, LibHeif, RgbChroma};

use super::isobmff::boxes;

/// One libheif initialisation for the process (`heif_init` is reference-counted; its plugins
/// and decoders are shared).
fn libheif() -> &'static LibHeif {
    static LIB: OnceLock<LibHeif> = OnceLock::new();
    LIB.get_or_init(LibHeif::new)
}

/// The primary image of a HEIF/AVIF file in `bytes`, upright, as 8-bit RGB (alpha dropped,
/// 10- and 12-bit images scaled down). `orientation` (EXIF 1..=8) is applied only when the primary
/// item carries no transform of its own. `max_side` and `max_bytes` bound what a forged header
/// can make libheif allocate.
pub fn decode(
    bytes: &[u8],
    orientation: Option<u8>,
    max_side: u32,
    max_bytes: u64,
) -> Result<DynamicImage, String> {
    let context = HeifContext::read_from_bytes(bytes).map_err(|e| e.to_string())?;
    let handle = context
        .primary_image_handle()
        .map_err(|e| format!("no primary image: {e}"))?;
    let (w, h) = (handle.width(), handle.height());
    if w == 0 || h == 0 {
        return Err(format!("image is {w}x{h}"));
    }
    if w > max_side || h > max_side {
        return Err(format!(
            "image is {w}x{h}, larger than {max_side} on a side"
        ));
    }
    // libheif holds the coded planes, the RGB conversion and our copy at once.
    if (w as u64) * (h as u64) * 3 * 3 > max_bytes {
        return Err(format!("image is {w}x{h}, too large to decode in memory"));
    }
    // No decoding options: libheif-rs 0.20 frees them before libheif reads them. The defaults
    // apply the transforms, and asking for 8-bit interleaved RGB converts 10- and 12-bit images.
    let image = libheif()
        .decode(&handle, ColorSpace::Rgb(RgbChroma::Rgb), None)
        .map_err(|e| e.to_string())?;
    let plane = image
        .planes()
        .interleaved
        .ok_or("libheif returned no interleaved RGB plane")?;
    if plane.storage_bits_per_pixel != 24 {
        return Err(format!(
            "libheif returned {} bits per pixel, not 8-bit RGB",
            plane.storage_bits_per_pixel
        ));
    }
    let (pw, ph, stride) = (plane.width, plane.height, plane.stride);
    if pw == 0 || ph == 0 || stride < pw as usize * 3 {
        return Err(format!(
            "libheif returned a {pw}x{ph} image with stride {stride}"
        ));
    }
    let mut rgb = Vec::with_capacity(pw as usize * ph as usize * 3);
    for row in plane.data.chunks(stride).take(ph as usize) {
        rgb.extend_from_slice(&row[..pw as usize * 3]);
    }
    let rgb = RgbImage::from_raw(pw, ph, rgb).ok_or("libheif returned a short RGB plane")?;
    let mut img = DynamicImage::ImageRgb8(rgb);
    if primary_transforms(bytes).is_empty() {
        if let Some(o) = orientation.and_then(image::metadata::Orientation::from_exif) {
            img.apply_orientation(o);
        }
    }
    Ok(img)
}

/// A geometric transform property of the primary item, in the order the file lists them.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Transform {
    /// `irot`: anticlockwise rotation in degrees (0, 90, 180, 270).
    Rotate(u16),
    /// `imir`: mirroring; `true` flips left-right (axis 1), `false` top-bottom (axis 0), as
    /// libheif reads it.
    Mirror { left_right: bool },
}

/// What the catalog needs of a HEIF file without decoding it.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct HeifLayout {
    /// The primary item's `ispe` (stored size, before transforms); for grid images the whole picture.
    pub size: Option<(u32, u32)>,
    pub transforms: Vec<Transform>,
}

/// The primary item's transforms (empty when it has none, or when the boxes cannot be read).
pub fn primary_transforms(bytes: &[u8]) -> Vec<Transform> {
    layout(bytes).map(|l| l.transforms).unwrap_or_default()
}

/// The EXIF orientation (1..=8) that shows the same as `transforms`, so the catalog can record a
/// HEIF file's orientation like any other photo's.
pub fn exif_orientation(transforms: &[Transform]) -> u8 {
    // A 3x2 probe image with distinct pixels: apply the transforms, then find the EXIF code that
    // does the same. Correct by construction, whatever the mix of rotations and mirrors.
    let probe = image::GrayImage::from_fn(3, 2, |x, y| image::Luma([(y * 3 + x) as u8]));
    let mut shown = DynamicImage::ImageLuma8(probe.clone());
    for t in transforms {
        shown = match *t {
            Transform::Rotate(90) => shown.rotate270(),
            Transform::Rotate(180) => shown.rotate180(),
            Transform::Rotate(270) => shown.rotate90(),
            Transform::Rotate(_) => shown,
            Transform::Mirror { left_right: true } => shown.fliph(),
            Transform::Mirror { left_right: false } => shown.flipv(),
        };
    }
    (1..=8u8)
        .find(|&code| {
            let mut candidate = DynamicImage::ImageLuma8(probe.clone());
            candidate.apply_orientation(image::metadata::Orientation::from_exif(code).unwrap());
            candidate == shown
        })
        .unwrap_or(1)
}

/// Reads `meta`: the primary item (`pitm`), its properties (`iprp/ipco`) and which of them it is
/// associated with (`iprp/ipma`). `bytes` may be just the file's head, as long as it holds `meta`.
pub fn layout(bytes: &[u8]) -> Result<HeifLayout, String> {
    let meta = boxes(bytes)
        .find(|(kind, _)| kind == b"meta")
        .map(|(_, body)| body)
        .ok_or("no meta box")?;
    // `meta` is a full box: 4 bytes of version and flags before its children.
    let meta = meta.get(4..).ok_or("meta box truncated")?;
    let mut primary = None;
    let mut properties: Vec<([u8; 4], &[u8])> = Vec::new();
    let mut associations: Vec<(u32, Vec<u16>)> = Vec::new();
    for (kind, body) in boxes(meta) {
        match &kind {
            b"pitm" => {
                let version = *body.first().ok_or("pitm truncated")?;
                primary = Some(if version == 0 {
                    be_u16(body, 4)? as u32
                } else {
                    be_u32(body, 4)?
                });
            }
            b"iprp" => {
                for (kind, body) in boxes(body) {
                    match &kind {
                        b"ipco" => properties = boxes(body).collect(),
                        b"ipma" => associations.extend(item_associations(body)?),
                        _ => {}
                    }
                }
            }
            _ => {}
        }
    }
    let primary = primary.ok_or("no primary item")?;
    let mut out = HeifLayout::default();
    let indices = associations
        .into_iter()
        .filter(|(item, _)| *item == primary)
        .flat_map(|(_, indices)| indices);
    for index in indices {
        // Property indices are 1-based; 0 means "no property".
        let Some((kind, body)) = (index as usize)
            .checked_sub(1)
            .and_then(|i| properties.get(i))
        else {
            continue;
        };
        match kind {
            b"ispe" => out.size = Some((be_u32(body, 4)?, be_u32(body, 8)?)),
            b"irot" => {
                let angle = (*body.first().ok_or("irot truncated")? as u16 & 3) * 90;
                out.transforms.push(Transform::Rotate(angle));
            }
            b"imir" => {
                let axis = *body.first().ok_or("imir truncated")? & 1;
                out.transforms.push(Transform::Mirror {
                    left_right: axis == 1,
                });
            }
            _ => {}
        }
    }
    Ok(out)
}

/// `ipma` entries: (item id, property indices).
fn item_associations(body: &[u8]) -> Result<Vec<(u32, Vec<u16>)>, String> {
    let version = *body.first().ok_or("ipma truncated")?;
    let wide_index = body.get(3).ok_or("ipma truncated")? & 1 == 1;
    let count = be_u32(body, 4)?;
    let mut pos = 8;
    let mut out = Vec::new();
    for _ in 0..count.min(1 << 20) {
        let item = if version < 1 {
            pos += 2;
            be_u16(body, pos - 2)? as u32
        } else {
            pos += 4;
            be_u32(body, pos - 4)?
        };
        let n = *body.get(pos).ok_or("ipma truncated")?;
        pos += 1;
        let mut indices = Vec::with_capacity(n as usize);
        for _ in 0..n {
            // The top bit marks the property as essential; the rest is its index.
            if wide_index {
                indices.push(be_u16(body, pos)? & 0x7FFF);
                pos += 2;
            } else {
                indices.push((*body.get(pos).ok_or("ipma truncated")? & 0x7F) as u16);
                pos += 1;
            }
        }
        out.push((item, indices));
    }
    Ok(out)
}

fn be_u16(data: &[u8], at: usize) -> Result<u16, String> {
    data.get(at..at + 2)
        .map(|b| u16::from_be_bytes(b.try_into().unwrap()))
        .ok_or_else(|| "box truncated".to_string())
}

fn be_u32(data: &[u8], at: usize) -> Result<u32, String> {
    data.get(at..at + 4)
        .map(|b| u32::from_be_bytes(b.try_into().unwrap()))
        .ok_or_else(|| "box truncated".to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn transforms_map_to_the_exif_orientation_that_shows_the_same() {
        assert_eq!(exif_orientation(&[]), 1);
        // iPhone portrait: irot 270 (anticlockwise) is EXIF 6 (rotate 90 clockwise to show).
        assert_eq!(exif_orientation(&[Transform::Rotate(270)]), 6);
        assert_eq!(exif_orientation(&[Transform::Rotate(90)]), 8);
        assert_eq!(exif_orientation(&[Transform::Rotate(180)]), 3);
        assert_eq!(
            exif_orientation(&[Transform::Mirror { left_right: true }]),
            2
        );
        assert_eq!(
            exif_orientation(&[Transform::Mirror { left_right: false }]),
            4
        );
    }

    #[test]
    fn truncated_boxes_are_errors_not_panics() {
        assert!(layout(b"").is_err());
        assert!(layout(b"\0\0\0\x10metaXXXX").is_err());
        let mut forged = b"\0\0\0\x20meta\0\0\0\0".to_vec();
        forged.extend_from_slice(b"\0\0\0\x14iprp\0\0\0\x0cipma\0\0\0\x01");
        forged.resize(0x20, 0);
        assert!(layout(&forged).is_err());
    }
}
