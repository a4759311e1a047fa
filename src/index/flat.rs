//! A flattened, searchable copy of an hnsw_rs graph.
//!
//! hnsw_rs builds the graph (and keeps it for incremental inserts), but its search walks
//! reference-counted, lock-guarded nodes and allocates on every query. This copy lays the same
//! graph out as plain arrays — vectors in one block, neighbour lists as offset tables — and
//! searches it with a reusable visited set, so that a query costs little beyond its distance
//! computations. It is written as one file that is memory-mapped on load: a large reference
//! database is searched without reading it all into memory.
//!
//! File layout (little-endian; every section starts on a 64-byte boundary):
//! header `PPFLAT01`, dim, n, max_level, entry (u32) and the section table (u64); ids (i64 x n);
//! vectors (f32 x n x dim, unit length); layer 0 offsets (u32 x (n+1)) and neighbours (u32);
//! then per upper layer: members (u32, sorted), offsets, neighbours.

use std::collections::BinaryHeap;
use std::path::Path;

use super::Neighbor;
use crate::error::{Error, IoContext, Result};

const MAGIC: &[u8; 8] = b"PPFLAT01";

/// Where the file's bytes live: read into memory, or mapped.
enum Backing {
    Owned(Vec<u64>),
    Mapped(memmap2::Mmap),
}

impl Backing {
    fn bytes(&self) -> &[u8] {
        match self {
            // SAFETY: a Vec<u64> is a valid, aligned byte buffer of 8x its length.
            Backing::Owned(v) => unsafe {
                std::slice::from_raw_parts(v.as_ptr() as *const u8, v.len() * 8)
            },
            Backing::Mapped(m) => m,
        }
    }
}

#[derive(Debug, Clone, Copy)]
struct Section {
    offset: usize,
    len: usize, // in elements
}

pub struct FlatHnsw {
    backing: Backing,
    dim: usize,
    n: usize,
    entry: u32,
    ids: Section,
    vectors: Section,
    layer0_offsets: Section,
    layer0: Section,
    /// Per upper layer (1..=max_level): members, offsets, neighbours.
    upper: Vec<(Section, Section, Section)>,
}

impl std::fmt::Debug for FlatHnsw {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        write!(
            f,
            "FlatHnsw({} x {}, {} layers)",
            self.n,
            self.dim,
            self.upper.len() + 1
        )
    }
}

/// The graph to flatten: per point (by insertion index) its vector, id, and neighbour lists per layer.
pub struct GraphParts {
    pub dim: usize,
    pub ids: Vec<i64>,
    pub vectors: Vec<f32>,
    /// neighbours[point][layer] = neighbour point indices (layer 0 first); its length is level + 1.
    pub neighbours: Vec<Vec<Vec<u32>>>,
    pub entry: u32,
}

fn align64(x: usize) -> usize {
    x.div_ceil(64) * 64
}

impl FlatHnsw {
    /// Lays `parts` out in the file format (in memory).
    pub fn from_parts(parts: GraphParts) -> Result<FlatHnsw> {
        let bytes = Self::encode(&parts);
        let mut words = vec![0u64; bytes.len().div_ceil(8)];
        // SAFETY: `words` holds at least `bytes.len()` bytes.
        unsafe {
            std::ptr::copy_nonoverlapping(
                bytes.as_ptr(),
                words.as_mut_ptr() as *mut u8,
                bytes.len(),
            )
        };
        Self::parse(Backing::Owned(words), Path::new("<memory>"))
    }

