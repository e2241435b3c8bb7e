//! Site risk: from a grid point's hazard probabilities to a business site's
//! expected losses and scores. Pure code: no database, files or clocks.
//!
//! For one site, hazard and year, given the nearest grid point's
//! probability result (bins, their probabilities, return levels, the fit)
//! and the vulnerability curve `f` of the site's asset class ([`curves`]):
//!
//! * **AAL rate** `= Σᵢ pᵢ · f(xᵢ)`, the expected damage ratio of a year,
//!   summed over the intensity bins with `xᵢ` each bin's representative
//!   intensity ([`bins`]). This is CLIMADA's `aai_agg` with the bins as
//!   events, their probabilities as frequencies, and the curves as impact
//!   functions, and physrisk's mean damage. **AAL** `= rate × asset value`,
//!   in the site's currency;
//! * **loss at the T-year return level** `= f(RL_T) × value`, T = 10, 50,
//!   100: the damage of the year whose index reaches the level exceeded once
//!   in T years on average;
//! * **hazard score** `H = Σᵢ pᵢ · score(xᵢ)`, the expected 0–100 index
//!   score of [`crate::hazard::Hazard::score`] over the same bins;
//! * **E, V, risk index**: [`scores`].
//!
//! Totals per site over hazards are sums of these per-hazard expectations
//! (the expectation of a sum is the sum of expectations whatever the
//! dependence between hazards; no correlation is modelled, so nothing beyond
//! the expectation — no combined return level — is totalled).

pub mod bins;
pub mod curves;
pub mod scores;
pub mod sites;

use std::fmt;

pub use curves::{Curve, CurveSet, DEFAULT_CURVES, DEFAULT_CURVES_PATH, parse_curves_csv};
pub use sites::{AssetClass, Site, StructureType, parse_sites_csv};

use crate::hazard::Hazard;
use crate::probability::GevParams;

/// A problem on one line of an input file (the header is line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct LineError {
    pub line: u64,
    pub message: String,
}

impl LineError {
    pub fn new(line: u64, message: String) -> Self {
        Self { line, message }
    }
}

impl fmt::Display for LineError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

/// One probability result, as `probability_results` holds it.
#[derive(Debug, Clone, PartialEq)]
pub struct BinProbabilities<'a> {
    pub method: &'a str,
    pub bin_edges: &'a [f64],
    pub bin_probs: &'a [f64],
    /// 10, 50, 100 years.
    pub return_levels: [f64; 3],
    pub gev: Option<GevParams>,
}

/// What one site, hazard and year come to.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct HazardOutcome {
    /// Σ pᵢ f(xᵢ): expected damage ratio per year.
    pub aal_rate: f64,
    /// f(RL_T) for T = 10, 50, 100.
    pub damage_at_return_levels: [f64; 3],
    /// Σ pᵢ score(xᵢ), 0–100.
    pub hazard_score: f64,
}

/// A probability row that cannot be assessed.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum AssessError {
    #[error("{bins} bin probabilities for {edges} bin edges (expected edges + 1)")]
    BinCount { bins: usize, edges: usize },
    #[error("bin probability {0} is not in [0, 1]")]
    BadProbability(f64),
}

/// What a probability result comes to before any curve: each bin's
/// representative intensity and the expected hazard score. The same for every
/// site whose nearest grid point it is, so computed once per result.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct PreparedBins {
    pub values: Vec<f64>,
    pub hazard_score: f64,
}

/// Checks a probability result and prepares its bins.
pub fn prepare(
    probs: &BinProbabilities<'_>,
    hazard: &Hazard,
    out: &mut PreparedBins,
) -> Result<(), AssessError> {
    if probs.bin_probs.len() != probs.bin_edges.len() + 1 {
        return Err(AssessError::BinCount {
            bins: probs.bin_probs.len(),
            edges: probs.bin_edges.len(),
        });
    }
    if let Some(&p) = probs.bin_probs.iter().find(|p| !(0.0..=1.0).contains(*p)) {
        return Err(AssessError::BadProbability(p));
    }
    bins::representative_values(
        probs.bin_edges,
        probs.method,
        probs.gev,
        probs.return_levels[0],
        &mut out.values,
    );
    let mut hazard_score = 0.0;
    for (&p, &x) in probs.bin_probs.iter().zip(&out.values) {
        hazard_score += p * hazard.score(x);
    }
    out.hazard_score = hazard_score.clamp(0.0, 100.0);
    Ok(())
}

/// The AAL rate and the damage at the return levels under one curve, from
/// prepared bins.
pub fn apply_curve(
    probs: &BinProbabilities<'_>,
    prepared: &PreparedBins,
    curve: &Curve,
) -> HazardOutcome {
    let mut aal_rate = 0.0;
    for (&p, &x) in probs.bin_probs.iter().zip(&prepared.values) {
        aal_rate += p * curve.damage_ratio(x);
    }
    HazardOutcome {
        aal_rate,
        damage_at_return_levels: probs.return_levels.map(|rl| curve.damage_ratio(rl)),
        hazard_score: prepared.hazard_score,
    }
}

/// The AAL rate, damage at the return levels and hazard score of one
/// probability result under one curve ([`prepare`] then [`apply_curve`]).
pub fn assess(
    probs: &BinProbabilities<'_>,
    curve: &Curve,
    hazard: &Hazard,
    prepared: &mut PreparedBins,
) -> Result<HazardOutcome, AssessError> {
    prepare(probs, hazard, prepared)?;
    Ok(apply_curve(probs, prepared, curve))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::hazard::default_hazards;

    #[test]
    fn aal_is_the_probability_weighted_damage() {
        let set = parse_curves_csv(
            "hazard,asset_class,intensity,damage_ratio,unit,proxy,source\n\
             extreme_heat,residential,0,0,days,true,s\n\
             extreme_heat,residential,10,0.1,days,true,s\n\
             extreme_heat,residential,20,0.3,days,true,s\n",
        )
        .unwrap();
        let curve = set.get("extreme_heat", AssetClass::Residential).unwrap();
        let heat = &default_hazards()[0];
        let probs = BinProbabilities {
            method: "empirical",
            bin_edges: &[0.0, 5.0, 10.0, 20.0],
            bin_probs: &[0.5, 0.2, 0.2, 0.1, 0.0],
            return_levels: [12.0, 15.0, 30.0],
            gev: None,
        };
        let out = assess(&probs, curve, heat, &mut PreparedBins::default()).unwrap();
        // x = 0, 2.5, 7.5, 15, 25 → f = 0, 0.025, 0.075, 0.2, 0.3
        let expected = 0.2 * 0.025 + 0.2 * 0.075 + 0.1 * 0.2;
        assert!((out.aal_rate - expected).abs() < 1e-15);
        assert_eq!(out.damage_at_return_levels[2], 0.3);
        assert!((out.damage_at_return_levels[0] - 0.14).abs() < 1e-15);
        let h = 0.2 * heat.score(2.5) + 0.2 * heat.score(7.5) + 0.1 * heat.score(15.0);
        assert!((out.hazard_score - h).abs() < 1e-12);
        let short = BinProbabilities {
            bin_probs: &[1.0],
            ..probs
        };
        assert!(assess(&short, curve, heat, &mut PreparedBins::default()).is_err());
    }
}
