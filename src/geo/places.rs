//! Offline reverse geocoding: the country, region and city a location is in.
//!
//! The cities are GeoNames' places with a population over 1000 (CC BY 4.0), as shipped inside
//! the `reverse_geocoder` crate; country names come from ISO 3166 (`assets/data/countries.tsv`).
//! Nothing is fetched from the network.

use std::collections::HashMap;
use std::sync::OnceLock;

use reverse_geocoder::ReverseGeocoder;
use serde::Serialize;

/// Attribution the user interface shows next to place names.
pub const ATTRIBUTION: &str = "Place names: GeoNames (geonames.org), CC BY 4.0";

/// Where a location is: the nearest GeoNames city and its region and country.
#[derive(Debug, Clone, PartialEq, Serialize)]
pub struct Place {
    /// ISO 3166-1 alpha-2 country code.
    pub cc: String,
    pub country: String,
    /// First-level administrative division (state, region, province); may be empty.
    pub region: String,
    pub city: String,
    pub city_lat: f64,
    pub city_lon: f64,
}

fn geocoder() -> &'static ReverseGeocoder {
    static GEOCODER: OnceLock<ReverseGeocoder> = OnceLock::new();
    // Parses the crate's embedded table once (~0.5 s); every lookup after that is a k-d tree query.
    GEOCODER.get_or_init(ReverseGeocoder::new)
}

fn country_names() -> &'static HashMap<&'static str, &'static str> {
    static NAMES: OnceLock<HashMap<&'static str, &'static str>> = OnceLock::new();
    NAMES.get_or_init(|| {
        include_str!("../../assets/data/countries.tsv")
            .lines()
            .filter(|l| !l.starts_with('#'))
            .filter_map(|l| l.split_once('\t'))
            .collect()
    })
}

/// The English short name of an ISO 3166-1 alpha-2 code (the code itself when unknown).
pub fn country_name(cc: &str) -> String {
    country_names()
        .get(cc)
        .map(|s| s.to_string())
        .unwrap_or_else(|| cc.to_string())
}

/// The place nearest to a location.
pub fn place_of(lat: f64, lon: f64) -> Place {
    let found = geocoder().search((lat, lon));
    let r = found.record;
    Place {
        cc: r.cc.clone(),
        country: country_name(&r.cc),
        region: r.admin1.clone(),
        city: r.name.clone(),
        city_lat: r.lat,
        city_lon: r.lon,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_landmarks_land_in_their_cities() {
        let eiffel = place_of(48.8584, 2.2945);
        assert_eq!(eiffel.cc, "FR");
        assert_eq!(eiffel.country, "France");
        assert_eq!(eiffel.region, "Ile-de-France");
        let opera = place_of(-33.8568, 151.2153);
        assert_eq!(opera.cc, "AU");
        assert_eq!(opera.country, "Australia");
        assert_eq!(opera.region, "New South Wales");
        // Across the antimeridian: Fiji's Taveuni island at 179.9 W / E.
        assert_eq!(place_of(-16.85, -179.95).cc, "FJ");
    }

    #[test]
    fn unknown_codes_fall_back_to_the_code() {
        assert_eq!(country_name("GB"), "United Kingdom");
        assert_eq!(country_name("ZZ"), "ZZ");
    }
}
