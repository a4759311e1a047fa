//! Setting or removing GPS tags inside a TIFF structure (a TIFF file, or the TIFF block of a
//! JPEG's EXIF segment, a PNG's eXIf chunk, a WebP's EXIF chunk) without moving a single
//! existing byte.
//!
//! Writers that rebuild EXIF move data around, and MakerNotes — undocumented structures full of
//! offsets into the block — break when they move. Here nothing moves: the new GPS IFD is appended
//! at the end of the block; the GPSInfo pointer is patched in place when IFD0 has one, otherwise
//! IFD0 itself is copied to the end with the extra entry and the header's pointer to it is
//! patched. Entries copied from an old GPS IFD or IFD0 keep their value offsets, which still point
//! at the untouched old data. Only bytes of the header or an IFD entry value change in place.

use crate::geo::GeoPoint;

const GPS_INFO: u16 = 0x8825;

/// GPS tags Pinpoint writes or removes; other GPS tags (time stamps, direction, ...) are kept.
const VERSION_ID: u16 = 0x0000;
const LAT_REF: u16 = 0x0001;
const LAT: u16 = 0x0002;
const LON_REF: u16 = 0x0003;
const LON: u16 = 0x0004;
const ALT_REF: u16 = 0x0005;
const ALT: u16 = 0x0006;
/// Accuracy values that described the old fix.
const DOP: u16 = 0x000B;
const MAP_DATUM: u16 = 0x0012;
/// "MANUAL": the position was set by hand, not measured by a receiver.
const PROCESSING_METHOD: u16 = 0x001B;
const H_POSITIONING_ERROR: u16 = 0x001F;
const REPLACED: [u16; 11] = [
    VERSION_ID,
    LAT_REF,
    LAT,
    LON_REF,
    LON,
    ALT_REF,
    ALT,
    DOP,
    MAP_DATUM,
    PROCESSING_METHOD,
    H_POSITIONING_ERROR,
];
/// The highest tag of the GPS IFD (EXIF 2.3); anything above is not a GPS tag and is dropped.
const LAST_GPS_TAG: u16 = 0x001F;

#[derive(Clone, Copy, PartialEq)]
enum Order {
    Little,
    Big,
}

struct Tiff<'a> {
    data: &'a [u8],
    order: Order,
}

impl Tiff<'_> {
    fn u16(&self, at: usize) -> Option<u16> {
        let b: [u8; 2] = self.data.get(at..at + 2)?.try_into().ok()?;
        Some(if self.order == Order::Little {
            u16::from_le_bytes(b)
        } else {
            u16::from_be_bytes(b)
        })
    }
    fn u32(&self, at: usize) -> Option<u32> {
        let b: [u8; 4] = self.data.get(at..at + 4)?.try_into().ok()?;
        Some(if self.order == Order::Little {
            u32::from_le_bytes(b)
        } else {
            u32::from_be_bytes(b)
        })
    }
    /// IFD at `offset`: its raw 12-byte entries and its next-IFD offset.
    fn ifd(&self, offset: usize) -> Result<(Vec<[u8; 12]>, u32), String> {
        let count = self.u16(offset).ok_or("IFD outside the EXIF block")? as usize;
        if count > 1000 {
            return Err(format!("IFD claims {count} entries"));
        }
        let mut entries = Vec::with_capacity(count);
        for i in 0..count {
            let at = offset + 2 + 12 * i;
            let e: [u8; 12] = self
                .data
                .get(at..at + 12)
                .ok_or("IFD entry outside the EXIF block")?
                .try_into()
                .unwrap();
            entries.push(e);
        }
        let next = self
            .u32(offset + 2 + 12 * count)
            .ok_or("IFD end outside the EXIF block")?;
        Ok((entries, next))
    }
    fn tag(&self, e: &[u8; 12]) -> u16 {
        tag_of(self.order, e)
    }
}

fn order_of(data: &[u8]) -> Result<Order, String> {
    match data.get(0..4) {
        Some(b"II*\0") => Ok(Order::Little),
        Some(b"MM\0*") => Ok(Order::Big),
        Some([b'I', b'I', 0x2B, 0]) | Some([b'M', b'M', 0, 0x2B]) => {
            Err("BigTIFF is not written (a sidecar is used instead)".into())
        }
        _ => Err("not a TIFF/EXIF block".into()),
    }
}

