//! Hazard probabilities: distribution fits, intensity-bin probabilities and return levels.
//!
//! Pure code: knows nothing of databases, files or clocks. The probability batch takes, for a
//! target year, the [`window`] of annual index values around it, fits the hazard's
//! distribution with [`fit_window`] (or, in a loop, [`Fitter::fit_into`], which reuses its
//! buffers) and stores the [`Fitted`] result:
//!
//! * annual maxima (`urban_flood`, `river_flood`, `drought`) are fitted with a GEV by L-moments,
//!   reproducing `lmoments3.distr.gev.lmom_fit` (see [`gev`]); counts (`extreme_heat`,
//!   `extreme_cold`) use the empirical distribution (see [`empirical`]). Which one is
//!   configuration ([`ProbabilityConfig`], [`default_configs`]);
//! * a window whose values are all equal is [`Method::Degenerate`]: all mass on that value;
//! * a GEV fit that is impossible (fewer than 4 values, |t3| ≥ 1, no convergence, a
//!   non-finite parameter or non-positive scale) falls back to the empirical distribution
//!   and says so ([`Method::EmpiricalFallback`], [`Fitted::fallback`]).
//!
//! Whatever the input, a result holds no NaN and its bin probabilities sum to 1.
//!
//! Bins: with edges `e_0 < … < e_{m-1}`, `P(e_{i-1} < X ≤ e_i) = F(e_i) − F(e_{i-1})`, the
//! first bin from −∞ and the last to +∞. They are computed as differences of the sequence
//! `0, F(e_0), …, F(e_{m-1}), 1` after forcing it monotone with a running maximum, so no
//! probability is negative (a GEV CDF evaluated in floating point could in principle step
//! back by an ulp) and the sum telescopes to 1 up to rounding of a few ulps.
//!
//! Return levels: `z_T = F⁻¹(1 − 1/T)` for T = 10, 50, 100 years ([`RETURN_PERIODS`]).

pub mod config;
pub mod empirical;
pub mod gev;

use std::fmt;

pub use config::{ConfigError, FitMethod, ProbabilityConfig, default_config, default_configs};
pub use gev::{GevFitError, GevParams};

/// Return periods, in years, of [`Fitted::return_levels`].
pub const RETURN_PERIODS: [f64; 3] = [10.0, 50.0, 100.0];

/// Default window length in years.
pub const DEFAULT_WINDOW: usize = 30;

/// Default minimum number of values in a window.
pub const DEFAULT_MIN_YEARS: usize = 20;

/// The distribution a [`Fitted`] result actually used.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Method {
    /// GEV by L-moments; [`Fitted::params`] holds the parameters.
    Gev,
    /// Empirical distribution, as configured.
    Empirical,
    /// All values equal: all mass on that value.
    Degenerate,
    /// GEV was configured but could not be fitted; empirical used instead.
    EmpiricalFallback,
}

impl Method {
    /// Label stored with the result (`probability_results.method`).
    pub fn as_str(self) -> &'static str {
        match self {
            Method::Gev => "gev",
            Method::Empirical => "empirical",
            Method::Degenerate => "degenerate",
            Method::EmpiricalFallback => "empirical_fallback",
        }
    }
}

