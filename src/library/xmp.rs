//! Reading the location and capture time from XMP: sidecar files (`photo.xmp`, `photo.jpg.xmp`,
//! as digiKam, Lightroom and ExifTool write them) and XMP packets embedded in photos.

use std::path::{Path, PathBuf};

use quick_xml::events::Event;
use quick_xml::name::ResolveResult;
use quick_xml::NsReader;

use super::jpeg::segments;
use crate::geo::parse_xmp_coordinate;

pub const EXIF_NS: &[u8] = b"http://ns.adobe.com/exif/1.0/";
pub const XAP_NS: &[u8] = b"http://ns.adobe.com/xap/1.0/";
pub const PHOTOSHOP_NS: &[u8] = b"http://ns.adobe.com/photoshop/1.0/";

/// The properties Pinpoint reads, by namespace and local name.
#[derive(Clone, Copy)]
enum Property {
    Latitude,
    Longitude,
    Altitude,
    AltitudeRef,
    DateTimeOriginal,
    DateCreated,
    CreateDate,
}

fn property(ns: &[u8], local: &[u8]) -> Option<Property> {
    Some(match (ns, local) {
        (EXIF_NS, b"GPSLatitude") => Property::Latitude,
        (EXIF_NS, b"GPSLongitude") => Property::Longitude,
        (EXIF_NS, b"GPSAltitude") => Property::Altitude,
        (EXIF_NS, b"GPSAltitudeRef") => Property::AltitudeRef,
        (EXIF_NS, b"DateTimeOriginal") => Property::DateTimeOriginal,
        (PHOTOSHOP_NS, b"DateCreated") => Property::DateCreated,
        (XAP_NS, b"CreateDate") => Property::CreateDate,
        _ => return None,
    })
}

/// What Pinpoint reads from an XMP packet. Values are raw; validation happens in the caller.
#[derive(Debug, Default, Clone, PartialEq)]
pub struct XmpData {
    pub gps_latitude: Option<f64>,
    pub gps_longitude: Option<f64>,
    /// Altitude with its reference applied (below sea level negative).
    pub gps_altitude: Option<f64>,
    pub date_time_original: Option<String>,
    /// photoshop:DateCreated
    pub date_created: Option<String>,
    /// xmp:CreateDate
    pub create_date: Option<String>,
}

impl XmpData {
    pub fn has_gps(&self) -> bool {
        self.gps_latitude.is_some() && self.gps_longitude.is_some()
    }
}

/// The sidecar files that may belong to `photo`, in the order Pinpoint prefers them:
/// `photo.jpg.xmp` (digiKam, darktable) before `photo.xmp` (Lightroom, ExifTool).
pub fn sidecar_candidates(photo: &Path) -> Vec<PathBuf> {
    let mut out = Vec::new();
    let Some(name) = photo.file_name().and_then(|n| n.to_str()) else {
        return out;
    };
    let dir = photo.parent().unwrap_or(Path::new(""));
    for ext in ["xmp", "XMP"] {
        out.push(dir.join(format!("{name}.{ext}")));
    }
    if let Some(stem) = photo.file_stem().and_then(|s| s.to_str()) {
        for ext in ["xmp", "XMP"] {
            out.push(dir.join(format!("{stem}.{ext}")));
        }
    }
    out
}

/// The first existing sidecar of `photo`.
pub fn find_sidecar(photo: &Path) -> Option<PathBuf> {
    sidecar_candidates(photo).into_iter().find(|p| p.is_file())
}

/// Parses an XMP packet. Unknown content is ignored; malformed XML is an error.
pub fn parse_xmp(bytes: &[u8]) -> Result<XmpData, String> {
    let text = decode_text(bytes)?;
    let text = text.trim_start_matches('\u{feff}');
    let mut reader = NsReader::from_str(text);
    let mut data = XmpData::default();
    let mut alt_ref: Option<String> = None;
    let mut raw_alt: Option<String> = None;
    let mut set = |p: Property, value: &str| {
        let v = value.trim().to_string();
        match p {
            Property::Latitude => data.gps_latitude = parse_xmp_coordinate(&v),
            Property::Longitude => data.gps_longitude = parse_xmp_coordinate(&v),
            Property::Altitude => raw_alt = Some(v),
            Property::AltitudeRef => alt_ref = Some(v),
            Property::DateTimeOriginal => data.date_time_original = Some(v),
            Property::DateCreated => data.date_created = Some(v),
            Property::CreateDate => data.create_date = Some(v),
        }
    };
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("malformed XMP: {e}"))?;
        let element = match (&ns, &event) {
            (ResolveResult::Bound(ns), Event::Start(e)) => {
                property(ns.as_ref(), e.local_name().as_ref())
            }
            _ => None,
        };
        match event {
            Event::Start(ref e) | Event::Empty(ref e) => {
                for attr in e.attributes().with_checks(false) {
                    let attr = attr.map_err(|e| format!("malformed XMP attribute: {e}"))?;
                    if let (ResolveResult::Bound(ns), local) = reader.resolve_attribute(attr.key) {
                        if let Some(p) = property(ns.as_ref(), local.as_ref()) {
                            let value = attr
                                .unescape_value()
                                .map_err(|e| format!("malformed XMP attribute: {e}"))?;
                            set(p, &value);
                        }
                    }
                }
                if let (Some(p), Event::Start(e)) = (element, &event) {
                    let end = e.to_end().into_owned();
                    let value = reader
                        .read_text(end.name())
                        .map_err(|e| format!("malformed XMP: {e}"))?;
                    // Element form may wrap the value in rdf:Alt/rdf:li; a plain value has no markup.
                    if !value.contains('<') {
                        set(p, &unescape(&value));
                    }
                }
            }
            Event::Eof => break,
            _ => {}
        }
    }
    if let Some(alt) = raw_alt.as_deref().and_then(parse_rational) {
        let below_sea = alt_ref.as_deref() == Some("1");
        data.gps_altitude = Some(if below_sea { -alt } else { alt });
    }
    Ok(data)
}

