//! Finding the place: location proposals for untagged photos, and checks of tagged ones.
//!
//! Evidence, and the rule that combines it (per photo):
//! 1. **Visual** — the photo's `k` most similar references (the user's tagged photos and enabled
//!    reference databases), their locations clustered within `cluster_radius_m`; each cluster is a
//!    candidate at its similarity-weighted centre, with a calibrated confidence.
//! 2. **Time** — tagged photos taken within `time_window_s` on the same camera's clock (or in UTC
//!    when both record their offset): the position between the one before and the one after.
//! 3. **GPX** — an imported track interpolated at the photo's UTC time (its offset or the default
//!    time zone, plus the camera clock offset), when the track's fixes around it are close in time.
//!
//! Combination: a time candidate that lands away from a confident visual candidate (>= 0.5) has
//! its confidence multiplied by (1 - visual confidence) — the photographer moved (a train, a
//! second camera) and the picture shows where. Then candidates that overlap (closer than the
//! larger radius) merge: the tighter position and radius are kept and the confidences combine as
//! independent evidence, 1 - (1 - a)(1 - b). The best candidate is the proposal; the rest are
//! alternatives. GPX fixes are never discounted: a track records where the camera was.

pub mod calibrate;
pub mod cameras;
pub mod gpx;
pub mod references;
pub mod rerank;
pub mod time;
pub mod visual;

use std::collections::HashMap;
use std::time::Instant;

use serde::Serialize;

use crate::catalog::{Catalog, PhotoFilter, ProposalRow, SuspiciousRow};
use crate::error::Result;
use crate::geo::GeoPoint;
use crate::library::CaptureTime;
use crate::progress::{CancelToken, ProgressMeter, ProgressSink};
use calibrate::Calibration;
use references::ReferenceSet;
pub use rerank::{RerankStats, Reranker};
use time::TimedRef;
use visual::Match;

#[derive(Debug, Clone)]
pub struct LocateOptions {
    /// Neighbours retrieved per photo.
    pub k: usize,
    /// Matches closer than this to a cluster's centre join it.
    pub cluster_radius_m: f64,
    /// Tagged photos this close in time inform a time estimate.
    pub time_window_s: f64,
    /// Largest gap between two track fixes to interpolate across.
    pub gpx_max_gap_s: f64,
    /// Added to the camera's clock to get the true time (GPX matching).
    pub clock_offset_s: f64,
    /// UTC offset for photos that do not record theirs (GPX matching).
    pub default_tz_offset_min: Option<i32>,
    /// A tag this far from a confident proposal is suspicious.
    pub suspicious_distance_m: f64,
    pub suspicious_min_confidence: f64,
    /// Candidates verified geometrically per photo (`rerank::rerank_k`): None for the catalog's
    /// setting or the default, 0 for none.
    pub rerank_k: Option<usize>,
}

impl Default for LocateOptions {
    fn default() -> Self {
        LocateOptions {
            k: 20,
            cluster_radius_m: 50.0,
            time_window_s: 2.0 * 3600.0,
            gpx_max_gap_s: 300.0,
            clock_offset_s: 0.0,
            default_tz_offset_min: None,
            suspicious_distance_m: 1000.0,
            suspicious_min_confidence: 0.5,
            rerank_k: None,
        }
    }
}

impl LocateOptions {
    /// Reads the GPX settings saved in the catalog (clock offset, default time zone, gap).
    pub fn with_catalog_settings(mut self, catalog: &Catalog) -> Result<Self> {
        if let Some(v) = catalog
            .setting("gpx.clock_offset_s")?
            .and_then(|v| v.as_f64())
        {
            self.clock_offset_s = v;
        }
        if let Some(v) = catalog
            .setting("gpx.default_tz_offset_min")?
            .and_then(|v| v.as_i64())
        {
            self.default_tz_offset_min = Some(v as i32);
        }
        if let Some(v) = catalog.setting("gpx.max_gap_s")?.and_then(|v| v.as_f64()) {
            self.gpx_max_gap_s = v;
        }
        Ok(self)
    }
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize)]
#[serde(rename_all = "lowercase")]
pub enum EvidenceKind {
    Visual,
    Time,
    Gpx,
}