impl fmt::Display for Method {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// One fitted window.
#[derive(Debug, Clone, PartialEq)]
pub struct Fitted {
    pub method: Method,
    /// GEV parameters when `method` is [`Method::Gev`], else `None`.
    pub params: Option<GevParams>,
    /// Number of values fitted.
    pub n: usize,
    /// `config.n_bins()` probabilities, each in [0, 1], summing to 1.
    pub bin_probs: Vec<f64>,
    /// Return levels for [`RETURN_PERIODS`] (10, 50, 100 years), in the index's unit.
    pub return_levels: [f64; 3],
    /// Why GEV was not used when it was configured ([`Method::EmpiricalFallback`]).
    pub fallback: Option<GevFitError>,
}

impl Default for Fitted {
    fn default() -> Self {
        Self {
            method: Method::Degenerate,
            params: None,
            n: 0,
            bin_probs: Vec::new(),
            return_levels: [0.0; 3],
            fallback: None,
        }
    }
}

/// A window that cannot be fitted at all.
#[derive(Debug, Clone, Copy, PartialEq, Eq, thiserror::Error)]
pub enum FitError {
    /// No finite value: there is no distribution to speak of (the batch writes no row).
    #[error("no finite value to fit")]
    NoData,
}

/// The values of the `len`-year window around `target` in `series` (`(year, value)`, sorted
/// by year, at most one value per year), or `None` when fewer than `min_years` values are in it.
///
/// The window is the years `target − len/2 … target + len − len/2 − 1` (1976…2005 for 1990
/// and 30 years). Near the ends of the series it shifts to stay inside the series' first and
/// last year and keep its length; a series spanning fewer than `len` years is used whole.
/// Missing years, and non-finite values (NaN marks a missing value), are skipped. A `target`
/// outside the series' span has no window (`None`): shifting 30 years to describe a year the
/// series does not reach would silently report another period.
pub fn window(
    series: &[(i32, f64)],
    target: i32,
    len: usize,
    min_years: usize,
) -> Option<Vec<f64>> {
    let mut out = Vec::with_capacity(len);
    window_into(series, target, len, min_years, &mut out).then_some(out)
}

/// [`window`] into a reused buffer (cleared first); returns whether the window has at least
/// `min_years` values. The years it covers are [`window_years`].
pub fn window_into(
    series: &[(i32, f64)],
    target: i32,
    len: usize,
    min_years: usize,
    out: &mut Vec<f64>,
) -> bool {
    out.clear();
    let Some((start, end)) = window_years(series, target, len) else {
        return false;
    };
    let from = series.partition_point(|&(y, _)| y < start);
    let to = series.partition_point(|&(y, _)| y <= end);
    out.extend(
        series[from..to]
            .iter()
            .map(|&(_, v)| v)
            .filter(|v| v.is_finite()),
    );
    out.len() >= min_years && !out.is_empty()
}

/// First and last year (inclusive) of the window [`window`] takes, or `None` for an empty
/// series, `len == 0` or a `target` outside the series' span.
pub fn window_years(series: &[(i32, f64)], target: i32, len: usize) -> Option<(i32, i32)> {
    let first = series.first()?.0;
    let last = series.last()?.0;
    if len == 0 || target < first || target > last {
        return None;
    }
    // i64: no overflow for any i32 years and any usize length we could be handed.
    let (first, last, target) = (i64::from(first), i64::from(last), i64::from(target));
    let len = i64::try_from(len).unwrap_or(i64::MAX / 4);
    if last - first < len {
        return Some((first as i32, last as i32));
    }
    let mut start = target - len / 2;
    let mut end = start + len - 1;
    if start < first {
        start = first;
        end = first + len - 1;
    } else if end > last {
        end = last;
        start = last - len + 1;
    }
    // Within [first, last] here, so back in i32 range.
    Some((start as i32, end as i32))
}

/// Fits one window with the hazard's configuration; allocates the result. For many windows
/// use a [`Fitter`], which reuses its buffers.
pub fn fit_window(values: &[f64], config: &ProbabilityConfig) -> Result<Fitted, FitError> {
    let mut out = Fitted::default();
    Fitter::default().fit_into(values, config, &mut out)?;
    Ok(out)
}

/// Reusable scratch space for fitting many windows without allocating (sort buffers), and the
/// return periods' Gumbel variates computed once. One per thread.
#[derive(Debug, Clone)]
pub struct Fitter {
    keys: Vec<i64>,
    sorted: Vec<f64>,
    /// `-ln(-ln(1 - 1/T))` for [`RETURN_PERIODS`].
    gumbel_y: [f64; 3],
}

impl Default for Fitter {
    fn default() -> Self {
        Self {
            keys: Vec::new(),
            sorted: Vec::new(),
            gumbel_y: RETURN_PERIODS.map(|t| gev::gumbel_variate(1.0 - 1.0 / t)),
        }
    }
}

/// Order-preserving integer key of a float (IEEE 754 total order, as `f64::total_cmp`): flip
/// the magnitude bits of negatives. Sorting these integers is several times faster than sorting
/// floats with a comparison closure (integer `sort_unstable` uses branch-free sorting networks
/// for small slices), and the sort is most of a 30-value fit's cost.
#[inline]
fn float_key(v: f64) -> i64 {
    let b = v.to_bits() as i64;
    b ^ ((((b >> 63) as u64) >> 1) as i64)
}

/// Inverse of [`float_key`] (the transform is its own inverse).
#[inline]
fn key_float(k: i64) -> f64 {
    f64::from_bits((k ^ ((((k >> 63) as u64) >> 1) as i64)) as u64)
}

impl Fitter {
    pub fn new() -> Self {
        Self::default()
    }

