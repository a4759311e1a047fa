//! Which files are photos, and what container each one is.

use std::path::Path;

use serde::{Deserialize, Serialize};

/// The container of a photo. RAW formats built on TIFF are read for metadata only;
/// their pixels come from the preview JPEG they embed.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum PhotoFormat {
    Jpeg,
    Png,
    Tiff,
    Webp,
    Heif,
    /// TIFF-based camera RAW (NEF, CR2, ARW, DNG, RW2, ORF, PEF, ...).
    Raw,
    /// Fujifilm RAF: a header, then an embedded JPEG carrying the EXIF.
    Raf,
    /// A phone or camera video (MP4, MOV, M4V, 3GP): catalogued for its time and place, never
    /// described or written to.
    Video,
}

impl PhotoFormat {
    pub fn as_str(self) -> &'static str {
        match self {
            PhotoFormat::Jpeg => "jpeg",
            PhotoFormat::Png => "png",
            PhotoFormat::Tiff => "tiff",
            PhotoFormat::Webp => "webp",
            PhotoFormat::Heif => "heif",
            PhotoFormat::Raw => "raw",
            PhotoFormat::Raf => "raf",
            PhotoFormat::Video => "video",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Some(match s {
            "jpeg" => PhotoFormat::Jpeg,
            "png" => PhotoFormat::Png,
            "tiff" => PhotoFormat::Tiff,
            "webp" => PhotoFormat::Webp,
            "heif" => PhotoFormat::Heif,
            "raw" => PhotoFormat::Raw,
            "raf" => PhotoFormat::Raf,
            "video" => PhotoFormat::Video,
            _ => return None,
        })
    }

    /// Whether this is a still image (a video is catalogued, but not described).
    pub fn is_still(self) -> bool {
        self != PhotoFormat::Video
    }

    /// Whether Pinpoint decodes this format's pixels (thumbnails, descriptors) itself.
    pub fn has_decodable_pixels(self) -> bool {
        matches!(
            self,
            PhotoFormat::Jpeg
                | PhotoFormat::Png
                | PhotoFormat::Tiff
                | PhotoFormat::Webp
                | PhotoFormat::Heif
        )
    }
}

const RAW_EXTENSIONS: &[&str] = &[
    "dng", "nef", "nrw", "cr2", "arw", "srf", "sr2", "rw2", "rwl", "orf", "pef", "srw", "3fr",
    "erf", "kdc", "dcr", "mef", "mos", "iiq",
];

/// The format a file claims by its extension, or `None` when it is not a photo Pinpoint scans.
pub fn format_from_extension(path: &Path) -> Option<PhotoFormat> {
    let ext = path.extension()?.to_str()?.to_ascii_lowercase();
    Some(match ext.as_str() {
        "jpg" | "jpeg" | "jpe" | "jfif" => PhotoFormat::Jpeg,
        "png" => PhotoFormat::Png,
        "tif" | "tiff" => PhotoFormat::Tiff,
        "webp" => PhotoFormat::Webp,
        "heic" | "heif" | "hif" | "avif" => PhotoFormat::Heif,
        "raf" => PhotoFormat::Raf,
        "mov" | "mp4" | "m4v" | "3gp" | "3g2" | "qt" => PhotoFormat::Video,
        e if RAW_EXTENSIONS.contains(&e) => PhotoFormat::Raw,
        _ => return None,
    })
}

/// The container the first bytes show. `None` when they match no photo container.
pub fn sniff(head: &[u8]) -> Option<PhotoFormat> {
    if head.starts_with(&[0xFF, 0xD8, 0xFF]) {
        return Some(PhotoFormat::Jpeg);
    }
    if head.starts_with(b"\x89PNG\r\n\x1a\n") {
        return Some(PhotoFormat::Png);
    }
    if head.len() >= 12 && &head[0..4] == b"RIFF" && &head[8..12] == b"WEBP" {
        return Some(PhotoFormat::Webp);
    }
    if head.starts_with(b"FUJIFILMCCD-RAW") {
        return Some(PhotoFormat::Raf);
    }
    if head.len() >= 12 && &head[4..8] == b"ftyp" {
        const HEIF_BRANDS: &[&[u8; 4]] = &[
            b"heic", b"heix", b"heim", b"heis", b"hevc", b"hevx", b"mif1", b"msf1", b"avif",
            b"avis", b"miaf",
        ];
        // The major brand, then the compatible brands after the minor version.
        let ftyp_end =
            (u32::from_be_bytes(head[0..4].try_into().unwrap()) as usize).min(head.len());
        let brands = std::iter::once(&head[8..12])
            .chain(head.get(16..ftyp_end).unwrap_or(&[]).chunks_exact(4));
        if brands
            .into_iter()
            .any(|brand| HEIF_BRANDS.iter().any(|b| brand == *b))
        {
            return Some(PhotoFormat::Heif);
        }
        // Every other ISO base media brand is a movie: isom, mp41, mp42, qt, 3gp5, M4V, ...
        return Some(PhotoFormat::Video);
    }
    // Old QuickTime movies start with their atoms, no `ftyp`.
    if head.len() >= 8 && matches!(&head[4..8], b"moov" | b"mdat" | b"wide" | b"pnot") {
        return Some(PhotoFormat::Video);
    }
    if head.len() >= 4 {
        match &head[0..4] {
            b"II*\0" | b"MM\0*" => return Some(PhotoFormat::Tiff),
            // Panasonic RW2 ("IIU\0") and Olympus ORF ("IIRO", "IIRS", "MMOR") are TIFF with another magic.
            b"IIU\0" | b"IIRO" | b"IIRS" | b"MMOR" => return Some(PhotoFormat::Raw),
            _ => {}
        }
    }
    None
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn extension_and_magic() {
        assert_eq!(
            format_from_extension(Path::new("a/B.JPG")),
            Some(PhotoFormat::Jpeg)
        );
        assert_eq!(
            format_from_extension(Path::new("x.NEF")),
            Some(PhotoFormat::Raw)
        );
        assert_eq!(format_from_extension(Path::new("x.txt")), None);
        assert_eq!(format_from_extension(Path::new("noext")), None);
        assert_eq!(sniff(b"\xFF\xD8\xFF\xE1"), Some(PhotoFormat::Jpeg));
        assert_eq!(sniff(b"IIU\0\x08\0\0\0"), Some(PhotoFormat::Raw));
        assert_eq!(sniff(b"\0\0\0\x18ftypheic"), Some(PhotoFormat::Heif));
        assert_eq!(sniff(b"\0\0\0\x18ftypisom"), Some(PhotoFormat::Video));
        assert_eq!(sniff(b"\0\0\0\x18ftypqt  "), Some(PhotoFormat::Video));
        assert_eq!(
            format_from_extension(Path::new("clip.MOV")),
            Some(PhotoFormat::Video)
        );
        assert_eq!(sniff(b"hello"), None);
    }
}
