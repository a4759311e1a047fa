//! Browsing the catalog the way the desktop app shows it: filtered, paged photo lists with their
//! review state, every located photo as map points, and the places the photos are in.

use std::collections::BTreeMap;

use rusqlite::params_from_iter;
use rusqlite::types::Value;
use serde::{Deserialize, Serialize};

use super::photos::{row_to_photo, COLUMNS};
use super::{Catalog, PhotoRecord};
use crate::error::Result;
use crate::geo::places;

/// Which photos a list shows.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum BrowseKind {
    #[default]
    All,
    Untagged,
    Tagged,
    /// Untagged photos with a pending proposal.
    Proposed,
    /// Tagged photos whose tag disagrees with what they show (not yet kept or fixed).
    Suspicious,
    Missing,
}

/// A place to filter by: a country, optionally narrowed to a region and a city.
#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct PlaceFilter {
    pub cc: String,
    pub region: Option<String>,
    pub city: Option<String>,
}

#[derive(Debug, Clone, Default, PartialEq, Serialize, Deserialize)]
pub struct BrowseFilter {
    #[serde(default)]
    pub kind: BrowseKind,
    /// Only photos whose location came from this source ("exif", "sidecar", "user", "proposal").
    #[serde(default)]
    pub source: Option<String>,
    #[serde(default)]
    pub place: Option<PlaceFilter>,
    /// Only these photos (a map cluster's members).
    #[serde(default)]
    pub ids: Option<Vec<i64>>,
}

/// A photo in a list, with what the review screens need to badge it.
#[derive(Debug, Clone, Serialize)]
pub struct BrowseRow {
    pub photo: PhotoRecord,
    pub has_proposal: bool,
    pub suspicious: bool,
}

