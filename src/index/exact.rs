//! Exact nearest-neighbour search by blocked matrix products: the ground truth for tests and
//! benchmarks, and the faster index below a few tens of thousands of references.

use rayon::prelude::*;

use super::Neighbor;

/// Unit vectors in one contiguous row-major matrix, with the caller's ids.
#[derive(Debug, Clone, Default)]
pub struct ExactIndex {
    dim: usize,
    ids: Vec<i64>,
    data: Vec<f32>,
}

/// Database rows per block: a block of scores for a batch of queries stays in cache.
const DB_BLOCK: usize = 2048;
/// Queries per batch.
const QUERY_BLOCK: usize = 64;

impl ExactIndex {
    pub fn new(dim: usize) -> Self {
        ExactIndex {
            dim,
            ids: Vec::new(),
            data: Vec::new(),
        }
    }

    pub fn with_vectors(dim: usize, items: impl IntoIterator<Item = (i64, Vec<f32>)>) -> Self {
        let mut index = ExactIndex::new(dim);
        for (id, v) in items {
            index.add(id, &v);
        }
        index
    }

    pub fn dim(&self) -> usize {
        self.dim
    }

    pub fn len(&self) -> usize {
        self.ids.len()
    }

    pub fn is_empty(&self) -> bool {
        self.ids.is_empty()
    }

    pub fn ids(&self) -> &[i64] {
        &self.ids
    }

    pub fn vector(&self, row: usize) -> &[f32] {
        &self.data[row * self.dim..(row + 1) * self.dim]
    }

    pub fn add(&mut self, id: i64, v: &[f32]) {
        assert_eq!(
            v.len(),
            self.dim,
            "vector of {} values in a {}-d index",
            v.len(),
            self.dim
        );
        self.ids.push(id);
        self.data.extend_from_slice(v);
    }

    /// Removes every row whose id is in `ids`.
    pub fn remove(&mut self, ids: &std::collections::HashSet<i64>) {
        let dim = self.dim;
        let mut keep_ids = Vec::with_capacity(self.ids.len());
        let mut keep = Vec::with_capacity(self.data.len());
        for (row, id) in self.ids.iter().enumerate() {
            if !ids.contains(id) {
                keep_ids.push(*id);
                keep.extend_from_slice(&self.data[row * dim..(row + 1) * dim]);
            }
        }
        self.ids = keep_ids;
        self.data = keep;
    }

    /// The `k` most similar rows (dot product) for each query, best first.
    pub fn search(&self, queries: &[Vec<f32>], k: usize) -> Vec<Vec<Neighbor>> {
        let n = self.len();
        let k = k.min(n);
        if k == 0 {
            return queries.iter().map(|_| Vec::new()).collect();
        }
        queries
            .par_chunks(QUERY_BLOCK)
            .flat_map_iter(|batch| {
                let m = batch.len();
                let q: Vec<f32> = batch.iter().flat_map(|v| v.iter().copied()).collect();
                let mut best: Vec<Vec<(f32, usize)>> = vec![Vec::with_capacity(2 * k); m];
                let mut scores = vec![0f32; m * DB_BLOCK];
                for start in (0..n).step_by(DB_BLOCK) {
                    let rows = DB_BLOCK.min(n - start);
                    let block = &self.data[start * self.dim..(start + rows) * self.dim];
                    // scores (m x rows) = q (m x dim) * block^T (dim x rows)
                    // SAFETY: extents match the slices; block is read transposed through its strides.
                    unsafe {
                        gemm::gemm(
                            m,
                            rows,
                            self.dim,
                            scores.as_mut_ptr(),
                            1,
                            rows as isize,
                            false,
                            q.as_ptr(),
                            1,
                            self.dim as isize,
                            block.as_ptr(),
                            self.dim as isize,
                            1,
                            0.0,
                            1.0,
                            false,
                            false,
                            false,
                            gemm::Parallelism::None,
                        );
                    }
                    for (qi, list) in best.iter_mut().enumerate() {
                        let row = &scores[qi * rows..(qi + 1) * rows];
                        let floor = if list.len() >= k {
                            list.iter().map(|x| x.0).fold(f32::INFINITY, f32::min)
                        } else {
                            f32::NEG_INFINITY
                        };
                        for (j, &s) in row.iter().enumerate() {
                            if s > floor {
                                list.push((s, start + j));
                            }
                        }
                        if list.len() > 2 * k {
                            list.select_nth_unstable_by(k, |a, b| b.0.total_cmp(&a.0));
                            list.truncate(k);
                        }
                    }
                }
                best.into_iter().map(move |mut list| {
                    list.sort_by(|a, b| b.0.total_cmp(&a.0).then(a.1.cmp(&b.1)));
                    list.truncate(k);
                    list.into_iter()
                        .map(|(s, row)| Neighbor {
                            id: self.ids[row],
                            similarity: s,
                        })
                        .collect()
                })
            })
            .collect()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn finds_the_true_top_k_across_blocks() {
        let dim = 8;
        let mut rng = 1u64;
        let mut next = || {
            rng = rng
                .wrapping_mul(6364136223846793005)
                .wrapping_add(1442695040888963407);
            (rng >> 40) as f32 / (1u64 << 24) as f32 - 0.5
        };
        let unit = |v: Vec<f32>| {
            let n = v.iter().map(|x| x * x).sum::<f32>().sqrt();
            v.into_iter().map(|x| x / n).collect::<Vec<f32>>()
        };
        let db: Vec<Vec<f32>> = (0..5000)
            .map(|_| unit((0..dim).map(|_| next()).collect()))
            .collect();
        let queries: Vec<Vec<f32>> = (0..70)
            .map(|_| unit((0..dim).map(|_| next()).collect()))
            .collect();
        let index = ExactIndex::with_vectors(
            dim,
            db.iter()
                .cloned()
                .enumerate()
                .map(|(i, v)| (i as i64 * 10, v)),
        );
        let got = index.search(&queries, 5);
        for (q, res) in queries.iter().zip(&got) {
            let mut brute: Vec<(f32, usize)> = db
                .iter()
                .enumerate()
                .map(|(i, d)| (q.iter().zip(d).map(|(a, b)| a * b).sum(), i))
                .collect();
            brute.sort_by(|a, b| b.0.total_cmp(&a.0));
            let want: Vec<i64> = brute[..5].iter().map(|x| x.1 as i64 * 10).collect();
            assert_eq!(res.iter().map(|n| n.id).collect::<Vec<_>>(), want);
            assert!((res[0].similarity - brute[0].0).abs() < 1e-5);
        }
        let mut small = index.clone();
        small.remove(&(0..4990).map(|i| i * 10).collect());
        assert_eq!(small.len(), 10);
        assert_eq!(small.search(&queries[..1], 50)[0].len(), 10);
    }
}
