//! JPEG marker segments in a byte slice (the head of a file), up to the first scan.

/// Iterates over `(marker, body)` of each segment before the image data. Stops quietly at the
/// first scan, at the end of the slice, or at anything that is not a well-formed segment.
pub fn segments(data: &[u8]) -> impl Iterator<Item = (u8, &[u8])> {
    let mut pos = if data.starts_with(&[0xFF, 0xD8]) {
        2
    } else {
        data.len()
    };
    std::iter::from_fn(move || loop {
        if pos + 4 > data.len() || data[pos] != 0xFF {
            return None;
        }
        let marker = data[pos + 1];
        if marker == 0xFF {
            pos += 1; // fill byte
            continue;
        }
        if marker == 0xDA || marker == 0xD9 {
            return None;
        }
        let len = u16::from_be_bytes([data[pos + 2], data[pos + 3]]) as usize;
        if len < 2 {
            return None;
        }
        let body = &data[pos + 4..(pos + 2 + len).min(data.len())];
        pos += 2 + len;
        return Some((marker, body));
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_segments_until_scan() {
        let data = [
            0xFF, 0xD8, 0xFF, 0xE1, 0, 4, b'a', b'b', 0xFF, 0xFF, 0xE2, 0, 3, b'c', 0xFF, 0xDA, 0,
            2,
        ];
        let segs: Vec<(u8, &[u8])> = segments(&data).collect();
        assert_eq!(segs, vec![(0xE1, &b"ab"[..]), (0xE2, &b"c"[..])]);
        assert_eq!(segments(b"not a jpeg").count(), 0);
    }
}
