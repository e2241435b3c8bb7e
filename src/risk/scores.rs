//! Exposure (E) and vulnerability (V) scores, 0–100, from documented rules on
//! a site's attributes, and the risk index combining them with the hazard
//! score. Screening rules, not an engineering assessment: they rank sites for
//! a disclosure, the AAL is the money figure.
//!
//! **E — how much of the asset sits where the hazard acts** (per hazard):
//! * `river_flood`: by `distance_to_river_km`: ≤ 0.5 km → 100, ≤ 1 → 80,
//!   ≤ 2 → 60, ≤ 5 → 40, ≤ 10 → 20, farther → 10; unknown → 100 (a site
//!   whose distance is not known is treated as on the river: the cautious
//!   reading);
//! * `urban_flood`: by `floors` (surface water reaches the ground floor): 1 →
//!   100, 2–3 → 70, 4 or more → 40;
//! * `extreme_heat`, `extreme_cold`, `drought`: 100 (the regional climate
//!   reaches the whole asset).
//!
//! **V — how easily the asset is damaged** (the same for every hazard): a
//! base by `structure_type` (wood 70, masonry 60, light_metal 55, mixed 50,
//! steel 40, reinforced_concrete 35), plus age (built before 1950 +15,
//! 1950–1979 +10, 1980–1999 +5, later +0: older codes and materials), plus
//! height (1 floor +10, 2–3 floors +5, more +0: the whole asset at ground
//! level), capped at 100.
//!
//! **Risk index** `= (H · E · V)^{1/3}`, H the hazard score (0–100). The
//! geometric mean, as in the INFORM risk index: risk is the interaction of
//! hazard, exposure and vulnerability (IPCC AR5/AR6), so it is 0 when any of
//! them is 0 and no one factor can buy back another's absence, while it stays
//! on the same 0–100 scale as its parts and weighs them equally.

use super::sites::{Site, StructureType};

/// E for `risk_type` (0–100).
pub fn exposure_score(site: &Site, risk_type: &str) -> f64 {
    match risk_type {
        "river_flood" => match site.distance_to_river_km {
            None => 100.0,
            Some(d) if d <= 0.5 => 100.0,
            Some(d) if d <= 1.0 => 80.0,
            Some(d) if d <= 2.0 => 60.0,
            Some(d) if d <= 5.0 => 40.0,
            Some(d) if d <= 10.0 => 20.0,
            Some(_) => 10.0,
        },
        "urban_flood" => match site.floors {
            ..=1 => 100.0,
            2..=3 => 70.0,
            _ => 40.0,
        },
        _ => 100.0,
    }
}

/// V (0–100), the same for every hazard.
pub fn vulnerability_score(site: &Site) -> f64 {
    let base = match site.structure_type {
        StructureType::Wood => 70.0,
        StructureType::Masonry => 60.0,
        StructureType::LightMetal => 55.0,
        StructureType::Mixed => 50.0,
        StructureType::Steel => 40.0,
        StructureType::ReinforcedConcrete => 35.0,
    };
    let age = match site.year_built {
        ..=1949 => 15.0,
        1950..=1979 => 10.0,
        1980..=1999 => 5.0,
        _ => 0.0,
    };
    let height = match site.floors {
        ..=1 => 10.0,
        2..=3 => 5.0,
        _ => 0.0,
    };
    f64::min(base + age + height, 100.0)
}

/// `(H · E · V)^{1/3}`, each 0–100.
pub fn risk_index(hazard_score: f64, e: f64, v: f64) -> f64 {
    (hazard_score.clamp(0.0, 100.0) * e.clamp(0.0, 100.0) * v.clamp(0.0, 100.0)).cbrt()
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::risk::sites::AssetClass;

    fn site(
        structure_type: StructureType,
        year_built: i32,
        floors: i32,
        river: Option<f64>,
    ) -> Site {
        Site {
            site_id: "S".into(),
            name: "s".into(),
            lat: 0.0,
            lon: 0.0,
            asset_value: 1.0,
            currency: "KRW".into(),
            asset_class: AssetClass::Commercial,
            structure_type,
            year_built,
            floors,
            distance_to_river_km: river,
            distance_to_coast_km: None,
            line: 2,
        }
    }

    #[test]
    fn rules_as_documented() {
        let old_wood = site(StructureType::Wood, 1930, 1, None);
        assert_eq!(vulnerability_score(&old_wood), 95.0);
        assert_eq!(exposure_score(&old_wood, "river_flood"), 100.0);
        assert_eq!(exposure_score(&old_wood, "urban_flood"), 100.0);
        let tower = site(StructureType::ReinforcedConcrete, 2015, 30, Some(7.0));
        assert_eq!(vulnerability_score(&tower), 35.0);
        assert_eq!(exposure_score(&tower, "river_flood"), 20.0);
        assert_eq!(exposure_score(&tower, "urban_flood"), 40.0);
        assert_eq!(exposure_score(&tower, "extreme_heat"), 100.0);
    }

    #[test]
    fn risk_index_is_a_geometric_mean() {
        assert_eq!(risk_index(100.0, 100.0, 100.0), 100.0);
        assert_eq!(risk_index(0.0, 100.0, 100.0), 0.0);
        assert!((risk_index(8.0, 100.0, 10.0) - 20.0).abs() < 1e-12);
    }
}
