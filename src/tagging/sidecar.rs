//! XMP sidecars as digiKam, Lightroom and ExifTool write and read them: the location as
//! `exif:GPSLatitude`/`exif:GPSLongitude` (`DDD,MM.mmmmmmmmk`), `exif:GPSAltitude` (rational) with
//! `exif:GPSAltitudeRef`, and `exif:GPSVersionID`. An existing sidecar is edited, not replaced:
//! only those properties change; everything else in it is written back as it was read.

use std::borrow::Cow;

use quick_xml::events::{BytesStart, Event};
use quick_xml::name::ResolveResult;
use quick_xml::{NsReader, Writer};

use crate::geo::{format_xmp_coordinate, GeoPoint};
use crate::library::xmp::EXIF_NS;

const RDF_NS: &[u8] = b"http://www.w3.org/1999/02/22-rdf-syntax-ns#";
const GPS_PROPERTIES: [&[u8]; 6] = [
    b"GPSLatitude",
    b"GPSLongitude",
    b"GPSAltitude",
    b"GPSAltitudeRef",
    b"GPSVersionID",
    b"GPSMapDatum",
];

/// The (name, value) attributes that carry `point`.
fn gps_attributes(prefix: &str, point: &GeoPoint) -> Vec<(String, String)> {
    let mut v = vec![
        (format!("{prefix}:GPSVersionID"), "2.3.0.0".to_string()),
        (
            format!("{prefix}:GPSLatitude"),
            format_xmp_coordinate(point.lat, true),
        ),
        (
            format!("{prefix}:GPSLongitude"),
            format_xmp_coordinate(point.lon, false),
        ),
        (format!("{prefix}:GPSMapDatum"), "WGS-84".to_string()),
    ];
    if let Some(alt) = point.alt {
        v.push((
            format!("{prefix}:GPSAltitude"),
            format!("{}/100", (alt.abs() * 100.0).round() as u64),
        ));
        v.push((
            format!("{prefix}:GPSAltitudeRef"),
            if alt < 0.0 { "1" } else { "0" }.to_string(),
        ));
    }
    v
}

/// A new sidecar holding only the location.
pub fn new_sidecar(point: &GeoPoint) -> Vec<u8> {
    let attrs: String = gps_attributes("exif", point)
        .iter()
        .map(|(k, v)| format!("\n    {k}=\"{v}\""))
        .collect();
    format!(
        "<?xpacket begin=\"\u{feff}\" id=\"W5M0MpCehiHzreSzNTczkc9d\"?>\n\
         <x:xmpmeta xmlns:x=\"adobe:ns:meta/\" x:xmptk=\"Pinpoint\">\n \
         <rdf:RDF xmlns:rdf=\"http://www.w3.org/1999/02/22-rdf-syntax-ns#\">\n  \
         <rdf:Description rdf:about=\"\"\n    xmlns:exif=\"http://ns.adobe.com/exif/1.0/\"{attrs}/>\n \
         </rdf:RDF>\n</x:xmpmeta>\n<?xpacket end=\"w\"?>\n"
    )
    .into_bytes()
}

/// `existing` sidecar bytes with the location set (`Some`) or removed (`None`).
pub fn update_sidecar(existing: &[u8], point: Option<&GeoPoint>) -> Result<Vec<u8>, String> {
    let text =
        std::str::from_utf8(existing).map_err(|_| "the sidecar is not UTF-8 text".to_string())?;
    let mut reader = NsReader::from_str(text);
    let mut writer = Writer::new(Vec::with_capacity(existing.len() + 512));
    let mut done = false;
    // Depth inside a GPS property element being dropped (element form of a property).
    let mut skipping = 0usize;
    loop {
        let (ns, event) = reader
            .read_resolved_event()
            .map_err(|e| format!("malformed XMP sidecar: {e}"))?;
        let in_exif = matches!(ns, ResolveResult::Bound(ref n) if n.as_ref() == EXIF_NS);
        let in_rdf = matches!(ns, ResolveResult::Bound(ref n) if n.as_ref() == RDF_NS);
        if skipping > 0 {
            match event {
                Event::Start(_) => skipping += 1,
                Event::End(_) => skipping -= 1,
                Event::Eof => return Err("malformed XMP sidecar: unclosed element".into()),
                _ => {}
            }
            continue;
        }
        match event {
            Event::Start(ref e) | Event::Empty(ref e)
                if in_exif && GPS_PROPERTIES.contains(&e.local_name().as_ref()) =>
            {
                if matches!(event, Event::Start(_)) {
                    skipping = 1;
                }
            }
            Event::Start(ref e) | Event::Empty(ref e)
                if in_rdf && e.local_name().as_ref() == b"Description" && !done =>
            {
                let rebuilt = rebuild_description(&reader, e, point)?;
                let out = if matches!(event, Event::Start(_)) {
                    Event::Start(rebuilt)
                } else {
                    Event::Empty(rebuilt)
                };
                writer.write_event(out).map_err(|e| e.to_string())?;
                done = true;
            }
            Event::Start(ref e) | Event::Empty(ref e) => {
                // Drop GPS attributes written on other elements too.
                let cleaned = without_gps_attributes(&reader, e)?;
                let out = if matches!(event, Event::Start(_)) {
                    Event::Start(cleaned)
                } else {
                    Event::Empty(cleaned)
                };
                writer.write_event(out).map_err(|e| e.to_string())?;
            }
            Event::Eof => break,
            other => writer.write_event(other).map_err(|e| e.to_string())?,
        }
    }
    if !done {
        return Err("the sidecar has no rdf:Description to hold a location".into());
    }
    Ok(writer.into_inner())
}