impl EvidenceKind {
    pub fn as_str(self) -> &'static str {
        match self {
            EvidenceKind::Visual => "visual",
            EvidenceKind::Time => "time",
            EvidenceKind::Gpx => "gpx",
        }
    }
}

/// One piece of evidence behind a candidate.
#[derive(Debug, Clone, Serialize)]
pub struct Evidence {
    pub kind: EvidenceKind,
    /// "library", a reference database's name, or "gpx".
    pub source: String,
    pub path_or_id: String,
    pub lat: f64,
    pub lon: f64,
    /// Descriptor similarity (visual evidence).
    pub similarity: Option<f32>,
    /// Seconds between the photo and this evidence (time and GPX evidence).
    pub offset_s: Option<f64>,
    pub attribution: Option<String>,
    /// The reference's id in its database (for its preview: `pinpoint refdb preview`).
    #[serde(skip_serializing_if = "Option::is_none")]
    pub ref_id: Option<i64>,
    /// Geometric verification of a visual match: the inliers of a verified pair, 0 when the pair
    /// was checked and did not verify; absent when it was not checked.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub inliers: Option<u32>,
}

/// A candidate location.
#[derive(Debug, Clone, Serialize)]
pub struct Candidate {
    pub lat: f64,
    pub lon: f64,
    pub radius_m: f64,
    pub confidence: f64,
    pub kinds: Vec<EvidenceKind>,
    pub evidence: Vec<Evidence>,
}

impl Candidate {
    fn point(&self) -> GeoPoint {
        GeoPoint::new(self.lat, self.lon)
    }
}

/// The reference sets, tagged photos, tracks and calibration that proposals are made from.
pub struct Locator {
    pub sets: Vec<ReferenceSet>,
    pub timed: Vec<TimedRef>,
    /// Clock offsets by camera (seconds to add to get the true time).
    pub clocks: HashMap<String, f64>,
    /// Cameras whose shifted clocks tell true time (GPS cameras and those with an offset), when
    /// any offset is known.
    pub true_clocks: std::collections::HashSet<String>,
    pub track: Vec<gpx::TrackPoint>,
    pub calibration: Calibration,
    pub opts: LocateOptions,
}

/// The camera label of clocks that tell true time (see `Locator::true_clocks`).
const TRUE_CLOCK: &str = "\u{1}true time";

/// `t` moved by a clock offset in seconds.
fn shifted(t: CaptureTime, offset_s: Option<&f64>) -> CaptureTime {
    match offset_s {
        Some(&s) => CaptureTime {
            local: t.local + chrono::TimeDelta::milliseconds((s * 1000.0).round() as i64),
            offset_minutes: t.offset_minutes,
        },
        None => t,
    }
}

/// Time spent, for reports.
#[derive(Debug, Clone, Default, Serialize)]
pub struct Timing {
    pub load_s: f64,
    pub search_s: f64,
    /// Geometric verification of the candidates (re-ranking).
    pub rerank_s: f64,
    pub scoring_s: f64,
}