    fn encode(p: &GraphParts) -> Vec<u8> {
        let n = p.ids.len();
        let max_level = p
            .neighbours
            .iter()
            .map(|l| l.len().saturating_sub(1))
            .max()
            .unwrap_or(0);
        // Magic, 4 u32 fields, then the table: layer-0 neighbour count, 4 + 3 x max_level section
        // offsets, max_level upper-layer member counts.
        let mut out = vec![0u8; align64(24 + 8 * (5 + 4 * max_level))];
        let mut sections: Vec<u64> = Vec::new();
        let mut push = |out: &mut Vec<u8>, data: &[u8]| {
            let start = align64(out.len());
            out.resize(start, 0);
            out.extend_from_slice(data);
            sections.push(start as u64);
        };
        let le_i64: Vec<u8> = p.ids.iter().flat_map(|x| x.to_le_bytes()).collect();
        push(&mut out, &le_i64);
        let le_f32: Vec<u8> = p.vectors.iter().flat_map(|x| x.to_le_bytes()).collect();
        push(&mut out, &le_f32);
        let csr = |lists: Vec<&Vec<u32>>| -> (Vec<u8>, Vec<u8>) {
            let mut offsets = Vec::with_capacity(lists.len() + 1);
            let mut flat = Vec::new();
            offsets.push(0u32);
            for l in lists {
                flat.extend_from_slice(l);
                offsets.push(flat.len() as u32);
            }
            (
                offsets.iter().flat_map(|x| x.to_le_bytes()).collect(),
                flat.iter().flat_map(|x| x.to_le_bytes()).collect(),
            )
        };
        let empty = Vec::new();
        let (o0, n0) = csr(p
            .neighbours
            .iter()
            .map(|l| l.first().unwrap_or(&empty))
            .collect());
        push(&mut out, &o0);
        push(&mut out, &n0);
        let mut upper_counts = Vec::new();
        for layer in 1..=max_level {
            let members: Vec<u32> = (0..n as u32)
                .filter(|&i| p.neighbours[i as usize].len() > layer)
                .collect();
            let (o, nb) = csr(members
                .iter()
                .map(|&i| &p.neighbours[i as usize][layer])
                .collect());
            let m: Vec<u8> = members.iter().flat_map(|x| x.to_le_bytes()).collect();
            upper_counts.push(members.len() as u64);
            push(&mut out, &m);
            push(&mut out, &o);
            push(&mut out, &nb);
        }
        out[0..8].copy_from_slice(MAGIC);
        let head = [p.dim as u32, n as u32, max_level as u32, p.entry];
        for (i, v) in head.iter().enumerate() {
            out[8 + 4 * i..12 + 4 * i].copy_from_slice(&v.to_le_bytes());
        }
        // Section table: n0 offsets, n0 neighbour count, then offsets; upper counts after.
        let mut table: Vec<u64> = vec![(n0.len() / 4) as u64];
        table.extend(&sections);
        table.extend(&upper_counts);
        // Upper layer neighbour counts are recoverable from their offsets tables.
        for (i, v) in table.iter().enumerate() {
            out[24 + 8 * i..32 + 8 * i].copy_from_slice(&v.to_le_bytes());
        }
        out
    }

    fn parse(backing: Backing, path: &Path) -> Result<FlatHnsw> {
        let bad = |why: &str| Error::Index(format!("{}: {why}", path.display()));
        let b = backing.bytes();
        if b.len() < 64 || &b[0..8] != MAGIC {
            return Err(bad("not a Pinpoint index file"));
        }
        let u32_at = |o: usize| u32::from_le_bytes(b[o..o + 4].try_into().unwrap()) as usize;
        let (dim, n, max_level, entry) = (u32_at(8), u32_at(12), u32_at(16), u32_at(20));
        if dim == 0 || max_level > 16 || (n > 0 && entry >= n) {
            return Err(bad("damaged header"));
        }
        let table_len = 1 + 4 + 3 * max_level + max_level;
        if 24 + 8 * table_len > b.len() {
            return Err(bad("truncated header"));
        }
        let t =
            |i: usize| u64::from_le_bytes(b[24 + 8 * i..32 + 8 * i].try_into().unwrap()) as usize;
        let n0_len = t(0);
        let sec = |i: usize, len: usize, elem: usize| -> Result<Section> {
            let offset = t(1 + i);
            if offset % 64 != 0
                || offset
                    .checked_add(len * elem)
                    .is_none_or(|end| end > b.len())
            {
                return Err(bad("section out of bounds"));
            }
            Ok(Section { offset, len })
        };
        let ids = sec(0, n, 8)?;
        let vectors = sec(1, n * dim, 4)?;
        let layer0_offsets = sec(2, n + 1, 4)?;
        let layer0 = sec(3, n0_len, 4)?;
        let mut upper = Vec::new();
        for l in 0..max_level {
            let count = t(1 + 4 + 3 * max_level + l);
            let members = sec(4 + 3 * l, count, 4)?;
            let offsets = sec(5 + 3 * l, count + 1, 4)?;
            let total = u32_at(offsets.offset + 4 * count);
            let neighbours = sec(6 + 3 * l, total, 4)?;
            upper.push((members, offsets, neighbours));
        }
        let flat = FlatHnsw {
            backing,
            dim,
            n,
            entry: entry as u32,
            ids,
            vectors,
            layer0_offsets,
            layer0,
            upper,
        };
        // Every neighbour must be a valid point: a damaged file is refused here, not at search time.
        if flat.u32s(flat.layer0).iter().any(|&x| x as usize >= n)
            || flat
                .u32s(flat.layer0_offsets)
                .windows(2)
                .any(|w| w[0] > w[1] || w[1] as usize > n0_len)
        {
            return Err(bad("damaged neighbour lists"));
        }
        for (m, o, nb) in &flat.upper {
            let total = nb.len;
            if flat.u32s(*m).iter().any(|&x| x as usize >= n)
                || flat.u32s(*nb).iter().any(|&x| x as usize >= n)
                || flat
                    .u32s(*o)
                    .windows(2)
                    .any(|w| w[0] > w[1] || w[1] as usize > total)
            {
                return Err(bad("damaged upper layer"));
            }
        }
        Ok(flat)
    }