/// Appends data to the block, word-aligned as TIFF asks, returning its offset.
struct Appender<'a> {
    out: &'a mut Vec<u8>,
    order: Order,
}

impl Appender<'_> {
    fn align(&mut self) {
        if self.out.len() % 2 == 1 {
            self.out.push(0);
        }
    }
    fn u16(&self, v: u16) -> [u8; 2] {
        if self.order == Order::Little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    }
    fn u32(&self, v: u32) -> [u8; 4] {
        if self.order == Order::Little {
            v.to_le_bytes()
        } else {
            v.to_be_bytes()
        }
    }
    /// An entry: tag, type, count, and a value that is inline (<= 4 bytes) or already placed at `value_offset`.
    fn entry(
        &self,
        tag: u16,
        typ: u16,
        count: u32,
        inline: &[u8],
        value_offset: Option<u32>,
    ) -> [u8; 12] {
        let mut e = [0u8; 12];
        e[0..2].copy_from_slice(&self.u16(tag));
        e[2..4].copy_from_slice(&self.u16(typ));
        e[4..8].copy_from_slice(&self.u32(count));
        match value_offset {
            Some(o) => e[8..12].copy_from_slice(&self.u32(o)),
            None => e[8..8 + inline.len()].copy_from_slice(inline),
        }
        e
    }
    /// Writes an IFD (entries sorted by tag) at the end; returns its offset.
    fn ifd(
        &mut self,
        mut entries: Vec<[u8; 12]>,
        next: u32,
        tag_of: impl Fn(&[u8; 12]) -> u16,
    ) -> Result<u32, String> {
        entries.sort_by_key(&tag_of);
        self.ifd_in_order(entries, next)
    }

    /// Writes an IFD with its entries in the given order at the end; returns its offset.
    fn ifd_in_order(&mut self, entries: Vec<[u8; 12]>, next: u32) -> Result<u32, String> {
        self.align();
        let offset = u32::try_from(self.out.len()).map_err(|_| "EXIF block too large")?;
        let count = self.u16(entries.len() as u16);
        self.out.extend_from_slice(&count);
        for e in &entries {
            self.out.extend_from_slice(e);
        }
        let next = self.u32(next);
        self.out.extend_from_slice(&next);
        Ok(offset)
    }
    fn data(&mut self, bytes: &[u8]) -> Result<u32, String> {
        self.align();
        let offset = u32::try_from(self.out.len()).map_err(|_| "EXIF block too large")?;
        self.out.extend_from_slice(bytes);
        Ok(offset)
    }
}

const BYTE: u16 = 1;
const ASCII: u16 = 2;
const RATIONAL: u16 = 5;
const UNDEFINED: u16 = 7;

/// Degrees as three rationals d/1, m/1, s/1000000 (exact to about 3e-10 degrees).
fn dms(value: f64) -> [(u32, u32); 3] {
    let v = value.abs();
    let mut d = v.trunc();
    let mut m = ((v - d) * 60.0).trunc();
    let mut micro_s = (((v - d) * 60.0 - m) * 60.0 * 1e6).round();
    if micro_s >= 60e6 {
        micro_s -= 60e6;
        m += 1.0;
    }
    if m >= 60.0 {
        m -= 60.0;
        d += 1.0;
    }
    [(d as u32, 1), (m as u32, 1), (micro_s as u32, 1_000_000)]
}

fn rationals(a: &Appender, values: &[(u32, u32)]) -> Vec<u8> {
    values
        .iter()
        .flat_map(|(n, d)| a.u32(*n).into_iter().chain(a.u32(*d)))
        .collect()
}

