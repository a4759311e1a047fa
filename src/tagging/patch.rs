//! What it takes to turn a written file back into its original bytes, kept small: the writers
//! change one metadata block (and patch a few bytes in place), so the reverse is a splice of that
//! block or a few in-place regions and a length, never a copy of the photo.

use serde::{Deserialize, Serialize};

/// Turns the new bytes back into the old ones.
#[derive(Debug, Clone, PartialEq, Serialize, Deserialize)]
pub enum Reverse {
    /// Replace `new[at .. at + new_len]` by `old`.
    Splice { at: u64, new_len: u64, old: Vec<u8> },
    /// Put `regions` (offset, old bytes) back, then cut the file to `old_len`.
    Regions {
        old_len: u64,
        regions: Vec<(u64, Vec<u8>)>,
    },
    /// The file did not exist before: remove it.
    Delete,
}

/// Largest reverse patch kept; a bigger difference means a writer did something unexpected.
const MAX_PATCH: usize = 4 << 20;

/// The smallest reverse of `old -> new` among the two shapes; `None` if neither is small.
pub fn reverse(old: &[u8], new: &[u8]) -> Option<Reverse> {
    let prefix = old.iter().zip(new).take_while(|(a, b)| a == b).count();
    let max_suffix = old.len().min(new.len()) - prefix;
    let suffix = old
        .iter()
        .rev()
        .zip(new.iter().rev())
        .take(max_suffix)
        .take_while(|(a, b)| a == b)
        .count();
    let splice_len = old.len() - prefix - suffix;
    let splice = Reverse::Splice {
        at: prefix as u64,
        new_len: (new.len() - prefix - suffix) as u64,
        old: old[prefix..old.len() - suffix].to_vec(),
    };
    if splice_len <= 64 * 1024 {
        return Some(splice);
    }
    // In-place regions within the old length (plus whatever was appended).
    let mut regions: Vec<(u64, Vec<u8>)> = Vec::new();
    let mut total = 0;
    let mut i = 0;
    let common = old.len().min(new.len());
    while i < common {
        if old[i] != new[i] {
            let start = i;
            let mut end = i;
            // Merge differences closer than 16 bytes into one region.
            while i < common && (old[i] != new[i] || i - end < 16) {
                if old[i] != new[i] {
                    end = i + 1;
                }
                i += 1;
            }
            total += end - start;
            if total > MAX_PATCH {
                return None;
            }
            regions.push((start as u64, old[start..end].to_vec()));
        } else {
            i += 1;
        }
    }
    if old.len() > new.len() {
        let tail = old.len() - new.len();
        if total + tail > MAX_PATCH {
            return None;
        }
        regions.push((new.len() as u64, old[new.len()..].to_vec()));
    }
    Some(Reverse::Regions {
        old_len: old.len() as u64,
        regions,
    })
}

/// Applies a reverse patch to the current bytes; `None` when it does not fit them.
pub fn apply(current: &[u8], r: &Reverse) -> Option<Vec<u8>> {
    match r {
        Reverse::Splice { at, new_len, old } => {
            let (at, new_len) = (*at as usize, *new_len as usize);
            let end = at.checked_add(new_len)?;
            if end > current.len() {
                return None;
            }
            let mut out = Vec::with_capacity(current.len() - new_len + old.len());
            out.extend_from_slice(&current[..at]);
            out.extend_from_slice(old);
            out.extend_from_slice(&current[end..]);
            Some(out)
        }
        Reverse::Regions { old_len, regions } => {
            let mut out = current.to_vec();
            out.resize(*old_len as usize, 0);
            for (at, bytes) in regions {
                let at = *at as usize;
                out.get_mut(at..at + bytes.len())?.copy_from_slice(bytes);
            }
            Some(out)
        }
        Reverse::Delete => None,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn splice_for_a_changed_block_in_the_middle() {
        let old = b"headerOLDMETAtail-data-unchanged".to_vec();
        let new = b"headerNEW-LONGER-METAtail-data-unchanged".to_vec();
        let r = reverse(&old, &new).unwrap();
        assert!(matches!(r, Reverse::Splice { .. }));
        assert_eq!(apply(&new, &r).unwrap(), old);
    }

    #[test]
    fn regions_for_patches_and_an_appended_tail() {
        let mut old = vec![7u8; 200_000];
        old[4] = 1;
        let mut new = old.clone();
        new[4] = 9; // pointer patch near the start
        new[150_000] = 3; // entry patch far away
        new.extend_from_slice(&[5u8; 500]); // appended data
        let r = reverse(&old, &new).unwrap();
        match &r {
            Reverse::Regions { regions, .. } => assert_eq!(regions.len(), 2),
            other => panic!("{other:?}"),
        }
        assert_eq!(apply(&new, &r).unwrap(), old);
        assert!(apply(&new[..10], &r).is_none() || apply(&new[..10], &r).unwrap() != old);
    }
}