    fn u32s(&self, s: Section) -> &[u32] {
        let b = &self.backing.bytes()[s.offset..s.offset + 4 * s.len];
        // SAFETY: sections are 64-byte aligned within a page- or u64-aligned buffer; u32 has no
        // invalid bit patterns; the file is little-endian like every target Pinpoint builds for.
        unsafe { std::slice::from_raw_parts(b.as_ptr() as *const u32, s.len) }
    }

    fn f32s(&self, s: Section) -> &[f32] {
        let b = &self.backing.bytes()[s.offset..s.offset + 4 * s.len];
        // SAFETY: as in `u32s`; any bit pattern is a valid f32.
        unsafe { std::slice::from_raw_parts(b.as_ptr() as *const f32, s.len) }
    }

    pub fn len(&self) -> usize {
        self.n
    }

    pub fn is_empty(&self) -> bool {
        self.n == 0
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn id(&self, point: u32) -> i64 {
        let b = &self.backing.bytes()
            [self.ids.offset + 8 * point as usize..self.ids.offset + 8 * point as usize + 8];
        i64::from_le_bytes(b.try_into().unwrap())
    }

    fn neighbours(&self, layer: usize, point: u32) -> &[u32] {
        if layer == 0 {
            let o = self.u32s(self.layer0_offsets);
            return &self.u32s(self.layer0)
                [o[point as usize] as usize..o[point as usize + 1] as usize];
        }
        let (m, o, nb) = self.upper[layer - 1];
        let members = self.u32s(m);
        match members.binary_search(&point) {
            Ok(row) => {
                let o = self.u32s(o);
                &self.u32s(nb)[o[row] as usize..o[row + 1] as usize]
            }
            Err(_) => &[],
        }
    }

    pub fn save(&self, path: &Path) -> Result<()> {
        let tmp = path.with_extension("flat.tmp");
        std::fs::write(&tmp, self.backing.bytes()).at(&tmp)?;
        std::fs::rename(&tmp, path).at(path)
    }

    /// Memory-maps an index file.
    pub fn open(path: &Path) -> Result<FlatHnsw> {
        let file = std::fs::File::open(path).at(path)?;
        // SAFETY: index files are written whole and renamed into place, never modified after.
        let map = unsafe { memmap2::Mmap::map(&file) }.at(path)?;
        Self::parse(Backing::Mapped(map), path)
    }

    /// The `k` most similar points to unit vector `q`, exploring `ef` candidates on layer 0.
    pub fn search(&self, q: &[f32], k: usize, ef: usize) -> Vec<Neighbor> {
        if self.n == 0 {
            return Vec::new();
        }
        let ef = ef.max(k);
        let (vectors, dim) = (self.f32s(self.vectors), self.dim);
        let (l0_offsets, l0) = (self.u32s(self.layer0_offsets), self.u32s(self.layer0));
        let vector = |p: u32| &vectors[p as usize * dim..(p as usize + 1) * dim];
        let mut cur = self.entry;
        let mut cur_sim = dot(q, vector(cur));
        for layer in (1..=self.upper.len()).rev() {
            loop {
                let mut moved = false;
                for &nb in self.neighbours(layer, cur) {
                    let s = dot(q, vector(nb));
                    if s > cur_sim {
                        (cur, cur_sim) = (nb, s);
                        moved = true;
                    }
                }
                if !moved {
                    break;
                }
            }
        }
        VISITED.with(|v| {
            let mut visited = v.borrow_mut();
            visited.reset(self.n);
            // candidates: best first; results: worst first (bounded at ef).
            let mut candidates = BinaryHeap::with_capacity(ef * 2);
            let mut results: BinaryHeap<std::cmp::Reverse<Scored>> =
                BinaryHeap::with_capacity(ef + 1);
            visited.insert(cur);
            candidates.push(Scored(cur_sim, cur));
            results.push(std::cmp::Reverse(Scored(cur_sim, cur)));
            while let Some(Scored(s, c)) = candidates.pop() {
                let worst = results.peek().map(|r| r.0 .0).unwrap_or(f32::NEG_INFINITY);
                if s < worst && results.len() >= ef {
                    break;
                }
                let list =
                    &l0[l0_offsets[c as usize] as usize..l0_offsets[c as usize + 1] as usize];
                for (j, &nb) in list.iter().enumerate() {
                    // Start fetching the next neighbour's vector while this one is scored.
                    if let Some(&next) = list.get(j + 1) {
                        prefetch(vector(next));
                    }
                    if !visited.insert(nb) {
                        continue;
                    }
                    let sn = dot(q, vector(nb));
                    let worst = results.peek().map(|r| r.0 .0).unwrap_or(f32::NEG_INFINITY);
                    if results.len() < ef || sn > worst {
                        candidates.push(Scored(sn, nb));
                        results.push(std::cmp::Reverse(Scored(sn, nb)));
                        if results.len() > ef {
                            results.pop();
                        }
                    }
                }
            }
            let mut out: Vec<Scored> = results.into_iter().map(|r| r.0).collect();
            out.sort_by(|a, b| b.0.total_cmp(&a.0));
            out.truncate(k);
            out.into_iter()
                .map(|Scored(s, p)| Neighbor {
                    id: self.id(p),
                    similarity: s,
                })
                .collect()
        })
    }
}

/// Asks the processor to start loading `v` into cache.
#[inline(always)]
fn prefetch(v: &[f32]) {
    #[cfg(target_arch = "x86_64")]
    for line in v.chunks(16).take(4) {
        // SAFETY: prefetching is a hint; the address is inside a live slice.
        unsafe {
            std::arch::x86_64::_mm_prefetch(
                line.as_ptr() as *const i8,
                std::arch::x86_64::_MM_HINT_T0,
            )
        };
    }
    #[cfg(not(target_arch = "x86_64"))]
    let _ = v;
}

#[derive(Clone, Copy, PartialEq)]
struct Scored(f32, u32);
impl Eq for Scored {}
impl PartialOrd for Scored {
    fn partial_cmp(&self, other: &Self) -> Option<std::cmp::Ordering> {
        Some(self.cmp(other))
    }
}
impl Ord for Scored {
    fn cmp(&self, other: &Self) -> std::cmp::Ordering {
        self.0.total_cmp(&other.0).then(self.1.cmp(&other.1))
    }
}

/// Visited marks by generation: clearing is one increment, not a pass over every point.
struct Visited {
    marks: Vec<u32>,
    generation: u32,
}

impl Visited {
    fn reset(&mut self, n: usize) {
        if self.marks.len() < n {
            self.marks.resize(n, 0);
        }
        self.generation = self.generation.wrapping_add(1);
        if self.generation == 0 {
            self.marks.iter_mut().for_each(|m| *m = 0);
            self.generation = 1;
        }
    }