/// Sets (`Some`) or removes (`None`) the GPS position in the TIFF block `tiff`, in place and by
/// appending only. Returns an error, leaving `tiff` as it was, when the structure is not usable.
/// A copy of `tiff` whose header points to a new IFD0 holding only IFD0's GPSInfo pointer, so a
/// reader walks nothing but the GPS IFD. For blocks where another IFD pointer is damaged (points
/// outside the block, into the GPS IFD, or at another IFD), which makes strict readers drop GPS
/// along with it. `None` when IFD0 has no GPSInfo entry.
pub fn gps_ifd_alone(tiff: &[u8]) -> Option<Vec<u8>> {
    let order = order_of(tiff).ok()?;
    let t = Tiff { data: tiff, order };
    let ifd0_offset = t.u32(4)? as usize;
    let (entries, _) = t.ifd(ifd0_offset).ok()?;
    let i = entries.iter().position(|e| t.tag(e) == GPS_INFO)?;
    let gps_offset = t.u32(ifd0_offset + 2 + 12 * i + 8)?;
    let mut out = tiff.to_vec();
    let mut a = Appender {
        out: &mut out,
        order,
    };
    let entry = a.entry(GPS_INFO, 4, 1, &[], Some(gps_offset));
    let new_ifd0 = a.ifd_in_order(vec![entry], 0).ok()?;
    let v = a.u32(new_ifd0);
    out[4..8].copy_from_slice(&v);
    Some(out)
}

pub fn set_gps(tiff: &mut Vec<u8>, point: Option<&GeoPoint>) -> Result<(), String> {
    let order = order_of(tiff)?;
    let original_len = tiff.len();
    let result = set_gps_inner(tiff, order, point);
    if result.is_err() {
        tiff.truncate(original_len);
    }
    result
}

fn tag_of(order: Order, e: &[u8; 12]) -> u16 {
    if order == Order::Little {
        u16::from_le_bytes([e[0], e[1]])
    } else {
        u16::from_be_bytes([e[0], e[1]])
    }
}

