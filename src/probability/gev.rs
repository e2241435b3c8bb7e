//! Generalized extreme value distribution: L-moment (PWM) fit, CDF and quantile.
//!
//! The fit reproduces `lmoments3.distr.gev.lmom_fit` (lmoments3 1.0.8) step for step, because
//! the platform's reference numbers (and xclim's `method="PWM"`) come from it:
//!
//! * sample L-moments `l1`, `l2`, `t3` from the sorted sample with the same unbiased
//!   probability-weighted-moment coefficients and the same summation order as
//!   `lmoments3._samlmusmall` (l1 with numpy's pairwise sum, the others left to right);
//! * the shape from `t3` by Hosking's rational approximations (Hosking, *Fortran routines for use
//!   with the method of L-moments*, routine `PELGEV`): for `t3 > 0` a rational function of
//!   `1 - t3`, with the Gumbel case (`c = 0`) taken when |shape| < 1e-5; for `-0.8 <= t3 <= 0`
//!   another rational function of `t3`, used as is; only for `t3 < -0.8` is it refined by
//!   Newton–Raphson on `(1 - 3^-k) / (1 - 2^-k) = (t3 + 3) / 2` (starting value
//!   `1 - ln(1 + t3) / ln 2` when `t3 <= -0.97`), at most 19 steps, relative tolerance 1e-6;
//! * `scale = l2 k / (Γ(1 + k) (1 - 2^-k))`, `loc = l1 - scale (1 - Γ(1 + k)) / k`.
//!
//! Parameters are in scipy's convention: `c` is Hosking's `k` (= −ξ), so `c > 0` has a finite
//! upper bound `loc + scale / c` and `c < 0` a finite lower bound and a heavy upper tail.
//! [`GevParams::cdf`] and [`GevParams::quantile`] follow `scipy.stats.genextreme` formula for
//! formula (`log1p` / `expm1` forms), so they agree with it to rounding and tend continuously to
//! the Gumbel case as `c → 0`.

/// GEV parameters in `scipy.stats.genextreme` convention.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct GevParams {
    /// Shape; `c = -ξ` (Hosking's `k`). `0` is the Gumbel distribution.
    pub c: f64,
    pub loc: f64,
    /// Always finite and > 0 for parameters returned by [`fit_sorted`].
    pub scale: f64,
}

/// Why an L-moment GEV fit was not possible; the caller falls back to the empirical distribution.
#[derive(Debug, Clone, Copy, PartialEq, thiserror::Error)]
pub enum GevFitError {
    /// lmoments3 needs more than 3 values for a 3-parameter distribution.
    #[error("GEV fit needs at least 4 values, got {n}")]
    TooFewValues { n: usize },
    /// `l2 <= 0` (all values equal) or `|t3| >= 1`: lmoments3's "L-Moments Invalid".
    #[error("invalid sample L-moments (l2 = {l2}, t3 = {t3})")]
    InvalidLMoments { l2: f64, t3: f64 },
    /// The Newton–Raphson refinement for `t3 < -0.8` did not converge (lmoments3 raises).
    #[error("GEV shape iteration did not converge (t3 = {t3})")]
    NotConverged { t3: f64 },
    /// The arithmetic produced a non-finite parameter or a scale <= 0.
    #[error("GEV fit gave unusable parameters (c = {c}, loc = {loc}, scale = {scale})")]
    InvalidParams { c: f64, loc: f64, scale: f64 },
}

