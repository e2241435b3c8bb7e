//! Per-hazard probability configuration: which distribution, which intensity bins.
//!
//! Kept as data keyed by the hazard's `risk_type` (the same key as
//! [`crate::hazard::default_hazards`]) so that the probability batch, the fixtures and the
//! damage functions downstream agree on one table, and adding a hazard is one entry.

use std::borrow::Cow;

/// The distribution a hazard's window is fitted with.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum FitMethod {
    /// GEV by L-moments: for annual maxima (block maxima are GEV-distributed in the limit).
    Gev,
    /// The window's empirical distribution: for annual counts of days.
    Empirical,
}

impl FitMethod {
    pub fn as_str(self) -> &'static str {
        match self {
            FitMethod::Gev => "gev",
            FitMethod::Empirical => "empirical",
        }
    }
}

/// A configuration that cannot be used.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum ConfigError {
    #[error(
        "probability config {risk_type}: bin edges must be finite and strictly increasing, got {edges:?}"
    )]
    BadEdges { risk_type: String, edges: Vec<f64> },
}

/// How one hazard's windows are turned into probabilities.
///
/// Fields are private so that the invariant the bin probabilities rely on (finite, strictly
/// increasing edges) holds for every value: build one with [`ProbabilityConfig::new`].
#[derive(Debug, Clone, PartialEq)]
pub struct ProbabilityConfig {
    risk_type: Cow<'static, str>,
    method: FitMethod,
    bin_edges: Vec<f64>,
}

impl ProbabilityConfig {
    /// `n` edges define `n + 1` bins: `(-∞, e0], (e0, e1], …, (e_{n-1}, +∞)`. No edges is
    /// allowed (one bin holding all the mass).
    pub fn new(
        risk_type: impl Into<Cow<'static, str>>,
        method: FitMethod,
        bin_edges: Vec<f64>,
    ) -> Result<Self, ConfigError> {
        let risk_type = risk_type.into();
        let ok =
            bin_edges.iter().all(|e| e.is_finite()) && bin_edges.windows(2).all(|w| w[0] < w[1]);
        if !ok {
            return Err(ConfigError::BadEdges {
                risk_type: risk_type.into_owned(),
                edges: bin_edges,
            });
        }
        Ok(Self {
            risk_type,
            method,
            bin_edges,
        })
    }

    pub fn risk_type(&self) -> &str {
        &self.risk_type
    }

    pub fn method(&self) -> FitMethod {
        self.method
    }

    pub fn bin_edges(&self) -> &[f64] {
        &self.bin_edges
    }

    /// Number of bins (`bin_edges().len() + 1`).
    pub fn n_bins(&self) -> usize {
        self.bin_edges.len() + 1
    }
}

/// The default configuration of the platform's five hazards.
///
/// Bin edges, in the index's unit, chosen so the bins separate damage classes:
/// * `extreme_heat`, `extreme_cold` (days per year): `[0, 5, 10, 20, 30, 60]` — the first bin
///   `(-∞, 0]` is "no such day", then a few, a week or two, up to the 60-day top of the score
///   scale and beyond;
/// * `drought` (longest dry spell, days): `[10, 20, 30, 45, 60, 90]` — a dry spell under ten
///   days is ordinary, a season-long one (> 90) is severe;
/// * `urban_flood` (Rx1day, mm): `[25, 50, 100, 150, 200, 300]` — from heavy rain (25 mm) to
///   the 200 mm top of the score scale and extreme totals above 300 mm;
/// * `river_flood` (Rx5day, mm): `[50, 100, 200, 300, 400, 600]` — the same for 5-day totals,
///   with 400 mm the top of the score scale.
pub fn default_configs() -> Vec<ProbabilityConfig> {
    let entry = |risk_type: &'static str, method, edges: &[f64]| ProbabilityConfig {
        risk_type: Cow::Borrowed(risk_type),
        method,
        bin_edges: edges.to_vec(),
    };
    vec![
        entry(
            "extreme_heat",
            FitMethod::Empirical,
            &[0.0, 5.0, 10.0, 20.0, 30.0, 60.0],
        ),
        entry(
            "extreme_cold",
            FitMethod::Empirical,
            &[0.0, 5.0, 10.0, 20.0, 30.0, 60.0],
        ),
        entry(
            "drought",
            FitMethod::Gev,
            &[10.0, 20.0, 30.0, 45.0, 60.0, 90.0],
        ),
        entry(
            "urban_flood",
            FitMethod::Gev,
            &[25.0, 50.0, 100.0, 150.0, 200.0, 300.0],
        ),
        entry(
            "river_flood",
            FitMethod::Gev,
            &[50.0, 100.0, 200.0, 300.0, 400.0, 600.0],
        ),
    ]
}

/// The default configuration for `risk_type`, if it is one of the platform's hazards.
pub fn default_config(risk_type: &str) -> Option<ProbabilityConfig> {
    default_configs()
        .into_iter()
        .find(|c| c.risk_type() == risk_type)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn every_hazard_has_a_valid_default() {
        for h in crate::hazard::default_hazards() {
            let c = default_config(&h.risk_type).expect("config for every hazard");
            let again = ProbabilityConfig::new(
                c.risk_type().to_string(),
                c.method(),
                c.bin_edges().to_vec(),
            );
            assert_eq!(again.as_ref(), Ok(&c));
        }
        assert_eq!(
            default_configs().len(),
            crate::hazard::default_hazards().len()
        );
        assert_eq!(
            default_config("urban_flood").map(|c| c.method()),
            Some(FitMethod::Gev)
        );
        assert_eq!(
            default_config("extreme_heat").map(|c| c.method()),
            Some(FitMethod::Empirical)
        );
        assert!(default_config("hail").is_none());
    }

    #[test]
    fn bad_edges_are_rejected() {
        for edges in [
            vec![1.0, 1.0],
            vec![2.0, 1.0],
            vec![f64::NAN],
            vec![0.0, f64::INFINITY],
        ] {
            assert!(ProbabilityConfig::new("x", FitMethod::Gev, edges).is_err());
        }
        assert!(ProbabilityConfig::new("x", FitMethod::Gev, vec![]).is_ok());
    }
}