impl Locator {
    /// Gathers the library's references for `model_hash`, plus `extra` sets (reference databases).
    pub fn new(
        catalog: &Catalog,
        model_hash: &str,
        extra: Vec<ReferenceSet>,
        opts: LocateOptions,
    ) -> Result<Locator> {
        let mut sets = vec![references::library_references(catalog, model_hash)?];
        sets.extend(extra);
        let tagged = catalog.photos(&PhotoFilter {
            tagged: Some(true),
            ..Default::default()
        })?;
        // Camera clock offsets (see `cameras`): a camera with one, and every camera that records
        // GPS (whose clocks the offsets were measured against), keep true time.
        let clocks: HashMap<String, f64> = cameras::stored_offsets(catalog)?
            .into_iter()
            .map(|(c, s)| (c, s.offset_s))
            .collect();
        let true_clocks: std::collections::HashSet<String> = match clocks.is_empty() {
            true => Default::default(),
            false => tagged
                .iter()
                .filter(|p| p.gps_source == Some(crate::library::LocationSource::Exif))
                .filter_map(cameras::camera_of)
                .chain(clocks.keys().cloned())
                .collect(),
        };
        let timed = tagged
            .into_iter()
            .filter_map(|p| {
                let camera = cameras::camera_of(&p);
                let taken = shifted(p.taken_at?, camera.as_ref().and_then(|c| clocks.get(c)));
                Some(TimedRef {
                    photo_id: p.id,
                    path: p.path.display().to_string(),
                    location: p.gps?,
                    taken_at: taken,
                    camera: match camera {
                        Some(c) if true_clocks.contains(&c) => Some(TRUE_CLOCK.to_string()),
                        c => c,
                    },
                })
            })
            .collect();
        let calibration = catalog
            .calibration(model_hash)?
            .and_then(|v| serde_json::from_value(v).ok())
            .unwrap_or_default();
        Ok(Locator {
            sets,
            timed,
            clocks,
            true_clocks,
            track: catalog.gpx_points()?,
            calibration,
            opts,
        })
    }

    pub fn reference_count(&self) -> usize {
        self.sets.iter().map(|s| s.len()).sum()
    }

    /// The `k` best matches of each descriptor over every reference set, best first. References
    /// for which `skip(query index, reference)` is true are left out (the photo itself, say).
    pub fn matches(
        &self,
        descriptors: &[Vec<f32>],
        skip: &(dyn Fn(usize, &references::RefInfo) -> bool + Sync),
    ) -> Vec<Vec<Match>> {
        let k = self.opts.k;
        let mut per_query: Vec<Vec<Match>> = vec![Vec::new(); descriptors.len()];
        for set in &self.sets {
            if set.is_empty() {
                continue;
            }
            // Over-fetch a little so that skipped references do not leave the list short.
            let found = set.index.search(descriptors, k + 4);
            for (q, list) in found.into_iter().enumerate() {
                for n in list {
                    if let Some(r) = set.refs.get(n.id) {
                        if !skip(q, &r) {
                            per_query[q].push(Match {
                                similarity: n.similarity,
                                reference: r,
                                inliers: None,
                            });
                        }
                    }
                }
            }
        }
        for list in &mut per_query {
            list.sort_by(|a, b| b.similarity.total_cmp(&a.similarity));
            list.truncate(k);
        }
        per_query
    }

    /// Visual candidates (one per cluster, best first) from a photo's matches.
    pub fn visual_candidates(&self, matches: &[Match]) -> Vec<(Candidate, visual::VisualFeatures)> {
        let clusters = visual::cluster(matches, self.opts.cluster_radius_m);
        clusters
            .iter()
            .enumerate()
            .take(5)
            .map(|(i, c)| {
                let f = visual::features(matches, &clusters, i);
                let evidence = c
                    .members
                    .iter()
                    .map(|&m| {
                        let r = &matches[m].reference;
                        Evidence {
                            kind: EvidenceKind::Visual,
                            source: r.source.clone(),
                            path_or_id: r.path_or_id.clone(),
                            lat: r.location.lat,
                            lon: r.location.lon,
                            similarity: Some(matches[m].similarity),
                            offset_s: None,
                            attribution: r.attribution.clone(),
                            ref_id: r.ref_id,
                            inliers: matches[m].inliers,
                        }
                    })
                    .collect();
                let cand = Candidate {
                    lat: c.centre.lat,
                    lon: c.centre.lon,
                    radius_m: visual::radius(c, self.opts.cluster_radius_m),
                    confidence: self.calibration.visual.probability(&f.as_vec()),
                    kinds: vec![EvidenceKind::Visual],
                    evidence,
                };
                (cand, f)
            })
            .collect()
    }