fn set_gps_inner(tiff: &mut Vec<u8>, order: Order, point: Option<&GeoPoint>) -> Result<(), String> {
    // Read what is needed first; then only append and patch.
    let (ifd0_offset, ifd0, ifd0_next, gps_pos, kept, next_dir_size) = {
        let t = Tiff { data: tiff, order };
        let ifd0_offset = t.u32(4).ok_or("truncated TIFF header")? as usize;
        if ifd0_offset < 8 {
            return Err("IFD0 offset points into the header".into());
        }
        let (ifd0, ifd0_next) = t.ifd(ifd0_offset)?;
        let gps_pos = ifd0.iter().position(|e| t.tag(e) == GPS_INFO);
        // Entries of the old GPS IFD that Pinpoint keeps.
        let mut kept: Vec<[u8; 12]> = Vec::new();
        if let Some(i) = gps_pos {
            let old = t.u32(ifd0_offset + 2 + 12 * i + 8).unwrap_or(0) as usize;
            if let Ok((entries, _)) = t.ifd(old) {
                kept = entries
                    .into_iter()
                    .filter(|e| t.tag(e) <= LAST_GPS_TAG && !REPLACED.contains(&t.tag(e)))
                    .collect();
            }
        }
        // Size of the directory IFD0 links to (IFD1), for the padding below.
        let next_dir_size = t
            .u16(ifd0_next as usize)
            .map(|n| 2 + 12 * n as usize + 4)
            .filter(|_| ifd0_next != 0)
            .unwrap_or(0);
        (ifd0_offset, ifd0, ifd0_next, gps_pos, kept, next_dir_size)
    };
    let tag = |e: &[u8; 12]| tag_of(order, e);
    let mut a = Appender { out: tiff, order };
    let gps_offset: Option<u32> = match point {
        Some(p) => {
            let mut entries = kept;
            let lat_ref = if p.lat < 0.0 { b"S\0" } else { b"N\0" };
            let lon_ref = if p.lon < 0.0 { b"W\0" } else { b"E\0" };
            let lat = rationals(&a, &dms(p.lat));
            let lon = rationals(&a, &dms(p.lon));
            let lat_at = a.data(&lat)?;
            let lon_at = a.data(&lon)?;
            let datum_at = a.data(b"WGS-84\0")?;
            let method_at = a.data(b"ASCII\0\0\0MANUAL")?;
            entries.push(a.entry(VERSION_ID, BYTE, 4, &[2, 3, 0, 0], None));
            entries.push(a.entry(LAT_REF, ASCII, 2, lat_ref, None));
            entries.push(a.entry(LAT, RATIONAL, 3, &[], Some(lat_at)));
            entries.push(a.entry(LON_REF, ASCII, 2, lon_ref, None));
            entries.push(a.entry(LON, RATIONAL, 3, &[], Some(lon_at)));
            if let Some(alt) = p.alt {
                let cm = (alt.abs() * 100.0).round().min(u32::MAX as f64) as u32;
                let alt_at = a.data(&rationals(&a, &[(cm, 100)]))?;
                entries.push(a.entry(ALT_REF, BYTE, 1, &[(alt < 0.0) as u8], None));
                entries.push(a.entry(ALT, RATIONAL, 1, &[], Some(alt_at)));
            }
            entries.push(a.entry(MAP_DATUM, ASCII, 7, &[], Some(datum_at)));
            entries.push(a.entry(PROCESSING_METHOD, UNDEFINED, 14, &[], Some(method_at)));
            Some(a.ifd(entries, 0, tag)?)
        }
        // Clearing keeps the other GPS tags (time stamps...) when there are any.
        None if !kept.is_empty() => Some(a.ifd(kept, 0, tag)?),
        None => None,
    };
    match (gps_pos, gps_offset) {
        // IFD0 already points to a GPS IFD: patch the pointer in place.
        (Some(i), Some(g)) => {
            let at = ifd0_offset + 2 + 12 * i;
            let value = a.u32(g);
            a.out[at + 8..at + 12].copy_from_slice(&value);
            // The entry must say LONG (or IFD) x 1.
            let typ = a.u16(4);
            a.out[at + 2..at + 4].copy_from_slice(&typ);
            let count = a.u32(1);
            a.out[at + 4..at + 8].copy_from_slice(&count);
        }
        // No GPSInfo entry to patch: IFD0 is copied to the end with one, or without it. The copy
        // keeps the original entry order (even when the original is out of order), placing the
        // new entry after the last smaller tag.
        (pos, g) => {
            let mut entries: Vec<[u8; 12]> = ifd0
                .iter()
                .enumerate()
                .filter(|(i, _)| Some(*i) != pos)
                .map(|(_, e)| *e)
                .collect();
            if let Some(g) = g {
                let at = entries
                    .iter()
                    .rposition(|e| tag(e) < GPS_INFO)
                    .map(|i| i + 1)
                    .unwrap_or(0);
                entries.insert(at, a.entry(GPS_INFO, 4, 1, &[], Some(g)));
            } else if pos.is_none() {
                return Ok(()); // nothing to remove
            }
            let new_ifd0 = a.ifd_in_order(entries, ifd0_next)?;
            let v = a.u32(new_ifd0);
            a.out[4..8].copy_from_slice(&v);
            // Readers that bound the directories after IFD0 by the bytes after IFD0 (ExifTool
            // does) must find room for the next one (the thumbnail's IFD1) there: pad with zeros.
            let room = a.out.len() - new_ifd0 as usize;
            if room < next_dir_size {
                let pad = next_dir_size - room;
                a.out.resize(a.out.len() + pad, 0);
            }
        }
    }
    Ok(())
}

