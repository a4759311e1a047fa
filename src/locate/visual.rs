//! Visual evidence: a photo's nearest references, their locations clustered in space, each
//! cluster scored from the similarities of its members.

use serde::Serialize;

use super::references::RefInfo;
use crate::geo::{GeoPoint, EARTH_RADIUS_M};

/// One matched reference.
#[derive(Debug, Clone, Serialize)]
pub struct Match {
    pub similarity: f32,
    #[serde(flatten)]
    pub reference: RefInfo,
    /// Geometric verification ([`super::rerank`]): the inliers of a verified pair, 0 for a pair
    /// that did not verify, `None` when the pair was not checked.
    #[serde(skip_serializing_if = "Option::is_none")]
    pub inliers: Option<u32>,
}

/// Nearby matches taken together as one candidate place.
#[derive(Debug, Clone, Serialize)]
pub struct Cluster {
    /// Indices into the match list, best first.
    pub members: Vec<usize>,
    /// Similarity-weighted centre.
    pub centre: GeoPoint,
    /// Weighted RMS distance of the members from the centre.
    pub spread_m: f64,
    /// Sum of the members' weights exp((s - s_best) / tau).
    pub weight: f64,
    /// Highest similarity in the cluster.
    pub top: f32,
    /// Most inliers of a member verified geometrically (0: none verified or none checked).
    pub inliers: u32,
}

/// Temperature of the similarity weights: 0.03 in cosine similarity separates a near-duplicate
/// from a merely related view by about a factor e.
pub const TAU: f32 = 0.03;

/// Offsets in metres (east, north) of `p` from `origin` (equirectangular; fine at cluster scale).
fn offset_m(origin: &GeoPoint, p: &GeoPoint) -> (f64, f64) {
    let mut dlon = p.lon - origin.lon;
    if dlon > 180.0 {
        dlon -= 360.0;
    } else if dlon < -180.0 {
        dlon += 360.0;
    }
    let k = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
    (
        dlon * k * origin.lat.to_radians().cos(),
        (p.lat - origin.lat) * k,
    )
}

fn from_offset(origin: &GeoPoint, (e, n): (f64, f64)) -> GeoPoint {
    let k = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
    let lat = (origin.lat + n / k).clamp(-90.0, 90.0);
    let cos = origin.lat.to_radians().cos().max(1e-6);
    let mut lon = origin.lon + e / (k * cos);
    if lon > 180.0 {
        lon -= 360.0;
    } else if lon < -180.0 {
        lon += 360.0;
    }
    GeoPoint::new(lat, lon)
}

/// Weighted centre and weighted RMS spread of points.
pub fn weighted_centre(points: &[(GeoPoint, f64)]) -> (GeoPoint, f64) {
    let origin = points[0].0;
    let total: f64 = points.iter().map(|p| p.1).sum::<f64>().max(1e-12);
    let (mut e, mut n) = (0.0, 0.0);
    for (p, w) in points {
        let (de, dn) = offset_m(&origin, p);
        e += de * w;
        n += dn * w;
    }
    let centre = from_offset(&origin, (e / total, n / total));
    let var = points
        .iter()
        .map(|(p, w)| w * centre.distance_m(p).powi(2))
        .sum::<f64>()
        / total;
    (centre, var.sqrt())
}

/// Clusters matches (sorted best first) greedily: each joins the first cluster whose centre is
/// within `radius_m`, else starts a new one. Clusters with a geometrically verified member come
/// first, most inliers first (a verified match shows the same scene, which similarity only
/// suggests), centred on their verified members; the rest heaviest first.
pub fn cluster(matches: &[Match], radius_m: f64) -> Vec<Cluster> {
    let Some(best) = matches.first().map(|m| m.similarity) else {
        return Vec::new();
    };
    let weight = |s: f32| ((s - best) / TAU).exp() as f64;
    let mut clusters: Vec<Cluster> = Vec::new();
    for (i, m) in matches.iter().enumerate() {
        let p = m.reference.location;
        match clusters
            .iter_mut()
            .find(|c| c.centre.distance_m(&p) <= radius_m)
        {
            Some(c) => {
                c.members.push(i);
                c.inliers = c.inliers.max(m.inliers.unwrap_or(0));
                let pts: Vec<(GeoPoint, f64)> = c
                    .members
                    .iter()
                    .map(|&j| (matches[j].reference.location, weight(matches[j].similarity)))
                    .collect();
                (c.centre, c.spread_m) = weighted_centre(&pts);
                c.weight += weight(m.similarity);
            }
            None => clusters.push(Cluster {
                members: vec![i],
                centre: p,
                spread_m: 0.0,
                weight: weight(m.similarity),
                top: m.similarity,
                inliers: m.inliers.unwrap_or(0),
            }),
        }
    }
    // A verified member shows the same scene: the place is where the best verified members were
    // taken, not the similarity-weighted centre of every look-alike nearby. Weights fall with the
    // 8th power of the inliers' share of the best (half as many: 1/256), as on a street every
    // neighbour verifies, the nearest with the most inliers.
    for c in clusters.iter_mut().filter(|c| c.inliers > 0) {
        let best = c.inliers as f64;
        let pts: Vec<(GeoPoint, f64)> = c
            .members
            .iter()
            .filter_map(|&j| {
                let n = matches[j].inliers.filter(|&n| n > 0)?;
                Some((matches[j].reference.location, (n as f64 / best).powi(8)))
            })
            .collect();
        (c.centre, c.spread_m) = weighted_centre(&pts);
    }
    clusters.sort_by(|a, b| {
        b.inliers
            .cmp(&a.inliers)
            .then(b.weight.total_cmp(&a.weight))
    });
    clusters
}