    /// The time estimate for a photo, as a candidate with its features.
    pub fn time_candidate(
        &self,
        taken: Option<&CaptureTime>,
        camera: Option<&str>,
        exclude: Option<i64>,
    ) -> Option<(Candidate, time::TimeEstimate)> {
        let taken = shifted(taken?.clone(), camera.and_then(|c| self.clocks.get(c)));
        let camera = match camera {
            Some(c) if self.true_clocks.contains(c) => Some(TRUE_CLOCK),
            c => c,
        };
        let est = time::estimate(
            &taken,
            camera,
            &self.timed,
            self.opts.time_window_s,
            exclude,
        )?;
        let evidence = est
            .neighbours
            .iter()
            .map(|n| Evidence {
                kind: EvidenceKind::Time,
                source: "library".into(),
                path_or_id: n.path.clone(),
                lat: n.location.lat,
                lon: n.location.lon,
                similarity: None,
                offset_s: Some(n.offset_s),
                attribution: None,
                ref_id: None,
                inliers: None,
            })
            .collect();
        let cand = Candidate {
            lat: est.point.lat,
            lon: est.point.lon,
            radius_m: est.radius_m,
            confidence: self.calibration.time.probability(&est.features()),
            kinds: vec![EvidenceKind::Time],
            evidence,
        };
        Some((cand, est))
    }

    /// The GPX fix for a photo, as a candidate.
    /// The camera's own clock offset, where `cameras` knows one, replaces the GPX settings' one.
    pub fn gpx_candidate(
        &self,
        taken: Option<&CaptureTime>,
        camera: Option<&str>,
    ) -> Option<Candidate> {
        let offset = camera
            .and_then(|c| self.clocks.get(c))
            .copied()
            .unwrap_or(self.opts.clock_offset_s);
        let t = gpx::photo_utc_ms(taken?, self.opts.default_tz_offset_min, offset)?;
        let fix = gpx::interpolate(&self.track, t, self.opts.gpx_max_gap_s)?;
        // A fix between points seconds apart is as good as GPS gets; confidence eases off with the gap.
        let confidence =
            (0.97 - 0.15 * (fix.gap_s / self.opts.gpx_max_gap_s.max(1.0))).clamp(0.5, 0.97);
        Some(Candidate {
            lat: fix.point.lat,
            lon: fix.point.lon,
            radius_m: fix.radius_m,
            confidence,
            kinds: vec![EvidenceKind::Gpx],
            evidence: vec![Evidence {
                kind: EvidenceKind::Gpx,
                source: "gpx".into(),
                path_or_id: "track".into(),
                lat: fix.point.lat,
                lon: fix.point.lon,
                similarity: None,
                offset_s: Some(fix.gap_s),
                attribution: None,
                ref_id: None,
                inliers: None,
            }],
        })
    }

    /// Applies the combination rule (see the module documentation) to one photo's candidates.
    pub fn combine(
        visual: Vec<Candidate>,
        time: Option<Candidate>,
        gpx: Option<Candidate>,
    ) -> Vec<Candidate> {
        let mut all: Vec<Candidate> = Vec::new();
        let best_visual = visual.first().cloned();
        if let Some(mut t) = time {
            if let Some(v) = best_visual.as_ref().filter(|v| v.confidence >= 0.5) {
                if v.point().distance_m(&t.point()) > v.radius_m.max(t.radius_m) {
                    t.confidence *= 1.0 - v.confidence;
                }
            }
            all.push(t);
        }
        all.extend(gpx);
        all.extend(visual);
        all.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        let mut merged: Vec<Candidate> = Vec::new();
        for c in all {
            match merged
                .iter_mut()
                .find(|m| m.point().distance_m(&c.point()) <= m.radius_m.max(c.radius_m))
            {
                Some(m) => {
                    if c.radius_m < m.radius_m {
                        (m.lat, m.lon, m.radius_m) = (c.lat, c.lon, c.radius_m);
                    }
                    m.confidence = 1.0 - (1.0 - m.confidence) * (1.0 - c.confidence);
                    for k in c.kinds {
                        if !m.kinds.contains(&k) {
                            m.kinds.push(k);
                        }
                    }
                    m.evidence.extend(c.evidence);
                }
                None => merged.push(c),
            }
        }
        merged.sort_by(|a, b| b.confidence.total_cmp(&a.confidence));
        merged
    }
}