/// XMP is UTF-8, but UTF-16 packets (with or without a byte-order mark) exist too.
fn decode_text(bytes: &[u8]) -> Result<std::borrow::Cow<'_, str>, String> {
    let utf16 = |bytes: &[u8], be: bool| {
        let units: Vec<u16> = bytes
            .chunks_exact(2)
            .map(|c| {
                if be {
                    u16::from_be_bytes([c[0], c[1]])
                } else {
                    u16::from_le_bytes([c[0], c[1]])
                }
            })
            .collect();
        String::from_utf16(&units).map_err(|_| "XMP is not valid UTF-16".to_string())
    };
    if let Some(rest) = bytes.strip_prefix(&[0xFE, 0xFF]) {
        return utf16(rest, true).map(Into::into);
    }
    if let Some(rest) = bytes.strip_prefix(&[0xFF, 0xFE]) {
        return utf16(rest, false).map(Into::into);
    }
    if bytes.len() >= 2 && bytes[0] == 0 && bytes[1] != 0 {
        return utf16(bytes, true).map(Into::into);
    }
    if bytes.len() >= 2 && bytes[0] != 0 && bytes[1] == 0 {
        return utf16(bytes, false).map(Into::into);
    }
    std::str::from_utf8(bytes)
        .map(Into::into)
        .map_err(|_| "XMP is not UTF-8".to_string())
}

fn unescape(s: &str) -> String {
    quick_xml::escape::unescape(s)
        .map(|c| c.into_owned())
        .unwrap_or_else(|_| s.to_string())
}

/// XMP rationals are written `num/den` or as a decimal.
fn parse_rational(s: &str) -> Option<f64> {
    let v = match s.split_once('/') {
        Some((n, d)) => {
            let (n, d) = (n.trim().parse::<f64>().ok()?, d.trim().parse::<f64>().ok()?);
            if d == 0.0 {
                return None;
            }
            n / d
        }
        None => s.parse::<f64>().ok()?,
    };
    v.is_finite().then_some(v)
}

/// Finds the XMP packet embedded in a JPEG's APP1 segment, given the file's first bytes.
pub fn embedded_jpeg_xmp(head: &[u8]) -> Option<&[u8]> {
    const SIG: &[u8] = b"http://ns.adobe.com/xap/1.0/\0";
    segments(head)
        .find_map(|(marker, body)| (marker == 0xE1).then(|| body.strip_prefix(SIG)).flatten())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn attribute_and_element_forms() {
        let attr = br#"<x:xmpmeta xmlns:x="adobe:ns:meta/"><rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
          <rdf:Description xmlns:exif="http://ns.adobe.com/exif/1.0/" exif:GPSLatitude="52,31.134N"
             exif:GPSLongitude="13,24.018E" exif:GPSAltitude="345/10" exif:GPSAltitudeRef="1"/></rdf:RDF></x:xmpmeta>"#;
        let d = parse_xmp(attr).unwrap();
        assert!((d.gps_latitude.unwrap() - (52.0 + 31.134 / 60.0)).abs() < 1e-12);
        assert!((d.gps_longitude.unwrap() - (13.0 + 24.018 / 60.0)).abs() < 1e-12);
        assert_eq!(d.gps_altitude, Some(-34.5));

        let elem = br#"<rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#"><rdf:Description xmlns:e="http://ns.adobe.com/exif/1.0/">
          <e:GPSLatitude>10,30S</e:GPSLatitude><e:GPSLongitude>20,15.5W</e:GPSLongitude>
          <e:DateTimeOriginal>2020-01-02T03:04:05+01:00</e:DateTimeOriginal></rdf:Description></rdf:RDF>"#;
        let d = parse_xmp(elem).unwrap();
        assert_eq!(d.gps_latitude, Some(-10.5));
        assert!((d.gps_longitude.unwrap() + 20.258333333333333).abs() < 1e-12);
        assert_eq!(
            d.date_time_original.as_deref(),
            Some("2020-01-02T03:04:05+01:00")
        );
    }

    #[test]
    fn other_namespace_is_ignored_and_bad_xml_is_an_error() {
        let other = br#"<r xmlns:exif="urn:not-exif" exif:GPSLatitude="1,0N"/>"#;
        assert_eq!(parse_xmp(other).unwrap(), XmpData::default());
        assert!(parse_xmp(b"<a><b></a>").is_err());
    }

    #[test]
    fn sidecar_names() {
        let c = sidecar_candidates(Path::new("/p/IMG_1.CR2"));
        assert_eq!(c[0], Path::new("/p/IMG_1.CR2.xmp"));
        assert_eq!(c[2], Path::new("/p/IMG_1.xmp"));
    }
}