    /// Marks `p`; false if it was already marked.
    fn insert(&mut self, p: u32) -> bool {
        let m = &mut self.marks[p as usize];
        if *m == self.generation {
            false
        } else {
            *m = self.generation;
            true
        }
    }
}

thread_local! {
    static VISITED: std::cell::RefCell<Visited> = const { std::cell::RefCell::new(Visited { marks: Vec::new(), generation: 0 }) };
}

/// Dot product with 16 independent accumulators, so that the compiler vectorises it — with the
/// widest vector unit this processor has (the default target only promises SSE2).
#[inline]
pub fn dot(a: &[f32], b: &[f32]) -> f32 {
    #[cfg(target_arch = "x86_64")]
    {
        type Kernel = fn(&[f32], &[f32]) -> f32;
        static KERNEL: std::sync::OnceLock<Kernel> = std::sync::OnceLock::new();
        let k = KERNEL.get_or_init(|| {
            if is_x86_feature_detected!("avx512f") {
                // SAFETY: only chosen when the processor has AVX-512F.
                |a, b| unsafe { dot_avx512(a, b) }
            } else if is_x86_feature_detected!("avx2") && is_x86_feature_detected!("fma") {
                // SAFETY: only chosen when the processor has AVX2 and FMA.
                |a, b| unsafe { dot_avx2(a, b) }
            } else {
                dot_portable
            }
        });
        k(a, b)
    }
    #[cfg(not(target_arch = "x86_64"))]
    dot_portable(a, b)
}

#[inline(always)]
fn dot_portable(a: &[f32], b: &[f32]) -> f32 {
    let mut acc = [0f32; 16];
    let (ca, cb) = (a.chunks_exact(16), b.chunks_exact(16));
    let (ra, rb) = (ca.remainder(), cb.remainder());
    for (x, y) in ca.zip(cb) {
        for i in 0..16 {
            acc[i] += x[i] * y[i];
        }
    }
    let mut s: f32 = acc.iter().sum();
    for (x, y) in ra.iter().zip(rb) {
        s += x * y;
    }
    s
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx512f")]
unsafe fn dot_avx512(a: &[f32], b: &[f32]) -> f32 {
    dot_portable(a, b)
}

#[cfg(target_arch = "x86_64")]
#[target_feature(enable = "avx2,fma")]
unsafe fn dot_avx2(a: &[f32], b: &[f32]) -> f32 {
    dot_portable(a, b)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn line_graph() -> GraphParts {
        // 5 points on a circle, layer 0 a ring, point 2 also on layer 1 (the entry).
        let vectors: Vec<f32> = (0..5)
            .flat_map(|i| {
                let a = i as f32 * 0.3;
                [a.cos(), a.sin()]
            })
            .collect();
        let ring = |i: u32| vec![(i + 4) % 5, (i + 1) % 5];
        let neighbours = (0..5u32)
            .map(|i| {
                if i == 2 {
                    vec![ring(i), vec![]]
                } else {
                    vec![ring(i)]
                }
            })
            .collect();
        GraphParts {
            dim: 2,
            ids: (0..5).map(|i| 100 + i).collect(),
            vectors,
            neighbours,
            entry: 2,
        }
    }

    #[test]
    fn round_trips_through_a_file_and_searches() {
        let flat = FlatHnsw::from_parts(line_graph()).unwrap();
        let q = [0.0f32.cos(), 0.0f32.sin()];
        let r = flat.search(&q, 2, 4);
        assert_eq!(r.iter().map(|n| n.id).collect::<Vec<_>>(), vec![100, 101]);
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("x.flat");
        flat.save(&path).unwrap();
        let mapped = FlatHnsw::open(&path).unwrap();
        assert_eq!(mapped.search(&q, 2, 4)[0].id, 100);
        // A damaged file is refused.
        let mut bytes = std::fs::read(&path).unwrap();
        let len = bytes.len();
        bytes.truncate(len / 2);
        std::fs::write(&path, &bytes).unwrap();
        assert!(FlatHnsw::open(&path).is_err());
        std::fs::write(&path, b"garbage").unwrap();
        assert!(FlatHnsw::open(&path).is_err());
    }

    #[test]
    fn dot_matches_naive() {
        let a: Vec<f32> = (0..37).map(|i| i as f32 * 0.1).collect();
        let b: Vec<f32> = (0..37).map(|i| 1.0 - i as f32 * 0.01).collect();
        let naive: f32 = a.iter().zip(&b).map(|(x, y)| x * y).sum();
        assert!((dot(&a, &b) - naive).abs() < 1e-3);
    }
}