    /// Sorts the finite `values` into the fitter's buffer (integer keys: see [`float_key`]);
    /// `None` when there are none.
    fn sort_finite(&mut self, values: &[f64]) -> Option<&[f64]> {
        self.keys.clear();
        self.keys.extend(
            values
                .iter()
                .filter(|v| v.is_finite())
                .map(|&v| float_key(v)),
        );
        if self.keys.is_empty() {
            return None;
        }
        // Finite values only, so the total order is the numeric order (-0.0 sorting before
        // 0.0 is harmless: they are equal in every later comparison and sum).
        self.keys.sort_unstable();
        self.sorted.clear();
        self.sorted.extend(self.keys.iter().map(|&k| key_float(k)));
        Some(self.sorted.as_slice())
    }

    /// GEV parameters of `values` by L-moments, and nothing else: the work
    /// `lmoments3.distr.gev.lmom_fit` does (sort, sample L-moments,
    /// parameters), for comparing like with like in the benchmark.
    pub fn gev_params(&mut self, values: &[f64]) -> Result<GevParams, GevFitError> {
        match self.sort_finite(values) {
            Some(sorted) => gev::fit_sorted(sorted),
            None => Err(GevFitError::TooFewValues { n: 0 }),
        }
    }

    /// Fits `values` (any order; non-finite values are skipped as missing) and writes the result
    /// into `out`, reusing `out.bin_probs`' allocation. On error `out` is left unspecified.
    pub fn fit_into(
        &mut self,
        values: &[f64],
        config: &ProbabilityConfig,
        out: &mut Fitted,
    ) -> Result<(), FitError> {
        if self.sort_finite(values).is_none() {
            return Err(FitError::NoData);
        }
        let sorted = self.sorted.as_slice();
        out.n = sorted.len();
        out.params = None;
        out.fallback = None;

        let lo = sorted[0];
        let hi = sorted[sorted.len() - 1];
        if lo == hi {
            out.method = Method::Degenerate;
            out.return_levels = [lo; 3];
            fill_bins(config.bin_edges(), &mut out.bin_probs, |x| {
                if x < lo { 0.0 } else { 1.0 }
            });
            return Ok(());
        }

        if config.method() == FitMethod::Gev {
            match gev::fit_sorted(sorted) {
                Ok(p) => {
                    let levels = self.gumbel_y.map(|y| p.quantile_at_gumbel(y));
                    if levels.iter().all(|z| z.is_finite()) {
                        out.method = Method::Gev;
                        out.params = Some(p);
                        out.return_levels = levels;
                        fill_bins(config.bin_edges(), &mut out.bin_probs, |x| p.cdf(x));
                        return Ok(());
                    }
                    out.fallback = Some(GevFitError::InvalidParams {
                        c: p.c,
                        loc: p.loc,
                        scale: p.scale,
                    });
                }
                Err(e) => out.fallback = Some(e),
            }
            out.method = Method::EmpiricalFallback;
        } else {
            out.method = Method::Empirical;
        }
        out.return_levels =
            RETURN_PERIODS.map(|t| empirical::quantile_sorted(sorted, 1.0 - 1.0 / t));
        fill_bins(config.bin_edges(), &mut out.bin_probs, |x| {
            empirical::cdf_sorted(sorted, x)
        });
        Ok(())
    }
}

/// Bin probabilities as differences of `0, F(e_0), …, F(e_{m-1}), 1`, made monotone with a
/// running maximum (NaN from a CDF would be ignored by `f64::max`, never propagated).
fn fill_bins(edges: &[f64], probs: &mut Vec<f64>, cdf: impl Fn(f64) -> f64) {
    probs.clear();
    let mut prev = 0.0_f64;
    for &e in edges {
        let f = prev.max(cdf(e)).min(1.0);
        probs.push(f - prev);
        prev = f;
    }
    probs.push(1.0 - prev);
}

#[cfg(test)]
mod tests {
    use super::*;

