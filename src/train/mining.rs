//! Triplets from places alone: which training images are positives (same place) and negatives
//! (clearly another place) for each other, and the within-batch hard-negative choice of the
//! authors' code.

use std::collections::HashMap;

use crate::geo::GeoPoint;
use crate::model::build::Rng;

/// Distances that make two geotagged photos the same place or different places.
#[derive(Debug, Clone, Copy, PartialEq, serde::Serialize)]
pub struct Thresholds {
    /// Positives: within this many metres (25 m, as in the paper).
    pub positive_m: f64,
    /// Negatives: farther than this (225 m, as in the authors' code).
    pub negative_m: f64,
}

impl Default for Thresholds {
    fn default() -> Self {
        Thresholds {
            positive_m: 25.0,
            negative_m: 225.0,
        }
    }
}

/// What supervises training: positions (GPS tags) or place labels.
#[derive(Debug, Clone)]
pub enum Places {
    Positions(Vec<GeoPoint>),
    /// A place label per image; `areas` optionally narrows positives to the same area too.
    Labels {
        labels: Vec<String>,
        areas: Option<Vec<String>>,
    },
}

/// A region of an image as fractions of its width and height: x0, y0, x1, y1.
pub type Region = [f32; 4];

/// Geographic neighbours that passed geometric verification (local feature matches under a
/// RANSAC-estimated transform), with the region each image shares with the other — the bounding
/// box of its inliers, the paper's region-of-interest crop. When training verifies positives, a
/// neighbour that is not in this set is neither positive nor negative: near, but maybe facing
/// elsewhere.
#[derive(Debug, Clone, Default)]
pub struct VerifiedPairs(HashMap<(usize, usize), (Region, Region)>);

impl VerifiedPairs {
    /// Records that `a` and `b` show the same scene, in `region_a` of `a` and `region_b` of `b`.
    pub fn insert(&mut self, a: usize, b: usize, region_a: Region, region_b: Region) {
        if a <= b {
            self.0.insert((a, b), (region_a, region_b));
        } else {
            self.0.insert((b, a), (region_b, region_a));
        }
    }

    pub fn contains(&self, a: usize, b: usize) -> bool {
        self.0.contains_key(&(a.min(b), a.max(b)))
    }

    /// The region of `image` that it shares with `other`, if the pair was verified.
    pub fn region(&self, image: usize, other: usize) -> Option<Region> {
        let (ra, rb) = self.0.get(&(image.min(other), image.max(other)))?;
        Some(if image <= other { *ra } else { *rb })
    }

    pub fn len(&self) -> usize {
        self.0.len()
    }