/// What the calibration sees of the best cluster.
#[derive(Debug, Clone, Copy, Serialize, PartialEq)]
pub struct VisualFeatures {
    /// Highest similarity in the cluster.
    pub top: f64,
    /// How much better the cluster's best match is than the best match elsewhere.
    pub margin: f64,
    /// The cluster's share of all match weight.
    pub share: f64,
    /// ln(1 + members).
    pub support: f64,
    /// ln(1 + inliers) of the cluster's best geometrically verified member (0 when none).
    pub verified: f64,
}

impl VisualFeatures {
    pub fn as_vec(&self) -> [f64; 5] {
        [
            self.top,
            self.margin,
            self.share,
            self.support,
            self.verified,
        ]
    }
}

/// Features of cluster `c` among `clusters` (from [`cluster`]).
pub fn features(matches: &[Match], clusters: &[Cluster], c: usize) -> VisualFeatures {
    let total: f64 = clusters.iter().map(|c| c.weight).sum::<f64>().max(1e-12);
    let this = &clusters[c];
    let best_elsewhere = clusters
        .iter()
        .enumerate()
        .filter(|(i, _)| *i != c)
        .map(|(_, o)| o.top)
        .fold(None, |acc: Option<f32>, t| {
            Some(acc.map_or(t, |a| a.max(t)))
        })
        .unwrap_or_else(|| {
            matches
                .last()
                .map(|m| m.similarity)
                .unwrap_or(0.0)
                .min(this.top)
                - 0.1
        });
    VisualFeatures {
        top: this.top as f64,
        margin: (this.top - best_elsewhere) as f64,
        share: this.weight / total,
        support: (1.0 + this.members.len() as f64).ln(),
        verified: (1.0 + this.inliers as f64).ln(),
    }
}

/// The uncertainty radius of a cluster's centre: the spread of its members, never under the
/// clustering scale (a photo is taken some tens of metres from what it shows).
pub fn radius(c: &Cluster, cluster_radius_m: f64) -> f64 {
    (1.5 * c.spread_m + 25.0).max(cluster_radius_m).min(5_000.0)
}

#[cfg(test)]
mod tests {
    use super::*;

    fn m(sim: f32, lat: f64, lon: f64) -> Match {
        Match {
            similarity: sim,
            reference: RefInfo {
                location: GeoPoint::new(lat, lon),
                source: "library".into(),
                path_or_id: String::new(),
                photo_id: None,
                taken_at: None,
                camera: None,
                attribution: None,
                ref_id: None,
            },
            inliers: None,
        }
    }

    #[test]
    fn clusters_nearby_matches_and_scores_them() {
        // Three matches within metres of each other in Berlin, two in Paris.
        let matches = vec![
            m(0.62, 52.51890, 13.40030),
            m(0.55, 48.88670, 2.34310),
            m(0.60, 52.51895, 13.40040),
            m(0.58, 52.51885, 13.40020),
            m(0.50, 48.88672, 2.34300),
        ];
        let c = cluster(&matches, 50.0);
        assert_eq!(c.len(), 2);
        assert_eq!(c[0].members, vec![0, 2, 3]);
        assert!(c[0].centre.distance_m(&GeoPoint::new(52.5189, 13.4003)) < 10.0);
        assert!(c[0].spread_m < 10.0);
        let f = features(&matches, &c, 0);
        assert!((f.margin - 0.07).abs() < 1e-6 && f.share > 0.8 && f.top > 0.6);
        assert_eq!(radius(&c[0], 50.0), 50.0);
        assert_eq!(f.verified, 0.0);

        // Verified: the Paris pair holds 40 inliers, Berlin's were checked and did not verify.
        let mut checked = matches.clone();
        checked[0].inliers = Some(0);
        checked[1].inliers = Some(40);
        let c = cluster(&checked, 50.0);
        assert_eq!((c[0].members.clone(), c[0].inliers), (vec![1, 4], 40));
        let f = features(&checked, &c, 0);
        assert!(
            (f.verified - 41f64.ln()).abs() < 1e-12 && f.margin < 0.0,
            "{f:?}"
        );
    }

    #[test]
    fn centre_across_the_antimeridian() {
        let (c, spread) = weighted_centre(&[
            (GeoPoint::new(0.0, 179.9999), 1.0),
            (GeoPoint::new(0.0, -179.9999), 1.0),
        ]);
        assert!(c.lon.abs() > 179.99, "{c:?}");
        assert!(spread < 20.0);
    }
}