    fn cfg(method: FitMethod, edges: &[f64]) -> ProbabilityConfig {
        ProbabilityConfig::new("test", method, edges.to_vec()).expect("valid edges")
    }

    fn series(first: i32, last: i32) -> Vec<(i32, f64)> {
        (first..=last).map(|y| (y, f64::from(y))).collect()
    }

    #[test]
    fn window_is_centred_and_shifts_at_the_ends() {
        let s = series(2021, 2100);
        assert_eq!(window_years(&s, 2060, 30), Some((2045, 2074)));
        assert_eq!(window_years(&s, 2021, 30), Some((2021, 2050)));
        assert_eq!(window_years(&s, 2036, 30), Some((2021, 2050)));
        assert_eq!(window_years(&s, 2037, 30), Some((2022, 2051)));
        assert_eq!(window_years(&s, 2086, 30), Some((2071, 2100)));
        assert_eq!(window_years(&s, 2100, 30), Some((2071, 2100)));
        assert_eq!(window_years(&s, 2101, 30), None);
        assert_eq!(window_years(&s, 2060, 31), Some((2045, 2075)));
        let w = window(&s, 2060, 30, 20).expect("30 values");
        assert_eq!(w.len(), 30);
        assert_eq!(w[0], 2045.0);
        assert_eq!(w[29], 2074.0);
        // Shorter series than the window: all of it.
        let short = series(2000, 2024);
        assert_eq!(window_years(&short, 2010, 30), Some((2000, 2024)));
        assert_eq!(window(&short, 2010, 30, 20).map(|w| w.len()), Some(25));
        assert_eq!(window(&short, 2010, 30, 26), None);
    }

    #[test]
    fn window_skips_missing_years_and_nan() {
        let mut s = series(2021, 2100);
        s.retain(|&(y, _)| y % 3 != 0); // drop a third of the years
        s[5].1 = f64::NAN;
        let w = window(&s, 2060, 30, 10).expect("enough values");
        assert!(w.iter().all(|v| v.is_finite()));
        assert!(w.len() < 30 && w.len() >= 18);
        assert_eq!(window(&s, 2060, 30, 25), None);
        assert_eq!(window(&[], 2060, 30, 0), None);
        assert_eq!(window(&s, 2060, 0, 0), None);
    }

    #[test]
    fn degenerate_window_puts_all_mass_on_the_value() {
        for method in [FitMethod::Gev, FitMethod::Empirical] {
            let c = cfg(method, &[0.0, 5.0, 10.0]);
            let f = fit_window(&[0.0; 30], &c).expect("fit");
            assert_eq!(f.method, Method::Degenerate);
            assert_eq!(f.bin_probs, vec![1.0, 0.0, 0.0, 0.0]);
            assert_eq!(f.return_levels, [0.0; 3]);
            let f = fit_window(&[7.0; 25], &c).expect("fit");
            assert_eq!(f.bin_probs, vec![0.0, 0.0, 1.0, 0.0]);
            let f = fit_window(&[5.0], &c).expect("fit");
            assert_eq!(
                f.bin_probs,
                vec![0.0, 1.0, 0.0, 0.0],
                "x = edge is in (a, x]"
            );
            assert_eq!(f.n, 1);
        }
    }