/// Overwrites the position in the block's existing GPS IFD, in place: nothing is appended and the
/// block keeps its length, for a JPEG whose EXIF segment has no room left to grow (64 KB). The old
/// latitude, longitude (and altitude) values are overwritten where they are, so the old position
/// does not linger in the file; the IFD is rewritten at its own place with the same or fewer
/// entries (accuracy and datum tags of the old fix are dropped, other GPS tags kept).
/// `Err` says why this file has no room (the caller falls back to appending, or to a sidecar).
pub fn set_gps_in_place(tiff: &mut [u8], point: &GeoPoint) -> Result<(), String> {
    let order = order_of(tiff)?;
    let t = Tiff { data: tiff, order };
    let no_room = |why: &str| Err(format!("no room in the GPS IFD: {why}"));
    let ifd0_offset = t.u32(4).ok_or("truncated TIFF header")? as usize;
    let (ifd0, _) = t.ifd(ifd0_offset)?;
    let Some(i) = ifd0.iter().position(|e| t.tag(e) == GPS_INFO) else {
        return no_room("the file has none");
    };
    let gps = t
        .u32(ifd0_offset + 2 + 12 * i + 8)
        .ok_or("truncated IFD0")? as usize;
    let (old_entries, next) = t.ifd(gps)?;
    let ifd_end = gps + 2 + 12 * old_entries.len() + 4;
    // Where an old entry keeps its value outside the IFD: (offset, bytes), when the type and count
    // make room for `need` bytes.
    let area = |tag: u16, types: &[u16], need: usize| -> Option<(usize, usize)> {
        let e = old_entries.iter().find(|e| t.tag(e) == tag)?;
        let entry = Tiff { data: e, order };
        let typ = entry.u16(2)?;
        let size = type_size(typ).checked_mul(entry.u32(4)? as usize)?;
        let at = entry.u32(8)? as usize;
        let fits =
            types.contains(&typ) && size >= need && size > 4 && at.checked_add(size)? <= tiff.len();
        // A value inside the IFD's own entries would be overwritten by them.
        let clear_of_ifd = at + size <= gps || at >= ifd_end;
        (fits && clear_of_ifd).then_some((at, size))
    };
    let (Some(lat_at), Some(lon_at)) = (area(LAT, &[RATIONAL], 24), area(LON, &[RATIONAL], 24))
    else {
        return no_room("latitude and longitude are not three rationals each");
    };
    let alt_at = match point.alt {
        Some(_) => {
            Some(area(ALT, &[RATIONAL], 8).ok_or("no room in the GPS IFD: no altitude value")?)
        }
        None => None,
    };
    let datum_at = area(MAP_DATUM, &[ASCII], 7);
    let method_at = area(PROCESSING_METHOD, &[UNDEFINED, ASCII], 14);
    let mut areas: Vec<(usize, usize)> = [Some(lat_at), Some(lon_at), alt_at, datum_at, method_at]
        .into_iter()
        .flatten()
        .collect();
    areas.sort();
    if areas.windows(2).any(|w| w[0].0 + w[0].1 > w[1].0) {
        return no_room("two values share bytes");
    }

    let mut scratch = Vec::new();
    let a = Appender {
        out: &mut scratch,
        order,
    };
    let kept: Vec<[u8; 12]> = old_entries
        .iter()
        .filter(|e| t.tag(e) <= LAST_GPS_TAG && !REPLACED.contains(&t.tag(e)))
        .copied()
        .collect();
    let lat_ref = if point.lat < 0.0 { b"S\0" } else { b"N\0" };
    let lon_ref = if point.lon < 0.0 { b"W\0" } else { b"E\0" };
    let mut entries = kept;
    entries.push(a.entry(LAT_REF, ASCII, 2, lat_ref, None));
    entries.push(a.entry(LAT, RATIONAL, 3, &[], Some(lat_at.0 as u32)));
    entries.push(a.entry(LON_REF, ASCII, 2, lon_ref, None));
    entries.push(a.entry(LON, RATIONAL, 3, &[], Some(lon_at.0 as u32)));
    let mut values: Vec<(usize, usize, Vec<u8>)> = vec![
        (lat_at.0, lat_at.1, rationals(&a, &dms(point.lat))),
        (lon_at.0, lon_at.1, rationals(&a, &dms(point.lon))),
    ];
    if let (Some(alt), Some(at)) = (point.alt, alt_at) {
        let cm = (alt.abs() * 100.0).round().min(u32::MAX as f64) as u32;
        entries.push(a.entry(ALT_REF, BYTE, 1, &[(alt < 0.0) as u8], None));
        entries.push(a.entry(ALT, RATIONAL, 1, &[], Some(at.0 as u32)));
        values.push((at.0, at.1, rationals(&a, &[(cm, 100)])));
    }
    // The version tag is required where the file had one (validators ask for it), optional
    // where it had none.
    let version = a.entry(VERSION_ID, BYTE, 4, &[2, 3, 0, 0], None);
    let had_version = old_entries.iter().any(|e| t.tag(e) == VERSION_ID);
    let mut optional = Vec::new();
    if had_version {
        entries.push(version);
    } else {
        optional.push((version, None));
    }
    if entries.len() > old_entries.len() {
        return no_room("more entries than the IFD holds");
    }
    // Optional tags, while the old IFD has entries to spare.
    if let Some(at) = datum_at {
        optional.push((
            a.entry(MAP_DATUM, ASCII, 7, &[], Some(at.0 as u32)),
            Some((at.0, at.1, b"WGS-84\0".to_vec())),
        ));
    }
    if let Some(at) = method_at {
        optional.push((
            a.entry(PROCESSING_METHOD, UNDEFINED, 14, &[], Some(at.0 as u32)),
            Some((at.0, at.1, b"ASCII\0\0\0MANUAL".to_vec())),
        ));
    }
    for (entry, value) in optional {
        if entries.len() < old_entries.len() {
            entries.push(entry);
            values.extend(value);
        }
    }
    entries.sort_by_key(|e| tag_of(order, e));
    let count = a.u16(entries.len() as u16);
    let next = a.u32(next);

    // Write: the IFD at its own place (unused entry slots zeroed), then the values, each area
    // zero-padded to its old length so no digit of the old value remains.
    let mut ifd = Vec::with_capacity(ifd_end - gps);
    ifd.extend_from_slice(&count);
    for e in &entries {
        ifd.extend_from_slice(e);
    }
    ifd.extend_from_slice(&next);
    ifd.resize(ifd_end - gps, 0);
    tiff[gps..ifd_end].copy_from_slice(&ifd);
    for (at, len, mut bytes) in values {
        bytes.resize(len, 0);
        tiff[at..at + len].copy_from_slice(&bytes);
    }
    Ok(())
}

