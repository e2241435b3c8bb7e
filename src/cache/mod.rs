//! The per-region cache: regions, the nearest-grid-point rule, and the
//! set-based queries that build and check the cache. Pure: the queries are
//! text here and run by the cache-refresh job.

pub mod query;
pub mod regions;

pub use regions::{Region, RegionError, parse_regions_csv};

/// Mean Earth radius (IUGG), km.
pub const EARTH_RADIUS_KM: f64 = 6371.0088;

/// Great-circle distance by the haversine formula, km. The SQL in
/// [`query::build_sql`] computes the same expression.
pub fn haversine_km(lat1: f64, lon1: f64, lat2: f64, lon2: f64) -> f64 {
    let (p1, p2) = (lat1.to_radians(), lat2.to_radians());
    let dlat = (lat2 - lat1).to_radians();
    let dlon = (lon2 - lon1).to_radians();
    let a = (dlat / 2.0).sin().powi(2) + p1.cos() * p2.cos() * (dlon / 2.0).sin().powi(2);
    2.0 * EARTH_RADIUS_KM * a.sqrt().min(1.0).asin()
}

/// The nearest of `points` (id, lat, lon) to (lat, lon); ties go to the
/// lower id. None when there are no points.
pub fn nearest_point(lat: f64, lon: f64, points: &[(i32, f64, f64)]) -> Option<(i32, f64)> {
    points
        .iter()
        .map(|&(id, plat, plon)| (id, haversine_km(lat, lon, plat, plon)))
        .min_by(|a, b| a.1.total_cmp(&b.1).then(a.0.cmp(&b.0)))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn haversine_matches_known_distances() {
        // Seoul to Busan, about 325 km.
        let d = haversine_km(37.5665, 126.9780, 35.1796, 129.0756);
        assert!((d - 325.0).abs() < 5.0, "{d}");
        assert_eq!(haversine_km(10.0, 20.0, 10.0, 20.0), 0.0);
    }

    #[test]
    fn ties_go_to_the_lower_grid_id() {
        let points = [(7, 0.0, 1.0), (3, 0.0, -1.0), (9, 5.0, 5.0)];
        assert_eq!(nearest_point(0.0, 0.0, &points).map(|p| p.0), Some(3));
        assert_eq!(nearest_point(0.0, 0.0, &[]), None);
    }
}