/// Every located photo, as parallel arrays (compact for 100k points).
#[derive(Debug, Clone, Default, Serialize)]
pub struct MapPoints {
    pub ids: Vec<i64>,
    pub lats: Vec<f64>,
    pub lons: Vec<f64>,
    pub sources: Vec<String>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CityNode {
    pub name: String,
    pub count: u64,
    pub lat: f64,
    pub lon: f64,
}

#[derive(Debug, Clone, Serialize)]
pub struct RegionNode {
    pub name: String,
    pub count: u64,
    pub lat: f64,
    pub lon: f64,
    pub cities: Vec<CityNode>,
}

#[derive(Debug, Clone, Serialize)]
pub struct CountryNode {
    pub cc: String,
    pub country: String,
    pub count: u64,
    pub lat: f64,
    pub lon: f64,
    pub regions: Vec<RegionNode>,
}

/// Counts for the app's badges.
#[derive(Debug, Clone, Default, Serialize)]
pub struct BrowseCounts {
    pub total: u64,
    pub tagged: u64,
    pub untagged: u64,
    pub proposed: u64,
    pub suspicious: u64,
    pub missing: u64,
}

const PENDING_PROPOSAL: &str =
    "EXISTS (SELECT 1 FROM proposals pr WHERE pr.photo_id = photos.id AND pr.status = 'pending')";
const OPEN_SUSPICIOUS: &str =
    "EXISTS (SELECT 1 FROM suspicious_tags st WHERE st.photo_id = photos.id AND st.status = 'open')";

/// The WHERE clause and its parameters for a filter.
fn where_clause(filter: &BrowseFilter) -> (String, Vec<Value>) {
    let mut clauses: Vec<String> = Vec::new();
    let mut values: Vec<Value> = Vec::new();
    clauses.push(
        if filter.kind == BrowseKind::Missing {
            "status = 'missing'"
        } else {
            "status = 'present'"
        }
        .to_string(),
    );
    match filter.kind {
        BrowseKind::Untagged => clauses.push("lat IS NULL".into()),
        BrowseKind::Tagged => clauses.push("lat IS NOT NULL".into()),
        BrowseKind::Proposed => clauses.push(format!("lat IS NULL AND {PENDING_PROPOSAL}")),
        BrowseKind::Suspicious => clauses.push(OPEN_SUSPICIOUS.into()),
        BrowseKind::All | BrowseKind::Missing => {}
    }
    if let Some(source) = &filter.source {
        clauses.push("gps_source = ?".into());
        values.push(Value::Text(source.clone()));
    }
    if let Some(place) = &filter.place {
        clauses.push(
            "id IN (SELECT pp.photo_id FROM photo_places pp WHERE pp.cc = ? \
             AND (? IS NULL OR pp.region = ?) AND (? IS NULL OR pp.city = ?))"
                .into(),
        );
        values.push(Value::Text(place.cc.clone()));
        for v in [&place.region, &place.city] {
            let v = v.clone().map(Value::Text).unwrap_or(Value::Null);
            values.push(v.clone());
            values.push(v);
        }
        // The place was computed for the photo's current location.
        clauses.push(
            "EXISTS (SELECT 1 FROM photo_places pq WHERE pq.photo_id = photos.id \
             AND pq.lat = photos.lat AND pq.lon = photos.lon)"
                .into(),
        );
    }
    if let Some(ids) = &filter.ids {
        // Integers only: safe to inline, and far faster than thousands of parameters.
        let list: Vec<String> = ids.iter().map(|i| i.to_string()).collect();
        clauses.push(format!("id IN ({})", list.join(",")));
    }
    (clauses.join(" AND "), values)
}

impl Catalog {
    /// A page of photos, newest capture first (undated photos last), and how many match in all.
    pub fn browse(
        &mut self,
        filter: &BrowseFilter,
        offset: usize,
        limit: usize,
    ) -> Result<(u64, Vec<BrowseRow>)> {
        if filter.place.is_some() {
            self.refresh_places()?;
        }
        let (clause, values) = where_clause(filter);
        let total: i64 = self.conn().query_row(
            &format!("SELECT COUNT(*) FROM photos WHERE {clause}"),
            params_from_iter(values.iter()),
            |r| r.get(0),
        )?;
        let sql = format!(
            "SELECT {COLUMNS}, {PENDING_PROPOSAL}, {OPEN_SUSPICIOUS} FROM photos WHERE {clause} \
             ORDER BY taken_at DESC, id DESC LIMIT {limit} OFFSET {offset}"
        );
        let mut stmt = self.conn().prepare(&sql)?;
        let ncol = COLUMNS.split(',').count();
        let rows = stmt.query_map(params_from_iter(values.iter()), |r| {
            Ok(BrowseRow {
                photo: row_to_photo(r)?,
                has_proposal: r.get(ncol)?,
                suspicious: r.get(ncol + 1)?,
            })
        })?;
        Ok((total as u64, rows.collect::<rusqlite::Result<_>>()?))
    }

    pub fn browse_counts(&self) -> Result<BrowseCounts> {
        let count = |kind: BrowseKind| -> Result<u64> {
            let (clause, values) = where_clause(&BrowseFilter {
                kind,
                ..Default::default()
            });
            let n: i64 = self.conn().query_row(
                &format!("SELECT COUNT(*) FROM photos WHERE {clause}"),
                params_from_iter(values.iter()),
                |r| r.get(0),
            )?;
            Ok(n as u64)
        };
        Ok(BrowseCounts {
            total: count(BrowseKind::All)?,
            tagged: count(BrowseKind::Tagged)?,
            untagged: count(BrowseKind::Untagged)?,
            proposed: count(BrowseKind::Proposed)?,
            suspicious: count(BrowseKind::Suspicious)?,
            missing: count(BrowseKind::Missing)?,
        })
    }

    pub fn map_points(&self) -> Result<MapPoints> {
        let mut stmt = self.conn().prepare(
            "SELECT id, lat, lon, gps_source FROM photos WHERE status = 'present' AND lat IS NOT NULL",
        )?;
        let mut points = MapPoints::default();
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            points.ids.push(r.get(0)?);
            points.lats.push(r.get(1)?);
            points.lons.push(r.get(2)?);
            points.sources.push(r.get(3)?);
        }
        Ok(points)
    }