/// Sample L-moment ratios `[l1, l2, t3]` of an ascending-sorted sample, computed exactly as
/// `lmoments3.lmom_ratios(data, nmom=3)` does (same coefficients, same summation order), so
/// the fitted parameters agree with lmoments3 to the last few bits. `sorted.len() >= 3`;
/// `t3` is NaN or infinite when `l2 == 0`.
pub fn sample_lmoment_ratios(sorted: &[f64]) -> [f64; 3] {
    let n = sorted.len();
    // numpy's np.sum(x) for a contiguous float64 array.
    let l1 = numpy_pairwise_sum(sorted) / n as f64;
    let nf = n as f64;
    // comb(n, 2) and comb(n, 3) as lmoments3's exact Python ints, then one rounding to float.
    let nn = n as u128;
    let coefl2 = 0.5 / (nn * nn.saturating_sub(1) / 2) as f64;
    let coefl3 = 1.0 / 3.0 / (nn * nn.saturating_sub(1) * nn.saturating_sub(2) / 6) as f64;
    let mut s2 = 0.0;
    let mut s3 = 0.0;
    let mut a = 0.0_f64;
    for &x in sorted {
        // The weights are lmoments3's Python-int expressions (i - (n-1-i) and
        // C(i,2) - 2 i (n-1-i) + C(n-1-i,2)), evaluated in f64: every intermediate is an
        // integer below 2^53 for any n under 10^7, so they are exact, like Python's ints, and
        // each term then has the one rounding of `int * float64` that lmoments3 has. Float
        // weights avoid integer-to-float conversions in the hot loop.
        let b = nf - 1.0 - a;
        s2 += (a - b) * x;
        let w3 = a * (a - 1.0) * 0.5 - 2.0 * a * b + b * (b - 1.0) * 0.5;
        s3 += w3 * x;
        a += 1.0;
    }
    let l2 = coefl2 * s2;
    let t3 = coefl3 * s3 / l2;
    [l1, l2, t3]
}

/// numpy's `pairwise_sum` for float64 (`numpy/_core/src/umath/loops_utils.h.src`): sequential
/// below 8 values, eight interleaved accumulators up to 128, halves beyond. Reproduced only so
/// that `l1` is bit-identical to lmoments3's `np.sum(x) / n`.
fn numpy_pairwise_sum(a: &[f64]) -> f64 {
    let n = a.len();
    if n < 8 {
        let mut res = 0.0;
        for &x in a {
            res += x;
        }
        res
    } else if n <= 128 {
        let mut r = [0.0; 8];
        r.copy_from_slice(&a[..8]);
        let mut i = 8;
        while i < n - (n % 8) {
            for j in 0..8 {
                r[j] += a[i + j];
            }
            i += 8;
        }
        let mut res = ((r[0] + r[1]) + (r[2] + r[3])) + ((r[4] + r[5]) + (r[6] + r[7]));
        while i < n {
            res += a[i];
            i += 1;
        }
        res
    } else {
        let mut n2 = n / 2;
        n2 -= n2 % 8;
        numpy_pairwise_sum(&a[..n2]) + numpy_pairwise_sum(&a[n2..])
    }
}

/// Fits a GEV by L-moments to an ascending-sorted sample, as `lmoments3.distr.gev.lmom_fit`.
pub fn fit_sorted(sorted: &[f64]) -> Result<GevParams, GevFitError> {
    // lmoments3: `if len(data) <= n_min (= numargs + 2 = 3): raise`.
    if sorted.len() <= 3 {
        return Err(GevFitError::TooFewValues { n: sorted.len() });
    }
    let [l1, l2, t3] = sample_lmoment_ratios(sorted);
    let p = fit_lmoments(l1, l2, t3)?;
    if p.c.is_finite() && p.loc.is_finite() && p.scale.is_finite() && p.scale > 0.0 {
        Ok(p)
    } else {
        Err(GevFitError::InvalidParams {
            c: p.c,
            loc: p.loc,
            scale: p.scale,
        })
    }
}