/// Bytes per value of each TIFF field type (0 for unknown types).
fn type_size(typ: u16) -> usize {
    match typ {
        1 | 2 | 6 | 7 => 1,
        3 | 8 => 2,
        4 | 9 | 11 | 13 => 4,
        5 | 10 | 12 => 8,
        _ => 0,
    }
}

/// Checks that the block can be appended to without changing what any reader sees: every standard
/// directory (IFD0 and its chain, EXIF, Interoperability) and every value they point to lies
/// inside the block. (A truncated block — a directory running past its end — would have data
/// appended after it read as part of that directory.) `Err` says why a sidecar is safer.
pub fn check_structure(tiff: &[u8]) -> Result<(), String> {
    let order = order_of(tiff)?;
    let t = Tiff { data: tiff, order };
    let len = tiff.len();
    let unsafe_ = |why: String| Err(format!("{why} (a sidecar is used instead)"));
    let mut queue = vec![(t.u32(4).ok_or("truncated TIFF header")? as usize, "IFD0")];
    let mut seen = std::collections::HashSet::new();
    while let Some((offset, name)) = queue.pop() {
        if offset == 0 || !seen.insert(offset) || seen.len() > 64 {
            continue;
        }
        let count = match t.u16(offset) {
            Some(c) => c as usize,
            None => return unsafe_(format!("{name} lies outside the EXIF block")),
        };
        if offset + 2 + 12 * count + 4 > len {
            return unsafe_(format!("{name} runs past the end of the EXIF block"));
        }
        let (entries, next) = t.ifd(offset)?;
        for (i, e) in entries.iter().enumerate() {
            let at = offset + 2 + 12 * i;
            let (tag, typ) = (t.tag(e), t.u16(at + 2).unwrap_or(0));
            let size = type_size(typ).saturating_mul(t.u32(at + 4).unwrap_or(0) as usize);
            let value_at = t.u32(at + 8).unwrap_or(0) as usize;
            if size > 4 && value_at.checked_add(size).is_none_or(|end| end > len) {
                return unsafe_(format!(
                    "a value of {name} (tag {tag:#06x}) lies outside the EXIF block"
                ));
            }
            match tag {
                0x8769 => queue.push((value_at, "the EXIF IFD")),
                0xA005 => queue.push((value_at, "the Interoperability IFD")),
                _ => {}
            }
        }
        if name.starts_with("IFD") {
            queue.push((next as usize, "IFD1"));
        }
    }
    Ok(())
}