    #[test]
    fn tiny_and_bad_windows_never_give_nan() {
        let c = cfg(FitMethod::Gev, &[1.0, 2.0]);
        assert_eq!(fit_window(&[], &c), Err(FitError::NoData));
        assert_eq!(
            fit_window(&[f64::NAN, f64::INFINITY], &c),
            Err(FitError::NoData)
        );
        for v in [
            vec![1.0, 2.0],
            vec![1.0, 2.0, 3.0],
            vec![1.0, f64::NAN, 2.0, 3.0],
            vec![0.0, 0.0, 0.0, 1e300],
            vec![-1e300, 0.0, 0.0, 1e300],
            vec![0.0, 0.0, 0.0, 0.0, 1.0],
            vec![1.0, 1.0 + f64::EPSILON, 1.0, 1.0],
        ] {
            let f = fit_window(&v, &c).expect("fit");
            assert!(
                f.bin_probs.iter().all(|p| p.is_finite() && *p >= 0.0),
                "{v:?}: {f:?}"
            );
            assert!(
                (f.bin_probs.iter().sum::<f64>() - 1.0).abs() < 1e-12,
                "{v:?}"
            );
            assert!(
                f.return_levels.iter().all(|z| z.is_finite()),
                "{v:?}: {f:?}"
            );
            if let Some(p) = f.params {
                assert!(p.c.is_finite() && p.loc.is_finite() && p.scale > 0.0);
            }
            if f.n <= 3 {
                assert_eq!(f.method, Method::EmpiricalFallback);
                assert_eq!(f.fallback, Some(GevFitError::TooFewValues { n: f.n }));
            }
        }
    }

    #[test]
    fn empirical_bins_are_shares_of_values() {
        let c = cfg(FitMethod::Empirical, &[0.0, 5.0, 10.0]);
        let v = [0.0, 0.0, 3.0, 5.0, 6.0, 12.0, 12.0, 20.0];
        let f = fit_window(&v, &c).expect("fit");
        assert_eq!(f.method, Method::Empirical);
        assert_eq!(f.bin_probs, vec![0.25, 0.25, 0.125, 0.375]);
        assert!(f.params.is_none());
        assert!(f.return_levels[2] <= 20.0);
    }

    #[test]
    fn gev_bins_sum_to_one_and_levels_increase() {
        let c = cfg(FitMethod::Gev, &[25.0, 50.0, 100.0, 150.0, 200.0, 300.0]);
        let v: Vec<f64> = (0..30)
            .map(|i| 40.0 + 3.0 * f64::from(i) + f64::from(i * i % 7))
            .collect();
        let f = fit_window(&v, &c).expect("fit");
        assert_eq!(f.method, Method::Gev);
        assert_eq!(f.bin_probs.len(), 7);
        assert!((f.bin_probs.iter().sum::<f64>() - 1.0).abs() < 1e-12);
        assert!(f.return_levels[0] < f.return_levels[1] && f.return_levels[1] < f.return_levels[2]);
    }

    #[test]
    fn float_keys_sort_like_total_cmp_and_round_trip() {
        let mut v = vec![
            3.5, -0.0, 0.0, -1e300, 1e300, -2.5, 5e-324, -5e-324, 1.0, -1.0, 42.0, -42.0,
        ];
        let mut keys: Vec<i64> = v.iter().map(|&x| float_key(x)).collect();
        keys.sort_unstable();
        let back: Vec<f64> = keys.iter().map(|&k| key_float(k)).collect();
        v.sort_by(f64::total_cmp);
        assert_eq!(
            back.iter().map(|x| x.to_bits()).collect::<Vec<_>>(),
            v.iter().map(|x| x.to_bits()).collect::<Vec<_>>()
        );
    }

    #[test]
    fn fitter_reuses_its_output() {
        let c = cfg(FitMethod::Gev, &[10.0, 20.0]);
        let mut fitter = Fitter::new();
        let mut out = Fitted::default();
        let a: Vec<f64> = (0..30).map(|i| f64::from(i % 11) * 2.5).collect();
        fitter.fit_into(&a, &c, &mut out).expect("fit");
        let first = out.clone();
        fitter.fit_into(&[3.0; 30], &c, &mut out).expect("fit");
        assert_eq!(out.method, Method::Degenerate);
        fitter.fit_into(&a, &c, &mut out).expect("fit");
        assert_eq!(out, first);
    }
}
