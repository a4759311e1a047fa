//! Thumbnails, generated on demand into the catalog's cache folder and reused until the file changes.

use std::io::BufWriter;
use std::path::{Path, PathBuf};

use fast_image_resize as fr;
use image::{DynamicImage, RgbImage};
use serde::Serialize;

use super::decode::decode_upright;
use crate::catalog::PhotoRecord;
use crate::error::{Error, IoContext, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum ThumbnailSize {
    /// Long side 256 px: the library grid.
    Grid,
    /// Long side 1024 px: the detail and review panes.
    Preview,
}

impl ThumbnailSize {
    pub fn long_side(self) -> u32 {
        match self {
            ThumbnailSize::Grid => 256,
            ThumbnailSize::Preview => 1024,
        }
    }
    pub fn name(self) -> &'static str {
        match self {
            ThumbnailSize::Grid => "grid",
            ThumbnailSize::Preview => "preview",
        }
    }
}

/// Where the thumbnail of this version of the photo lives. The key is the content hash, size and
/// mtime, so an edited file gets a new thumbnail and a moved file keeps its old one.
pub fn thumbnail_path(cache_dir: &Path, photo: &PhotoRecord, size: ThumbnailSize) -> PathBuf {
    let hash: String = photo
        .content_hash
        .iter()
        .take(16)
        .map(|b| format!("{b:02x}"))
        .collect();
    cache_dir
        .join("thumbnails")
        .join(size.name())
        .join(&hash[..2])
        .join(format!(
            "{hash}-{:x}-{:x}-o{}.jpg",
            photo.size,
            photo.mtime_ns,
            photo.orientation.unwrap_or(1)
        ))
}

/// The thumbnail file for `photo`, generating it if needed.
pub fn thumbnail(cache_dir: &Path, photo: &PhotoRecord, size: ThumbnailSize) -> Result<PathBuf> {
    let out = thumbnail_path(cache_dir, photo, size);
    if out.is_file() {
        return Ok(out);
    }
    let img = decode_upright(&photo.path, photo.orientation)?;
    let small = resize_to_fit(&img, size.long_side());
    let dir = out.parent().expect("thumbnail path has a parent");
    std::fs::create_dir_all(dir).at(dir)?;
    // Write beside, then rename: a reader never sees half a thumbnail.
    let tmp = out.with_extension(format!("tmp{}", std::process::id()));
    let file = std::fs::File::create(&tmp).at(&tmp)?;
    let mut encoder = image::codecs::jpeg::JpegEncoder::new_with_quality(BufWriter::new(file), 85);
    encoder
        .encode_image(&small)
        .map_err(|e| Error::io(&tmp, std::io::Error::other(e.to_string())))?;
    drop(encoder);
    std::fs::rename(&tmp, &out).at(&out)?;
    Ok(out)
}

/// Scales so that the long side is at most `long_side` (never up), as RGB8.
pub fn resize_to_fit(img: &DynamicImage, long_side: u32) -> RgbImage {
    let (w, h) = (img.width(), img.height());
    let scale = (long_side as f64 / w.max(h) as f64).min(1.0);
    let (nw, nh) = (
        ((w as f64 * scale).round() as u32).max(1),
        ((h as f64 * scale).round() as u32).max(1),
    );
    resize_rgb(&img.to_rgb8(), nw, nh)
}

/// Resizes RGB8 pixels with a Catmull-Rom filter (antialiased when shrinking).
pub fn resize_rgb(src: &RgbImage, width: u32, height: u32) -> RgbImage {
    if src.width() == width && src.height() == height {
        return src.clone();
    }
    let src_view =
        fr::images::ImageRef::new(src.width(), src.height(), src.as_raw(), fr::PixelType::U8x3)
            .expect("buffer matches its dimensions");
    let mut dst = fr::images::Image::new(width, height, fr::PixelType::U8x3);
    let mut resizer = fr::Resizer::new();
    let options =
        fr::ResizeOptions::new().resize_alg(fr::ResizeAlg::Convolution(fr::FilterType::CatmullRom));
    resizer
        .resize(&src_view, &mut dst, &options)
        .expect("same pixel type on both sides");
    RgbImage::from_raw(width, height, dst.into_vec()).expect("buffer matches its dimensions")
}