/// A minimal TIFF block holding only a GPS position, for files that have no EXIF yet.
pub fn new_block(point: &GeoPoint) -> Vec<u8> {
    let mut v = b"II*\0\x08\0\0\0\0\0\0\0\0\0".to_vec(); // header + empty IFD0 (count 0, next 0)
    set_gps(&mut v, Some(point)).expect("a fresh block is well-formed");
    v
}

#[cfg(test)]
mod tests {
    use super::*;

    fn read(tiff: &[u8]) -> Option<(f64, f64, Option<f64>)> {
        let exif = exif::Reader::new().read_raw(tiff.to_vec()).ok()?;
        let num = |tag| {
            let f = exif.get_field(tag, exif::In::PRIMARY)?;
            match &f.value {
                exif::Value::Rational(v) => Some(v.iter().map(|r| r.to_f64()).collect::<Vec<_>>()),
                _ => None,
            }
        };
        let sign = |tag, neg: &str| {
            exif.get_field(tag, exif::In::PRIMARY)
                .map(|f| f.display_value().to_string() == neg)
                .unwrap_or(false)
        };
        let lat = num(exif::Tag::GPSLatitude)?;
        let lon = num(exif::Tag::GPSLongitude)?;
        let deg = |v: Vec<f64>| v[0] + v[1] / 60.0 + v[2] / 3600.0;
        let la = deg(lat)
            * if sign(exif::Tag::GPSLatitudeRef, "S") {
                -1.0
            } else {
                1.0
            };
        let lo = deg(lon)
            * if sign(exif::Tag::GPSLongitudeRef, "W") {
                -1.0
            } else {
                1.0
            };
        let alt = num(exif::Tag::GPSAltitude).map(|v| v[0]);
        Some((la, lo, alt))
    }

    #[test]
    fn writes_exact_positions_in_both_byte_orders() {
        let p = GeoPoint {
            lat: -33.856_784_123,
            lon: 151.215_297_456,
            alt: Some(12.34),
        };
        let mut block = new_block(&p);
        let (la, lo, alt) = read(&block).unwrap();
        assert!(
            (la - p.lat).abs() < 1e-9 && (lo - p.lon).abs() < 1e-9,
            "{la} {lo}"
        );
        assert_eq!(alt, Some(12.34));
        // Replace, then clear.
        let q = GeoPoint {
            lat: 48.858_37,
            lon: 2.294_481,
            alt: None,
        };
        let before = block.len();
        set_gps(&mut block, Some(&q)).unwrap();
        assert!(block.len() > before, "appended, not rewritten");
        let (la, lo, alt) = read(&block).unwrap();
        assert!((la - q.lat).abs() < 1e-9 && (lo - q.lon).abs() < 1e-9 && alt.is_none());
        set_gps(&mut block, None).unwrap();
        assert!(read(&block).is_none());
        // Big-endian block.
        let mut be = b"MM\0*\0\0\0\x08\0\0\0\0\0\0".to_vec();
        set_gps(&mut be, Some(&p)).unwrap();
        let (la, _, _) = read(&be).unwrap();
        assert!((la - p.lat).abs() < 1e-9);
    }

    #[test]
    fn rounding_carries_into_minutes_and_degrees() {
        assert_eq!(dms(10.999_999_999_99), [(11, 1), (0, 1), (0, 1_000_000)]);
        let [d, m, s] = dms(0.5);
        assert_eq!((d, m, s), ((0, 1), (30, 1), (0, 1_000_000)));
    }

    #[test]
    fn refuses_what_it_cannot_write_and_leaves_it_unchanged() {
        let mut junk = b"II*\0\xff\xff\0\0".to_vec();
        let copy = junk.clone();
        assert!(set_gps(&mut junk, Some(&GeoPoint::new(1.0, 2.0))).is_err());
        assert_eq!(junk, copy);
        assert!(set_gps(&mut b"not tiff".to_vec(), None).is_err());
    }
}
