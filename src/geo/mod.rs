//! Geographic primitives: points, validation, distances.

pub mod places;

use serde::{Deserialize, Serialize};

/// Mean Earth radius in metres (IUGG), used by the haversine distance.
pub const EARTH_RADIUS_M: f64 = 6_371_008.8;

/// A WGS84 position. Altitude is metres above sea level when known.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
pub struct GeoPoint {
    pub lat: f64,
    pub lon: f64,
    pub alt: Option<f64>,
}

/// Why a coordinate read from a file is not accepted as a location.
#[derive(Debug, Clone, PartialEq)]
pub enum RejectedLocation {
    /// Exactly 0,0: cameras write it when they had no fix.
    NullIsland,
    OutOfRange {
        lat: f64,
        lon: f64,
    },
    NotFinite,
}

impl std::fmt::Display for RejectedLocation {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            RejectedLocation::NullIsland => write!(f, "GPS 0,0 means no fix; ignored"),
            RejectedLocation::OutOfRange { lat, lon } => {
                write!(f, "GPS {lat},{lon} is out of range; ignored")
            }
            RejectedLocation::NotFinite => write!(f, "GPS value is not a number; ignored"),
        }
    }
}

impl GeoPoint {
    pub fn new(lat: f64, lon: f64) -> Self {
        GeoPoint {
            lat,
            lon,
            alt: None,
        }
    }

    /// Accepts a coordinate read from metadata, rejecting 0,0 and impossible values.
    pub fn validated(lat: f64, lon: f64, alt: Option<f64>) -> Result<GeoPoint, RejectedLocation> {
        if !lat.is_finite() || !lon.is_finite() {
            return Err(RejectedLocation::NotFinite);
        }
        if !(-90.0..=90.0).contains(&lat) || !(-180.0..=180.0).contains(&lon) {
            return Err(RejectedLocation::OutOfRange { lat, lon });
        }
        if lat == 0.0 && lon == 0.0 {
            return Err(RejectedLocation::NullIsland);
        }
        let alt = alt.filter(|a| a.is_finite() && a.abs() < 100_000.0);
        Ok(GeoPoint { lat, lon, alt })
    }

    /// Great-circle distance in metres.
    pub fn distance_m(&self, other: &GeoPoint) -> f64 {
        haversine_m(self.lat, self.lon, other.lat, other.lon)
    }
}

pub fn haversine_m(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dp = p2 - p1;
    let dl = (lon2 - lon1).to_radians();
    let a = (dp / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dl / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_M * a.sqrt().min(1.0).asin()
}

/// Degrees, minutes, seconds to decimal degrees (all parts non-negative; the sign comes from the reference).
pub fn dms_to_degrees(d: f64, m: f64, s: f64) -> f64 {
    d + m / 60.0 + s / 3600.0
}

/// Parses an XMP GPS coordinate: `DDD,MM.mmmmk`, `DDD,MM,SSk` or a plain signed decimal,
/// where k is N, S, E or W (XMP specification part 2, "GPSCoordinate").
pub fn parse_xmp_coordinate(text: &str) -> Option<f64> {
    let t = text.trim();
    if t.is_empty() {
        return None;
    }
    let last = t.chars().last()?;
    let (body, sign) = match last.to_ascii_uppercase() {
        'N' | 'E' => (&t[..t.len() - 1], 1.0),
        'S' | 'W' => (&t[..t.len() - 1], -1.0),
        _ => (t, 1.0),
    };
    let parts: Vec<&str> = body.split(',').map(str::trim).collect();
    let num = |s: &str| s.parse::<f64>().ok().filter(|v| v.is_finite());
    let value = match parts.as_slice() {
        [deg] => num(deg)?,
        [deg, min] => dms_to_degrees(num(deg)?, num(min)?, 0.0),
        [deg, min, sec] => dms_to_degrees(num(deg)?, num(min)?, num(sec)?),
        _ => return None,
    };
    Some(sign * value)
}

/// Formats decimal degrees as an XMP GPS coordinate `DDD,MM.mmmmmmmmk`.
/// Eight decimals of minutes keep the value exact to about 2e-10 degrees.
pub fn format_xmp_coordinate(value: f64, is_latitude: bool) -> String {
    let hemisphere = match (is_latitude, value < 0.0) {
        (true, false) => 'N',
        (true, true) => 'S',
        (false, false) => 'E',
        (false, true) => 'W',
    };
    let a = value.abs();
    let mut deg = a.trunc();
    let mut minutes = (a - deg) * 60.0;
    // Rounding to 8 decimals could produce 60.00000000.
    if (minutes * 1e8).round() >= 60.0 * 1e8 {
        deg += 1.0;
        minutes = 0.0;
    }
    format!("{},{:.8}{}", deg as i64, minutes, hemisphere)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn rejects_null_island_and_out_of_range() {
        assert_eq!(
            GeoPoint::validated(0.0, 0.0, None),
            Err(RejectedLocation::NullIsland)
        );
        assert!(matches!(
            GeoPoint::validated(4294967295.0, 0.0, None),
            Err(RejectedLocation::OutOfRange { .. })
        ));
        assert_eq!(
            GeoPoint::validated(f64::NAN, 1.0, None),
            Err(RejectedLocation::NotFinite)
        );
        assert!(GeoPoint::validated(0.0, 12.0, None).is_ok());
    }

    #[test]
    fn haversine_known_distance() {
        // One degree along a meridian, a quarter of the equator: exact on a sphere.
        let degree = EARTH_RADIUS_M * std::f64::consts::PI / 180.0;
        assert!((haversine_m(10.0, 20.0, 11.0, 20.0) - degree).abs() < 1e-6);
        assert!((haversine_m(0.0, -45.0, 0.0, 45.0) - 90.0 * degree).abs() < 1e-6);
        // Across the antimeridian the short way round.
        assert!((haversine_m(0.0, 179.5, 0.0, -179.5) - degree).abs() < 1e-6);
        assert_eq!(haversine_m(10.0, 10.0, 10.0, 10.0), 0.0);
    }

    #[test]
    fn xmp_coordinates_round_trip() {
        assert_eq!(parse_xmp_coordinate("52,1.2N"), Some(52.02));
        assert!((parse_xmp_coordinate("12,1,12W").unwrap() + 12.02).abs() < 1e-12);
        assert_eq!(parse_xmp_coordinate("-3.5"), Some(-3.5));
        assert_eq!(parse_xmp_coordinate("abc"), None);
        for v in [
            52.518_912_345,
            -13.400_3,
            0.000_001,
            -179.999_999_9,
            89.999_999_99,
        ] {
            let s = format_xmp_coordinate(v, true);
            let back = parse_xmp_coordinate(&s).unwrap();
            assert!((back - v).abs() < 1e-9, "{v} -> {s} -> {back}");
        }
    }
}