/// `GenextremeGen._lmom_fit` of lmoments3 1.0.8 (Hosking's `PELGEV`), constants verbatim.
/// The parameters are not checked for finiteness here; [`fit_sorted`] does that.
pub fn fit_lmoments(l1: f64, l2: f64, t3: f64) -> Result<GevParams, GevFitError> {
    const SMALL: f64 = 1e-5;
    const EPS: f64 = 1e-6;
    const MAXIT: usize = 20;
    const EU: f64 = 0.57721566;
    const A0: f64 = 0.28377530;
    const A1: f64 = -1.21096399;
    const A2: f64 = -2.50728214;
    const A3: f64 = -1.13455566;
    const A4: f64 = -0.07138022;
    const B1: f64 = 2.06189696;
    const B2: f64 = 1.31912239;
    const B3: f64 = 0.25077104;
    const C1: f64 = 1.59921491;
    const C2: f64 = -0.48832213;
    const C3: f64 = 0.01573152;
    const D1: f64 = -0.64363929;
    const D2: f64 = 0.08985247;
    let dl2 = std::f64::consts::LN_2;
    let dl3 = 3.0_f64.ln();

    // Written to reject NaN too, which lmoments3 would let through to a NaN result.
    let valid = l2 > 0.0 && t3.abs() < 1.0;
    if !valid {
        return Err(GevFitError::InvalidLMoments { l2, t3 });
    }
    let params = |g: f64| {
        let gam = ln_gamma(1.0 + g).exp();
        let scale = l2 * g / (gam * (1.0 - 2.0_f64.powf(-g)));
        let loc = l1 - scale * (1.0 - gam) / g;
        GevParams { c: g, loc, scale }
    };
    if t3 <= 0.0 {
        let mut g = (A0 + t3 * (A1 + t3 * (A2 + t3 * (A3 + t3 * A4))))
            / (1.0 + t3 * (B1 + t3 * (B2 + t3 * B3)));
        if t3 >= -0.8 {
            return Ok(params(g));
        } else if t3 <= -0.97 {
            g = 1.0 - (1.0 + t3).ln() / dl2;
        }
        let t0 = (t3 + 3.0) * 0.5;
        // Python: `for _IT in range(1, maxit)`, i.e. 19 steps.
        for _ in 1..MAXIT {
            let x2 = 2.0_f64.powf(-g);
            let x3 = 3.0_f64.powf(-g);
            let xx2 = 1.0 - x2;
            let xx3 = 1.0 - x3;
            let t = xx3 / xx2;
            let deriv = (xx2 * x3 * dl3 - xx3 * x2 * dl2) / (xx2 * xx2);
            let gold = g;
            g -= (t - t0) / deriv;
            if (g - gold).abs() <= EPS * g {
                return Ok(params(g));
            }
        }
        Err(GevFitError::NotConverged { t3 })
    } else {
        let z = 1.0 - t3;
        let g = (-1.0 + z * (C1 + z * (C2 + z * C3))) / (1.0 + z * (D1 + z * D2));
        if g.abs() < SMALL {
            let scale = l2 / dl2;
            let loc = l1 - EU * scale;
            Ok(GevParams { c: 0.0, loc, scale })
        } else {
            Ok(params(g))
        }
    }
}

impl GevParams {
    /// Support `(lower, upper)`: `(loc + scale/c, +∞)` for `c < 0`, `(-∞, loc + scale/c)` for
    /// `c > 0`, the whole line for the Gumbel case.
    pub fn support(&self) -> (f64, f64) {
        if self.c > 0.0 {
            (f64::NEG_INFINITY, self.loc + self.scale / self.c)
        } else if self.c < 0.0 {
            (self.loc + self.scale / self.c, f64::INFINITY)
        } else {
            (f64::NEG_INFINITY, f64::INFINITY)
        }
    }

    /// `scipy.stats.genextreme.cdf(x, c, loc, scale)`: `exp(-exp(log1p(-c z) / c))` with
    /// `z = (x - loc) / scale`, `exp(-exp(-z))` for `c == 0`; 0 at or below the lower bound
    /// (`c < 0`), 1 at or above the upper bound (`c > 0`). NaN only for a NaN `x`.
    pub fn cdf(&self, x: f64) -> f64 {
        let z = (x - self.loc) / self.scale;
        let c = self.c;
        if c == 0.0 {
            return (-(-z).exp()).exp();
        }
        let cz = -c * z;
        if cz <= -1.0 {
            // Outside the support (or on its finite bound): log1p would be -inf or NaN.
            return if c > 0.0 { 1.0 } else { 0.0 };
        }
        (-(cz.ln_1p() / c).exp()).exp()
    }