/// A proposal for one photo.
#[derive(Debug, Clone, Serialize)]
pub struct Proposal {
    pub photo_id: i64,
    pub path: String,
    pub best: Candidate,
    pub alternatives: Vec<Candidate>,
}

#[derive(Debug, Clone, Default, Serialize)]
pub struct ProposeReport {
    pub photos: usize,
    pub proposed: usize,
    /// Untagged photos without any evidence (no descriptor and no time or track match).
    pub without_evidence: usize,
    pub references: usize,
    pub timing: Timing,
    /// Geometric re-ranking's work, when it ran.
    pub rerank: Option<RerankStats>,
    pub cancelled: bool,
}

/// Proposes locations for every untagged photo and stores them in the catalog; with a
/// `reranker`, each photo's best matches among the user's photos are verified geometrically first.
pub fn propose(
    catalog: &mut Catalog,
    model_hash: &str,
    extra: Vec<ReferenceSet>,
    opts: LocateOptions,
    reranker: Option<&Reranker>,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<(Vec<Proposal>, ProposeReport)> {
    let t0 = Instant::now();
    let locator = Locator::new(catalog, model_hash, extra, opts)?;
    let untagged = catalog.photos(&PhotoFilter {
        tagged: Some(false),
        ..Default::default()
    })?;
    let descriptors: HashMap<i64, Vec<f32>> =
        catalog.descriptors(model_hash)?.into_iter().collect();
    let mut timing = Timing {
        load_s: t0.elapsed().as_secs_f64(),
        ..Default::default()
    };
    let mut meter = ProgressMeter::new(progress, "propose");
    meter.stage("proposing", Some(untagged.len() as u64));
    let mut proposals = Vec::new();
    let mut report = ProposeReport {
        photos: untagged.len(),
        references: locator.reference_count(),
        ..Default::default()
    };
    let mut stats = RerankStats::default();
    for chunk in untagged.chunks(256) {
        if cancel.is_cancelled() {
            report.cancelled = true;
            break;
        }
        let with_desc: Vec<usize> = (0..chunk.len())
            .filter(|&i| descriptors.contains_key(&chunk[i].id))
            .collect();
        let queries: Vec<Vec<f32>> = with_desc
            .iter()
            .map(|&i| descriptors[&chunk[i].id].clone())
            .collect();
        let ts = Instant::now();
        let found = locator.matches(&queries, &|_, _| false);
        timing.search_s += ts.elapsed().as_secs_f64();
        let ts = Instant::now();
        let mut matches: HashMap<usize, Vec<Match>> = with_desc.into_iter().zip(found).collect();
        let mut rows = Vec::new();
        let mut no_evidence = Vec::new();
        for (i, photo) in chunk.iter().enumerate() {
            let mut m = matches.remove(&i).unwrap_or_default();
            if let Some(r) = reranker {
                // Verification takes seconds a photo: progress and cancelling go photo by photo.
                if cancel.is_cancelled() {
                    report.cancelled = true;
                    break;
                }
                let tr = Instant::now();
                r.check(catalog, photo, &mut m, &mut stats)?;
                timing.rerank_s += tr.elapsed().as_secs_f64();
                meter.advance(1);
            }
            let camera = cameras::camera_of(photo);
            let visual: Vec<Candidate> = locator
                .visual_candidates(&m)
                .into_iter()
                .map(|(c, _)| c)
                .collect();
            let time = locator
                .time_candidate(photo.taken_at.as_ref(), camera.as_deref(), None)
                .map(|(c, _)| c);
            let gpx = locator.gpx_candidate(photo.taken_at.as_ref(), camera.as_deref());
            let mut ranked = Locator::combine(visual, time, gpx);
            if ranked.is_empty() {
                report.without_evidence += 1;
                no_evidence.push(photo.id);
                continue;
            }
            let best = ranked.remove(0);
            ranked.truncate(4);
            let p = Proposal {
                photo_id: photo.id,
                path: photo.path.display().to_string(),
                best,
                alternatives: ranked,
            };
            rows.push((proposal_row(&p, model_hash), photo.content_hash));
            proposals.push(p);
        }
        timing.scoring_s += ts.elapsed().as_secs_f64();
        catalog.save_proposals(&rows)?;
        catalog.delete_pending_proposals(&no_evidence)?;
        report.proposed += rows.len();
        if reranker.is_none() {
            meter.advance(chunk.len() as u64);
        }
        if report.cancelled {
            break;
        }
    }
    catalog.prune_proposals()?;
    meter.finish();
    timing.scoring_s -= timing.rerank_s;
    report.timing = timing;
    report.rerank = reranker.map(|_| stats);
    Ok((proposals, report))
}

fn proposal_row(p: &Proposal, model_hash: &str) -> ProposalRow {
    ProposalRow {
        photo_id: p.photo_id,
        path: p.path.clone().into(),
        model_hash: model_hash.to_string(),
        lat: p.best.lat,
        lon: p.best.lon,
        radius_m: p.best.radius_m,
        confidence: p.best.confidence,
        sources: p
            .best
            .kinds
            .iter()
            .map(|k| k.as_str().to_string())
            .collect(),
        evidence: serde_json::to_value(&p.best.evidence).expect("serialises"),
        alternatives: serde_json::to_value(&p.alternatives).expect("serialises"),
        status: "pending".into(),
        created_at: 0,
    }
}

/// Near-duplicates excluded when checking a photo's own tag: the same camera within this many
/// seconds (a burst shares its tag, right or wrong, and would vouch for it).
const BURST_S: f64 = 600.0;

/// A tag is backed when a match near it is within this similarity of the best match elsewhere.
const TAG_SUPPORT_MARGIN: f64 = 0.1;

/// Checks every tagged photo: the visual proposal made without its own tag (and without its
/// burst); flags those that strong evidence places far from their tag while no comparable match
/// supports the tag itself. Flags are then confirmed most confident first, each photo re-checked
/// without the photos already flagged: when one photo of a series is mis-tagged, the others first
/// seem to disagree with it, but once it is set aside their own tags are backed by the rest.
pub fn suspicious(
    catalog: &mut Catalog,
    model_hash: &str,
    opts: LocateOptions,
    reranker: Option<&Reranker>,
    progress: &dyn ProgressSink,
    cancel: &CancelToken,
) -> Result<Vec<SuspiciousRow>> {
    let locator = Locator::new(catalog, model_hash, Vec::new(), opts.clone())?;
    let tagged = catalog.photos(&PhotoFilter {
        tagged: Some(true),
        ..Default::default()
    })?;
    let descriptors: HashMap<i64, Vec<f32>> =
        catalog.descriptors(model_hash)?.into_iter().collect();
    let photos: Vec<&crate::catalog::PhotoRecord> = tagged
        .iter()
        .filter(|p| descriptors.contains_key(&p.id))
        .collect();
    let cameras: Vec<Option<String>> = photos.iter().map(|p| cameras::camera_of(p)).collect();
    let mut meter = ProgressMeter::new(progress, "suspicious");
    meter.stage("checking tags", Some(photos.len() as u64));
    // Checks photos[i] for every i in `which`, leaving out the photos in `set_aside`.
    let stats = std::cell::RefCell::new(RerankStats::default());
    let catalog_ref: &Catalog = catalog;
    let check = |which: &[usize],
                 set_aside: &std::collections::HashSet<i64>|
     -> Result<Vec<Option<SuspiciousRow>>> {
        let queries: Vec<Vec<f32>> = which
            .iter()
            .map(|&i| descriptors[&photos[i].id].clone())
            .collect();
        let skip = |q: usize, r: &references::RefInfo| {
            let i = which[q];
            let p = photos[i];
            if r.photo_id == Some(p.id) || r.photo_id.is_some_and(|id| set_aside.contains(&id)) {
                return true;
            }
            match (&p.taken_at, &r.taken_at, &cameras[i], &r.camera) {
                (Some(a), Some(b), Some(ca), Some(cb)) if ca == cb => {
                    (b.local - a.local).as_seconds_f64().abs() <= BURST_S
                }
                _ => false,
            }
        };
        let mut found = locator.matches(&queries, &skip);
        if let Some(r) = reranker {
            for (&i, m) in which.iter().zip(found.iter_mut()) {
                cancel.check()?;
                r.check(catalog_ref, photos[i], m, &mut stats.borrow_mut())?;
            }
        }
        Ok(which
            .iter()
            .zip(found)
            .map(|(&i, m)| {
                let p = photos[i];
                let tag = p.gps?;
                let candidates = locator.visual_candidates(&m);
                let (best, best_f) = candidates.first().cloned()?;
                let distance = tag.distance_m(&best.point());
                let far = distance > opts.suspicious_distance_m.max(best.radius_m);
                // The best match near the tag: the tag stands if it is about as good as the best elsewhere.
                let tag_top = candidates
                    .iter()
                    .filter(|(c, _)| {
                        tag.distance_m(&c.point()) <= opts.suspicious_distance_m.max(c.radius_m)
                    })
                    .map(|(_, f)| f.top)
                    .fold(f64::NEG_INFINITY, f64::max);
                let unsupported = best_f.top - tag_top > TAG_SUPPORT_MARGIN;
                (far && best.confidence >= opts.suspicious_min_confidence && unsupported).then(
                    || SuspiciousRow {
                        photo_id: p.id,
                        path: p.path.clone(),
                        tag_lat: tag.lat,
                        tag_lon: tag.lon,
                        lat: best.lat,
                        lon: best.lon,
                        radius_m: best.radius_m,
                        confidence: best.confidence,
                        distance_m: distance,
                        evidence: serde_json::to_value(&best.evidence).expect("serialises"),
                        status: "open".into(),
                    },
                )
            })
            .collect())
    };
    let none = std::collections::HashSet::new();
    let mut first: Vec<(usize, SuspiciousRow)> = Vec::new();
    let all: Vec<usize> = (0..photos.len()).collect();
    for chunk in all.chunks(256) {
        cancel.check()?;
        for (i, row) in chunk.iter().zip(check(chunk, &none)?) {
            if let Some(row) = row {
                first.push((*i, row));
            }
        }
        meter.advance(chunk.len() as u64);
    }
    first.sort_by(|a, b| b.1.confidence.total_cmp(&a.1.confidence));
    let mut set_aside = std::collections::HashSet::new();
    let mut rows = Vec::new();
    for (i, _) in first {
        if let Some(Some(row)) = check(&[i], &set_aside)?.into_iter().next() {
            set_aside.insert(row.photo_id);
            rows.push(row);
        }
    }
    catalog.save_suspicious(model_hash, &rows)?;
    meter.finish();
    Ok(rows)
}

/// Most tagged photos verified for the calibration's visual samples.
pub const CALIBRATION_RERANKED: usize = 300;

/// One held-out sample: a tagged photo proposed from the others.
#[derive(Debug, Clone, Serialize)]
pub struct HeldOut {
    pub photo_id: i64,
    pub kind: EvidenceKind,
    pub features: Vec<f64>,
    pub confidence: f64,
    pub error_m: f64,
    pub radius_m: f64,
    pub within: bool,
}

/// Leave-one-out over the library's tagged photos: each proposed (visually, and by time) from the
/// others, recorded with the features, the current confidence and whether it landed within radius.
pub fn held_out_samples(
    catalog: &Catalog,
    model_hash: &str,
    opts: LocateOptions,
    reranker: Option<&Reranker>,
    cancel: &CancelToken,
) -> Result<Vec<HeldOut>> {
    let locator = Locator::new(catalog, model_hash, Vec::new(), opts)?;
    let tagged = catalog.photos(&PhotoFilter {
        tagged: Some(true),
        ..Default::default()
    })?;
    let descriptors: HashMap<i64, Vec<f32>> =
        catalog.descriptors(model_hash)?.into_iter().collect();
    let photos: Vec<&crate::catalog::PhotoRecord> = tagged
        .iter()
        .filter(|p| descriptors.contains_key(&p.id))
        .collect();
    let queries: Vec<Vec<f32>> = photos.iter().map(|p| descriptors[&p.id].clone()).collect();
    let found = locator.matches(&queries, &|q, r| r.photo_id == Some(photos[q].id));
    // With re-ranking, the visual samples are photos whose matches were verified, as a
    // proposal's are: an even spread of at most CALIBRATION_RERANKED of them (verification costs
    // about a second a photo the first time; a few hundred samples fit the calibration).
    let step = match reranker {
        Some(_) => photos.len().div_ceil(CALIBRATION_RERANKED).max(1),
        None => 1,
    };
    let mut out = Vec::new();
    let mut stats = RerankStats::default();
    for (n, (p, mut m)) in photos.iter().zip(found).enumerate() {
        if n % step != 0 {
            continue;
        }
        if let Some(r) = reranker {
            cancel.check()?;
            r.check(catalog, p, &mut m, &mut stats)?;
        }
        let truth = p.gps.expect("tagged");
        if let Some((c, f)) = locator.visual_candidates(&m).into_iter().next() {
            let err = truth.distance_m(&c.point());
            out.push(HeldOut {
                photo_id: p.id,
                kind: EvidenceKind::Visual,
                features: f.as_vec().to_vec(),
                confidence: c.confidence,
                error_m: err,
                radius_m: c.radius_m,
                within: err <= c.radius_m,
            });
        }
    }
    for p in &tagged {
        let camera = cameras::camera_of(p);
        if let Some((c, est)) =
            locator.time_candidate(p.taken_at.as_ref(), camera.as_deref(), Some(p.id))
        {
            let err = p.gps.expect("tagged").distance_m(&c.point());
            out.push(HeldOut {
                photo_id: p.id,
                kind: EvidenceKind::Time,
                features: est.features().to_vec(),
                confidence: c.confidence,
                error_m: err,
                radius_m: c.radius_m,
                within: err <= c.radius_m,
            });
        }
    }
    Ok(out)
}

/// Fits the library's calibration from held-out samples (keeping the prior for an evidence kind
/// with too few samples) and stores it.
pub fn fit_calibration(
    catalog: &Catalog,
    model_hash: &str,
    opts: LocateOptions,
    reranker: Option<&Reranker>,
    cancel: &CancelToken,
) -> Result<Calibration> {
    let samples = held_out_samples(catalog, model_hash, opts, reranker, cancel)?;
    let mut cal = Calibration::default();
    let mut used = 0;
    for kind in [EvidenceKind::Visual, EvidenceKind::Time] {
        let s: Vec<(Vec<f64>, bool)> = samples
            .iter()
            .filter(|h| h.kind == kind)
            .map(|h| (h.features.clone(), h.within))
            .collect();
        if s.len() >= calibrate::MIN_SAMPLES {
            if let Some(fit) = calibrate::Logistic::fit(&s, 1.0) {
                used += s.len();
                match kind {
                    EvidenceKind::Visual => cal.visual = fit,
                    _ => cal.time = fit,
                }
            }
        }
    }
    if used > 0 {
        cal.samples = used;
        cal.source = match reranker {
            Some(_) => {
                "fitted on the library's tagged photos (leave-one-out, geometrically re-ranked)"
            }
            None => "fitted on the library's tagged photos (leave-one-out)",
        }
        .into();
    }
    catalog.set_calibration(
        model_hash,
        cal.samples,
        &serde_json::to_value(&cal).expect("serialises"),
    )?;
    Ok(cal)
}
