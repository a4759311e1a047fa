//! The ISO base media box structure that HEIF photos and MP4/QuickTime videos share.

/// The boxes directly inside `data`: (type, body). A size of 0 runs to the end of `data`, 1 means
/// a 64-bit size follows. Stops at the first box that overruns `data`.
pub fn boxes(data: &[u8]) -> impl Iterator<Item = ([u8; 4], &[u8])> {
    let mut pos = 0usize;
    std::iter::from_fn(move || {
        let header = data.get(pos..pos + 8)?;
        let kind: [u8; 4] = header[4..8].try_into().unwrap();
        let (start, size) = match u32::from_be_bytes(header[0..4].try_into().unwrap()) {
            0 => (8, data.len() - pos),
            1 => {
                let large = data.get(pos + 8..pos + 16)?;
                (
                    16,
                    usize::try_from(u64::from_be_bytes(large.try_into().unwrap())).ok()?,
                )
            }
            s => (8, s as usize),
        };
        if size < start || size > data.len() - pos {
            return None;
        }
        let body = &data[pos + start..pos + size];
        pos += size;
        Some((kind, body))
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn walks_sizes_of_all_three_kinds_and_stops_at_an_overrun() {
        let mut data = b"\0\0\0\x0cfree1234".to_vec();
        data.extend_from_slice(b"\0\0\0\x01mdat\0\0\0\0\0\0\0\x12ab");
        data.extend_from_slice(b"\0\0\0\x00moovrest");
        let found: Vec<([u8; 4], &[u8])> = boxes(&data).collect();
        assert_eq!(
            found,
            vec![
                (*b"free", &b"1234"[..]),
                (*b"mdat", &b"ab"[..]),
                (*b"moov", &b"rest"[..])
            ]
        );
        assert_eq!(boxes(b"\0\0\0\x40trakshort").count(), 0);
    }
}