    /// `scipy.stats.genextreme.ppf(p, c, loc, scale)`: `y = -ln(-ln p)`,
    /// `y ← -expm1(-c y) / c` unless `c == 0`, result `y * scale + loc`. For `p` in (0, 1)
    /// the result is finite; `p = 0` / `p = 1` give the support bounds.
    pub fn quantile(&self, p: f64) -> f64 {
        self.quantile_at_gumbel(gumbel_variate(p))
    }

    /// The quantile whose reduced Gumbel variate `-ln(-ln p)` is `y` ([`gumbel_variate`]):
    /// lets a caller that needs the same probabilities for many fits (the return periods)
    /// compute the two logarithms once.
    pub fn quantile_at_gumbel(&self, y: f64) -> f64 {
        let mut y = y;
        if self.c != 0.0 && !y.is_nan() {
            y = -(-self.c * y).exp_m1() / self.c;
        }
        y * self.scale + self.loc
    }
}

/// The reduced Gumbel variate `-ln(-ln p)` of a probability, as scipy's `genextreme._ppf`
/// computes it.
pub fn gumbel_variate(p: f64) -> f64 {
    -(-p.ln()).ln()
}

/// `ln Γ(x)` for `x > 0` (Lanczos, g = 7, 9 terms; relative error of Γ about 1e-15, far
/// below the 1e-6 the fit has to match). The fit only ever needs `Γ(1 + k)` with `k > -1`,
/// so positive arguments are all that is needed; below 0.5 the reflection formula keeps the
/// accuracy.
pub fn ln_gamma(x: f64) -> f64 {
    const G: f64 = 7.0;
    const P: [f64; 9] = [
        0.999_999_999_999_809_9,
        676.520_368_121_885_1,
        -1_259.139_216_722_402_8,
        771.323_428_777_653_1,
        -176.615_029_162_140_6,
        12.507_343_278_686_905,
        -0.138_571_095_265_720_12,
        9.984_369_578_019_572e-6,
        1.505_632_735_149_311_6e-7,
    ];
    if x < 0.5 {
        // Γ(x) Γ(1 - x) = π / sin(πx); for 0 < x < 0.5 the sine is positive.
        let pi = std::f64::consts::PI;
        return (pi / (pi * x).sin()).ln() - ln_gamma(1.0 - x);
    }
    let x = x - 1.0;
    let mut a = P[0];
    for (i, &p) in P.iter().enumerate().skip(1) {
        a += p / (x + i as f64);
    }
    let t = x + G + 0.5;
    0.5 * (2.0 * std::f64::consts::PI).ln() + (x + 0.5) * t.ln() - t + a.ln()
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs().max(1e-300)
    }

    #[test]
    fn ln_gamma_known_values() {
        let sqrt_pi = std::f64::consts::PI.sqrt();
        assert!(close(ln_gamma(0.5).exp(), sqrt_pi, 1e-14));
        assert!(close(ln_gamma(1.5).exp(), sqrt_pi / 2.0, 1e-14));
        assert!(close(ln_gamma(5.0).exp(), 24.0, 1e-14));
        assert!(ln_gamma(1.0).abs() < 1e-14);
        assert!(ln_gamma(2.0).abs() < 1e-14);
        // Γ(0.1) = 9.513507698668731836...
        assert!(close(ln_gamma(0.1).exp(), 9.513_507_698_668_732, 1e-14));
        // Γ(20) = 19! = 121645100408832000
        assert!(close(
            ln_gamma(20.0),
            121_645_100_408_832_000.0_f64.ln(),
            1e-14
        ));
    }

    #[test]
    fn numpy_sum_orders() {
        let v: Vec<f64> = (0..300).map(|i| 0.1 * i as f64).collect();
        for n in [0, 1, 7, 8, 9, 16, 30, 128, 129, 300] {
            let s = numpy_pairwise_sum(&v[..n]);
            let exact: f64 = (0..n).map(|i| 0.1 * i as f64).sum();
            assert!((s - exact).abs() < 1e-9, "n={n}");
        }
    }

    #[test]
    fn cdf_and_quantile_invert_each_other() {
        for c in [-0.5, -0.3, -1e-9, 0.0, 1e-9, 0.2, 0.6] {
            let p = GevParams {
                c,
                loc: 10.0,
                scale: 3.0,
            };
            for q in [0.01, 0.1, 0.5, 0.9, 0.98, 0.99] {
                let x = p.quantile(q);
                assert!(x.is_finite());
                assert!(close(p.cdf(x), q, 1e-12), "c={c} q={q}");
            }
        }
    }

    #[test]
    fn gumbel_limit_is_continuous() {
        let g = GevParams {
            c: 0.0,
            loc: 1.0,
            scale: 2.0,
        };
        for c in [1e-10, -1e-10] {
            let p = GevParams { c, ..g };
            for x in [-3.0, 0.0, 1.0, 5.0, 20.0] {
                assert!((p.cdf(x) - g.cdf(x)).abs() < 1e-8);
            }
            for q in [0.9, 0.98, 0.99] {
                assert!(close(p.quantile(q), g.quantile(q), 1e-8));
            }
        }
    }

    #[test]
    fn support_bounds() {
        let light = GevParams {
            c: 0.5,
            loc: 0.0,
            scale: 1.0,
        };
        assert_eq!(light.support(), (f64::NEG_INFINITY, 2.0));
        assert_eq!(light.cdf(2.0), 1.0);
        assert_eq!(light.cdf(100.0), 1.0);
        assert!(light.cdf(1.99) < 1.0);
        assert_eq!(light.cdf(f64::NEG_INFINITY), 0.0);
        let heavy = GevParams {
            c: -0.5,
            loc: 0.0,
            scale: 1.0,
        };
        assert_eq!(heavy.support(), (-2.0, f64::INFINITY));
        assert_eq!(heavy.cdf(-2.0), 0.0);
        assert_eq!(heavy.cdf(-100.0), 0.0);
        assert!(heavy.cdf(-1.5) > 0.0);
        assert_eq!(heavy.cdf(f64::INFINITY), 1.0);
    }

    #[test]
    fn fit_rejects_what_lmoments3_rejects() {
        assert_eq!(
            fit_sorted(&[1.0, 2.0, 3.0]),
            Err(GevFitError::TooFewValues { n: 3 })
        );
        assert!(matches!(
            fit_sorted(&[2.0; 10]),
            Err(GevFitError::InvalidLMoments { .. })
        ));
        assert!(matches!(
            fit_lmoments(1.0, 1.0, 1.0),
            Err(GevFitError::InvalidLMoments { .. })
        ));
        assert!(matches!(
            fit_lmoments(1.0, f64::NAN, 0.1),
            Err(GevFitError::InvalidLMoments { .. })
        ));
    }

    #[test]
    fn fit_covers_every_branch() {
        // Gumbel branch, Hosking rational branches, Newton branch, Newton with log start.
        for t3 in [0.1699, 0.5, 0.9, -0.2, -0.8, -0.85, -0.97, -0.99] {
            let p = fit_lmoments(5.0, 2.0, t3).expect("fit");
            assert!(
                p.c.is_finite() && p.loc.is_finite() && p.scale > 0.0,
                "t3={t3}"
            );
        }
        let gumbel = fit_lmoments(5.0, 2.0, 0.169_925).expect("fit");
        assert_eq!(gumbel.c, 0.0);
    }
}