fn without_gps_attributes<'a>(
    reader: &NsReader<&[u8]>,
    e: &BytesStart<'a>,
) -> Result<BytesStart<'a>, String> {
    let mut out = BytesStart::new(String::from_utf8_lossy(e.name().as_ref()).into_owned());
    for attr in e.attributes().with_checks(false) {
        let attr = attr.map_err(|e| format!("malformed XMP attribute: {e}"))?;
        let (ns, local) = reader.resolve_attribute(attr.key);
        let is_gps = matches!(ns, ResolveResult::Bound(ref n) if n.as_ref() == EXIF_NS)
            && GPS_PROPERTIES.contains(&local.as_ref());
        if !is_gps {
            out.push_attribute(attr);
        }
    }
    Ok(out)
}

fn rebuild_description<'a>(
    reader: &NsReader<&[u8]>,
    e: &BytesStart<'a>,
    point: Option<&GeoPoint>,
) -> Result<BytesStart<'a>, String> {
    let mut out = without_gps_attributes(reader, e)?;
    let Some(p) = point else { return Ok(out) };
    // Use the prefix the file binds to the EXIF namespace, or declare `exif`.
    let mut prefix: Option<String> = None;
    for attr in e.attributes().with_checks(false).flatten() {
        let key = String::from_utf8_lossy(attr.key.as_ref()).into_owned();
        if let Some(pfx) = key.strip_prefix("xmlns:") {
            if attr
                .unescape_value()
                .map(|v| v.as_bytes() == EXIF_NS)
                .unwrap_or(false)
            {
                prefix = Some(pfx.to_string());
            }
        }
    }
    let prefix = match prefix {
        Some(p) => p,
        None => {
            let taken = |name: &str| {
                e.attributes()
                    .flatten()
                    .any(|a| a.key.as_ref() == format!("xmlns:{name}").as_bytes())
            };
            let name = ["exif", "exifGPS", "pinpointExif"]
                .into_iter()
                .find(|n| !taken(n))
                .unwrap_or("pinpointExif");
            out.push_attribute((
                format!("xmlns:{name}").as_str(),
                std::str::from_utf8(EXIF_NS).unwrap(),
            ));
            name.to_string()
        }
    };
    for (k, v) in gps_attributes(&prefix, p) {
        out.push_attribute((k.as_str(), Cow::from(v).as_ref()));
    }
    Ok(out)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::library::xmp::parse_xmp;

    #[test]
    fn new_sidecars_read_back_exactly() {
        let p = GeoPoint {
            lat: 52.518_912_345,
            lon: -13.400_345_678,
            alt: Some(-4.5),
        };
        let x = parse_xmp(&new_sidecar(&p)).unwrap();
        assert!((x.gps_latitude.unwrap() - p.lat).abs() < 1e-9);
        assert!((x.gps_longitude.unwrap() - p.lon).abs() < 1e-9);
        assert_eq!(x.gps_altitude, Some(-4.5));
    }

    #[test]
    fn editing_keeps_everything_else() {
        let existing = br#"<?xml version="1.0"?>
<x:xmpmeta xmlns:x="adobe:ns:meta/">
 <rdf:RDF xmlns:rdf="http://www.w3.org/1999/02/22-rdf-syntax-ns#">
  <!-- written by digiKam -->
  <rdf:Description rdf:about="" xmlns:xmp="http://ns.adobe.com/xap/1.0/" xmlns:e="http://ns.adobe.com/exif/1.0/"
     xmp:Rating="4" e:GPSLatitude="1,0N" e:DateTimeOriginal="2020-01-02T03:04:05">
   <dc:subject xmlns:dc="http://purl.org/dc/elements/1.1/"><rdf:Bag><rdf:li>holiday</rdf:li></rdf:Bag></dc:subject>
   <e:GPSLongitude>2,0E</e:GPSLongitude>
  </rdf:Description>
 </rdf:RDF>
</x:xmpmeta>"#;
        let p = GeoPoint::new(-33.5, 151.25);
        let out = update_sidecar(existing, Some(&p)).unwrap();
        let text = String::from_utf8(out.clone()).unwrap();
        for kept in [
            "xmp:Rating=\"4\"",
            "holiday",
            "written by digiKam",
            "e:DateTimeOriginal",
        ] {
            assert!(text.contains(kept), "{kept} lost:\n{text}");
        }
        assert!(!text.contains("2,0E") && !text.contains("1,0N"), "{text}");
        let x = parse_xmp(&out).unwrap();
        assert_eq!(
            (x.gps_latitude, x.gps_longitude),
            (Some(-33.5), Some(151.25))
        );
        assert_eq!(x.date_time_original.as_deref(), Some("2020-01-02T03:04:05"));
        // Clearing removes the location only.
        let cleared = update_sidecar(&out, None).unwrap();
        let x = parse_xmp(&cleared).unwrap();
        assert!(x.gps_latitude.is_none() && x.gps_longitude.is_none());
        assert!(String::from_utf8(cleared).unwrap().contains("holiday"));
        assert!(update_sidecar(b"<a><b></a>", Some(&p)).is_err());
        assert!(update_sidecar(b"<x/>", Some(&p)).is_err());
    }
}