    /// Reverse-geocodes the located photos whose place is unknown or was computed for another
    /// location. Returns how many were (re)computed.
    pub fn refresh_places(&mut self) -> Result<usize> {
        let stale: Vec<(i64, f64, f64)> = {
            let mut stmt = self.conn().prepare(
                "SELECT p.id, p.lat, p.lon FROM photos p LEFT JOIN photo_places pp ON pp.photo_id = p.id \
                 WHERE p.lat IS NOT NULL AND (pp.photo_id IS NULL OR pp.lat != p.lat OR pp.lon != p.lon)",
            )?;
            let rows = stmt.query_map([], |r| Ok((r.get(0)?, r.get(1)?, r.get(2)?)))?;
            rows.collect::<rusqlite::Result<_>>()?
        };
        let tx = self.conn_mut().transaction()?;
        {
            let mut put = tx.prepare(
                "INSERT OR REPLACE INTO photo_places (photo_id, lat, lon, cc, region, city, city_lat, city_lon) \
                 VALUES (?1, ?2, ?3, ?4, ?5, ?6, ?7, ?8)",
            )?;
            for (id, lat, lon) in &stale {
                let p = places::place_of(*lat, *lon);
                put.execute(rusqlite::params![
                    id, lat, lon, p.cc, p.region, p.city, p.city_lat, p.city_lon
                ])?;
            }
            tx.execute(
                "DELETE FROM photo_places WHERE photo_id IN (SELECT id FROM photos WHERE lat IS NULL)",
                [],
            )?;
        }
        tx.commit()?;
        Ok(stale.len())
    }

    /// The place a located photo is in (computed now if the catalog has not done it yet).
    pub fn photo_place(&self, photo: &PhotoRecord) -> Option<places::Place> {
        photo.gps.map(|g| places::place_of(g.lat, g.lon))
    }

    /// Countries, regions and cities of the present located photos, largest first.
    pub fn place_tree(&mut self) -> Result<Vec<CountryNode>> {
        self.refresh_places()?;
        let mut stmt = self.conn().prepare(
            "SELECT pp.cc, pp.region, pp.city, COUNT(*), AVG(pp.city_lat), AVG(pp.city_lon) \
             FROM photo_places pp JOIN photos p ON p.id = pp.photo_id \
             WHERE p.status = 'present' AND p.lat = pp.lat AND p.lon = pp.lon \
             GROUP BY pp.cc, pp.region, pp.city",
        )?;
        let mut tree: BTreeMap<String, BTreeMap<String, Vec<CityNode>>> = BTreeMap::new();
        let mut rows = stmt.query([])?;
        while let Some(r) = rows.next()? {
            let (cc, region, city): (String, String, String) = (r.get(0)?, r.get(1)?, r.get(2)?);
            let count: i64 = r.get(3)?;
            tree.entry(cc)
                .or_default()
                .entry(region)
                .or_default()
                .push(CityNode {
                    name: city,
                    count: count as u64,
                    lat: r.get(4)?,
                    lon: r.get(5)?,
                });
        }
        // A group's point is its members' count-weighted mean, for the map to fly to.
        fn centre<'a>(items: impl Iterator<Item = (u64, f64, f64)> + 'a) -> (u64, f64, f64) {
            let (mut n, mut lat, mut lon) = (0u64, 0.0, 0.0);
            for (c, a, o) in items {
                n += c;
                lat += a * c as f64;
                lon += o * c as f64;
            }
            (n, lat / n.max(1) as f64, lon / n.max(1) as f64)
        }
        let mut countries: Vec<CountryNode> = tree
            .into_iter()
            .map(|(cc, regions)| {
                let mut regions: Vec<RegionNode> = regions
                    .into_iter()
                    .map(|(name, mut cities)| {
                        cities.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));
                        let (count, lat, lon) =
                            centre(cities.iter().map(|c| (c.count, c.lat, c.lon)));
                        RegionNode {
                            name,
                            count,
                            lat,
                            lon,
                            cities,
                        }
                    })
                    .collect();
                regions.sort_by(|a, b| b.count.cmp(&a.count).then(a.name.cmp(&b.name)));
                let (count, lat, lon) = centre(regions.iter().map(|r| (r.count, r.lat, r.lon)));
                CountryNode {
                    country: places::country_name(&cc),
                    cc,
                    count,
                    lat,
                    lon,
                    regions,
                }
            })
            .collect();
        countries.sort_by(|a, b| b.count.cmp(&a.count).then(a.country.cmp(&b.country)));
        Ok(countries)
    }
}