    pub fn is_empty(&self) -> bool {
        self.0.is_empty()
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Relation {
    Positive,
    Negative,
    /// Between the thresholds: used as neither.
    Unsure,
}

impl Places {
    pub fn len(&self) -> usize {
        match self {
            Places::Positions(p) => p.len(),
            Places::Labels { labels, .. } => labels.len(),
        }
    }

    pub fn is_empty(&self) -> bool {
        self.len() == 0
    }

    pub fn relation(&self, a: usize, b: usize, t: &Thresholds) -> Relation {
        match self {
            Places::Positions(p) => {
                let d = p[a].distance_m(&p[b]);
                if d <= t.positive_m {
                    Relation::Positive
                } else if d > t.negative_m {
                    Relation::Negative
                } else {
                    Relation::Unsure
                }
            }
            Places::Labels { labels, areas } => {
                if labels[a] != labels[b] {
                    Relation::Negative
                } else if areas.as_ref().is_none_or(|ar| ar[a] == ar[b]) {
                    Relation::Positive
                } else {
                    Relation::Unsure
                }
            }
        }
    }

    /// Thresholds that work for this set: the defaults when at least half the images have a
    /// positive and a negative; otherwise widened (too sparse) or narrowed (too local), with a
    /// warning saying so.
    pub fn adapt(&self, wanted: Thresholds) -> (Thresholds, Option<String>) {
        let Places::Positions(p) = self else {
            return (wanted, None);
        };
        let usable = |t: &Thresholds| {
            (0..p.len())
                .filter(|&i| {
                    let mut pos = false;
                    let mut neg = false;
                    for j in 0..p.len() {
                        if i != j {
                            match self.relation(i, j, t) {
                                Relation::Positive => pos = true,
                                Relation::Negative => neg = true,
                                Relation::Unsure => {}
                            }
                        }
                    }
                    pos && neg
                })
                .count()
        };
        let half = p.len().div_ceil(2);
        if usable(&wanted) >= half {
            return (wanted, None);
        }
        let mut t = wanted;
        for _ in 0..12 {
            let pos_ok = (0..p.len())
                .any(|i| (0..p.len()).any(|j| i != j && p[i].distance_m(&p[j]) <= t.positive_m));
            let neg_ok = (0..p.len())
                .any(|i| (0..p.len()).any(|j| i != j && p[i].distance_m(&p[j]) > t.negative_m));
            if !pos_ok {
                t.positive_m *= 2.0;
                t.negative_m = t.negative_m.max(t.positive_m * 3.0);
            } else if !neg_ok {
                t.negative_m /= 2.0;
                t.positive_m = t.positive_m.min(t.negative_m / 3.0);
            } else if usable(&t) < half {
                t.positive_m *= 1.5;
                t.negative_m = t.negative_m.max(t.positive_m * 3.0);
            } else {
                break;
            }
        }
        let note = format!(
            "too few photos have both a neighbour within {:.0} m and one beyond {:.0} m; training with positives within {:.0} m and negatives beyond {:.0} m",
            wanted.positive_m, wanted.negative_m, t.positive_m, t.negative_m
        );
        (t, Some(note))
    }

    /// The relation training uses: with verified pairs, a geographic positive counts only when
    /// its pair was verified (otherwise it is unsure); negatives need no verification.
    pub fn supervised(
        &self,
        a: usize,
        b: usize,
        t: &Thresholds,
        verified: Option<&VerifiedPairs>,
    ) -> Relation {
        match self.relation(a, b, t) {
            Relation::Positive if verified.is_some_and(|v| !v.contains(a, b)) => Relation::Unsure,
            r => r,
        }
    }

    /// Images with at least one positive and one negative among the others: usable as queries.
    pub fn trainable(&self, t: &Thresholds, verified: Option<&VerifiedPairs>) -> Vec<usize> {
        (0..self.len())
            .filter(|&i| {
                let rel: Vec<Relation> = (0..self.len())
                    .filter(|&j| j != i)
                    .map(|j| self.supervised(i, j, t, verified))
                    .collect();
                rel.contains(&Relation::Positive) && rel.contains(&Relation::Negative)
            })
            .collect()
    }
}

/// One training batch: queries, one positive per query, and other images that serve as
/// candidate negatives for every query they are far enough from.
#[derive(Debug, Clone)]
pub struct Batch {
    /// Image indices in the batch (distinct).
    pub images: Vec<usize>,
    /// (query position in `images`, positive positions, negative positions).
    pub tuples: Vec<(usize, Vec<usize>, Vec<usize>)>,
}

/// Draws `queries` trainable images, a random positive for each, and `extra` random images, then
/// lists for every query its positives and negatives within the batch.
pub fn sample_batch(
    places: &Places,
    t: &Thresholds,
    verified: Option<&VerifiedPairs>,
    trainable: &[usize],
    queries: usize,
    extra: usize,
    rng: &mut Rng,
) -> Batch {
    let n = places.len();
    let mut images: Vec<usize> = Vec::new();
    let push = |i: usize, images: &mut Vec<usize>| {
        if !images.contains(&i) {
            images.push(i);
        }
    };
    for &q in rng
        .sample(trainable.len(), queries.min(trainable.len()))
        .iter()
        .map(|&k| &trainable[k])
    {
        push(q, &mut images);
        let pos: Vec<usize> = (0..n)
            .filter(|&j| j != q && places.supervised(q, j, t, verified) == Relation::Positive)
            .collect();
        if !pos.is_empty() {
            push(pos[rng.below(pos.len())], &mut images);
        }
    }
    let query_count = images.len();
    for k in rng.sample(n, extra.min(n)) {
        push(k, &mut images);
    }
    let tuples = (0..query_count)
        .filter(|&qi| trainable.contains(&images[qi]))
        .filter_map(|qi| {
            let q = images[qi];
            let mut pos = Vec::new();
            let mut neg = Vec::new();
            for (j, &img) in images.iter().enumerate() {
                if j == qi {
                    continue;
                }
                match places.supervised(q, img, t, verified) {
                    Relation::Positive => pos.push(j),
                    Relation::Negative => neg.push(j),
                    Relation::Unsure => {}
                }
            }
            (!pos.is_empty() && !neg.is_empty()).then_some((qi, pos, neg))
        })
        .collect();
    Batch { images, tuples }
}

/// The authors' choice of negatives for one query: among the candidates that violate the margin
/// (similarity above the positive's minus the margin), the 4 hardest, of which 2 are kept at
/// random, plus 2 random candidates. Returns indices into `candidates`.
pub fn choose_negatives(
    negative_sims: &[f32],
    positive_sim: f32,
    margin: f32,
    rng: &mut Rng,
) -> Vec<usize> {
    let mut violating: Vec<usize> = (0..negative_sims.len())
        .filter(|&i| negative_sims[i] + margin > positive_sim)
        .collect();
    violating.sort_by(|&a, &b| negative_sims[b].total_cmp(&negative_sims[a]));
    violating.truncate(4);
    let mut chosen: Vec<usize> = rng
        .sample(violating.len(), violating.len().min(2))
        .into_iter()
        .map(|k| violating[k])
        .collect();
    for k in rng.sample(negative_sims.len(), negative_sims.len().min(2)) {
        if !chosen.contains(&k) {
            chosen.push(k);
        }
    }
    chosen
}

#[cfg(test)]
mod tests {
    use super::*;

    fn grid() -> Places {
        // Clusters of 3 photos within ~10 m, clusters 1 km apart, and one photo 100 m from the
        // first cluster (between the thresholds).
        let mut p = Vec::new();
        for c in 0..5 {
            for k in 0..3 {
                p.push(GeoPoint::new(
                    48.0 + c as f64 * 0.009,
                    2.0 + k as f64 * 0.0001,
                ));
            }
        }
        p.push(GeoPoint::new(48.0009, 2.0));
        Places::Positions(p)
    }

    #[test]
    fn batches_honour_the_thresholds() {
        let places = grid();
        let t = Thresholds::default();
        let trainable = places.trainable(&t, None);
        assert_eq!(trainable.len(), 15, "every clustered photo, not the loner");
        let mut rng = Rng::new(7);
        let Places::Positions(p) = &places else {
            unreachable!()
        };
        for _ in 0..50 {
            let b = sample_batch(&places, &t, None, &trainable, 3, 6, &mut rng);
            assert!(!b.tuples.is_empty());
            for (q, pos, neg) in &b.tuples {
                let qp = p[b.images[*q]];
                for &i in pos {
                    assert!(qp.distance_m(&p[b.images[i]]) <= 25.0);
                }
                for &i in neg {
                    assert!(qp.distance_m(&p[b.images[i]]) > 225.0);
                }
            }
        }
    }

    #[test]
    fn only_verified_neighbours_are_positives_when_verification_is_on() {
        let places = grid();
        let t = Thresholds::default();
        let mut v = VerifiedPairs::default();
        // In the first cluster only photos 0 and 1 verify; 2 is near but shares no scene.
        v.insert(1, 0, [0.5, 0.0, 1.0, 1.0], [0.0, 0.0, 0.5, 1.0]);
        assert_eq!(v.region(0, 1), Some([0.0, 0.0, 0.5, 1.0]));
        assert_eq!(v.region(1, 0), Some([0.5, 0.0, 1.0, 1.0]));
        assert_eq!(places.supervised(0, 2, &t, Some(&v)), Relation::Unsure);
        assert_eq!(places.supervised(0, 1, &t, Some(&v)), Relation::Positive);
        assert_eq!(places.supervised(0, 5, &t, Some(&v)), Relation::Negative);
        assert_eq!(places.trainable(&t, Some(&v)), vec![0, 1]);
        let mut rng = Rng::new(3);
        for _ in 0..20 {
            let b = sample_batch(&places, &t, Some(&v), &[0, 1], 2, 6, &mut rng);
            for (q, pos, _) in &b.tuples {
                for &i in pos {
                    assert!(v.contains(b.images[*q], b.images[i]));
                }
            }
        }
    }

    #[test]
    fn thresholds_widen_for_sparse_libraries() {
        // Photos 100 m apart along a street: no positives within 25 m.
        let p: Vec<GeoPoint> = (0..20)
            .map(|i| GeoPoint::new(48.0 + i as f64 * 0.0009, 2.0))
            .collect();
        let (t, note) = Places::Positions(p.clone()).adapt(Thresholds::default());
        assert!(note.is_some());
        assert!(
            t.positive_m >= 100.0 && t.negative_m > t.positive_m,
            "{t:?}"
        );
        assert!(Places::Positions(p).trainable(&t, None).len() >= 10);
        let (same, none) = grid().adapt(Thresholds::default());
        assert_eq!(same, Thresholds::default());
        assert!(none.is_none());
    }

    #[test]
    fn hard_negatives_come_from_the_violators() {
        let mut rng = Rng::new(1);
        let sims = [0.1, 0.9, 0.2, 0.85, 0.3, 0.8, 0.05, 0.7];
        for _ in 0..20 {
            let chosen = choose_negatives(&sims, 0.6, 0.25, &mut rng);
            // Two of the four hardest violators (0.9, 0.85, 0.8, 0.7) are always among them.
            let hard = chosen
                .iter()
                .filter(|&&i| [1, 3, 5, 7].contains(&i))
                .count();
            assert!(hard >= 2, "{chosen:?}");
            assert!(chosen.len() <= 4);
        }
        // Nothing violates: only the random pair.
        assert_eq!(choose_negatives(&sims, 2.0, 0.25, &mut rng).len(), 2);
    }
}
