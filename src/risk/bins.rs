//! The representative intensity of each probability bin, the value the
//! vulnerability curve is evaluated at (the bins become "events" whose
//! frequency is the bin's probability, as in CLIMADA or physrisk).
//!
//! With edges `e_0 < … < e_{m-1}` the bins are `(-∞, e_0], (e_0, e_1], …,
//! (e_{m-1}, +∞)` (src/probability):
//!
//! * an inner bin `(a, b]`: its midpoint `(a + b) / 2`;
//! * the open bottom bin `(-∞, e_0]`: its upper edge `e_0`. For the day-count
//!   hazards (`e_0 = 0`) that bin is exactly "no such day"; for the others it
//!   is the "nothing happens" bin, whose damage the curves put at zero anyway,
//!   and the upper edge never under-states it;
//! * the open top bin `(e_{m-1}, +∞)`: where a GEV was fitted (method `gev`),
//!   the GEV's conditional mean `E[X | X > e_{m-1}]` ([`gev_mean_above`]);
//!   otherwise (empirical fits, or a GEV with shape `c ≤ −1`, whose mean is
//!   infinite, or whose upper bound is at or below the edge) the edge plus
//!   half the width of the bin below it, the midpoint the bin would have if it
//!   were as wide as its neighbour;
//! * a `degenerate` window (every value equal to `v`, all mass in `v`'s bin):
//!   that bin's value is `v` itself (its return levels are all `v`).

use crate::probability::GevParams;
use crate::probability::gev::ln_gamma;

/// Euler–Mascheroni constant.
const EULER_GAMMA: f64 = 0.577_215_664_901_532_9;

/// Writes one representative intensity per bin (`edges.len() + 1` values).
/// `method` is `probability_results.method`; `gev` its parameters when it is
/// `gev`; `degenerate_value` the window's value when it is `degenerate`.
pub fn representative_values(
    edges: &[f64],
    method: &str,
    gev: Option<GevParams>,
    degenerate_value: f64,
    out: &mut Vec<f64>,
) {
    out.clear();
    let m = edges.len();
    if m == 0 {
        out.push(degenerate_value);
        return;
    }
    out.push(edges[0]);
    for w in edges.windows(2) {
        out.push(0.5 * (w[0] + w[1]));
    }
    let top = edges[m - 1];
    let half_below = if m >= 2 {
        0.5 * (edges[m - 1] - edges[m - 2])
    } else {
        0.0
    };
    let fallback = top + half_below;
    let top_value = match (method, gev) {
        ("gev", Some(p)) => gev_mean_above(p, top).unwrap_or(fallback),
        _ => fallback,
    };
    out.push(top_value);
    if method == "degenerate" {
        let bin = edges.partition_point(|&e| e < degenerate_value);
        out[bin] = degenerate_value;
    }
}

/// `E[X | X > u]` of a GEV in scipy's convention (`c = −ξ`), or `None` when
/// it is not finite (`c ≤ −1`) or there is no mass above `u`.
///
/// With `t = −ln F(x)` the quantile is `x(t) = loc + scale (1 − t^c) / c`
/// (`loc − scale ln t` for `c = 0`) and `P(X > u) = 1 − e^{−t_u}`, so
/// `∫_u^∞ x dF = ∫_0^{t_u} x(t) e^{−t} dt`, which is, with the lower
/// incomplete gamma function `γ`:
///
/// * `c ≠ 0`: `E = loc + (scale / c) (1 − γ(1 + c, t_u) / (1 − e^{−t_u}))`;
/// * `c = 0`: `E = loc + scale (γ_E + e^{−t_u} ln t_u + E₁(t_u)) / (1 − e^{−t_u})`
///   (`∫_0^a ln t e^{−t} dt = −γ_E − e^{−a} ln a − E₁(a)`).
///
/// Below the support's lower bound (`c < 0`) `t_u = ∞` and it is the
/// unconditional mean `loc + scale (1 − Γ(1 + c)) / c`.
pub fn gev_mean_above(p: GevParams, u: f64) -> Option<f64> {
    let GevParams { c, loc, scale } = p;
    if c <= -1.0 || scale.is_nan() || scale <= 0.0 || !u.is_finite() {
        return None;
    }
    let z = (u - loc) / scale;
    let mean = if c == 0.0 {
        let t = (-z).exp();
        if t == 0.0 {
            return None;
        }
        if t.is_infinite() {
            loc + scale * EULER_GAMMA
        } else {
            let tail = -(-t).exp_m1();
            loc + scale * (EULER_GAMMA + (-t).exp() * t.ln() + exp_integral_e1(t)) / tail
        }
    } else {
        let base = 1.0 - c * z;
        if base <= 0.0 {
            if c > 0.0 {
                return None; // u at or above the upper bound: no mass above it
            }
            loc + scale * (1.0 - ln_gamma(1.0 + c).exp()) / c
        } else {
            let t = (base.ln() / c).exp();
            if t == 0.0 {
                return None;
            }
            if t.is_infinite() {
                loc + scale * (1.0 - ln_gamma(1.0 + c).exp()) / c
            } else {
                let tail = -(-t).exp_m1();
                loc + scale / c * (1.0 - lower_gamma(1.0 + c, t) / tail)
            }
        }
    };
    (mean.is_finite() && mean > u).then_some(mean)
}

/// The lower incomplete gamma function `γ(s, x) = ∫_0^x t^{s−1} e^{−t} dt`
/// for `s > 0`, `x ≥ 0`: its series below `x = s + 1`, `Γ(s) − Γ(s, x)` with
/// the continued fraction of `Γ(s, x)` (modified Lentz) above.
pub fn lower_gamma(s: f64, x: f64) -> f64 {
    if x <= 0.0 {
        return 0.0;
    }
    let ln_pre = s * x.ln() - x;
    if x < s + 1.0 {
        // γ(s, x) = x^s e^{−x} Σ_n x^n / (s (s+1) … (s+n))
        let mut term = 1.0 / s;
        let mut sum = term;
        let mut a = s;
        for _ in 0..500 {
            a += 1.0;
            term *= x / a;
            sum += term;
            if term.abs() < sum.abs() * 1e-17 {
                break;
            }
        }
        sum * ln_pre.exp()
    } else {
        // Γ(s, x) = x^s e^{−x} / (x + 1 − s − 1·(1−s)/(x + 3 − s − …))
        let tiny = 1e-300;
        let mut b = x + 1.0 - s;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..500 {
            let an = -(i as f64) * (i as f64 - s);
            b += 2.0;
            d = an * d + b;
            if d.abs() < tiny {
                d = tiny;
            }
            c = b + an / c;
            if c.abs() < tiny {
                c = tiny;
            }
            d = 1.0 / d;
            let delta = d * c;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        ln_gamma(s).exp() - ln_pre.exp() * h
    }
}

/// The exponential integral `E₁(x) = ∫_x^∞ e^{−t} / t dt` for `x > 0`: its
/// power series up to 1, the continued fraction (modified Lentz) beyond.
pub fn exp_integral_e1(x: f64) -> f64 {
    if x <= 1.0 {
        // E₁(x) = −γ − ln x − Σ_{k≥1} (−x)^k / (k · k!)
        let mut sum = 0.0;
        let mut fact = 1.0;
        for k in 1..200 {
            let kf = k as f64;
            fact *= -x / kf;
            let term = fact / kf;
            sum += term;
            if term.abs() < sum.abs().max(1e-300) * 1e-17 {
                break;
            }
        }
        -EULER_GAMMA - x.ln() - sum
    } else {
        let tiny = 1e-300;
        let mut b = x + 1.0;
        let mut c = 1.0 / tiny;
        let mut d = 1.0 / b;
        let mut h = d;
        for i in 1..500 {
            let an = -((i * i) as f64);
            b += 2.0;
            d = 1.0 / (an * d + b);
            c = b + an / c;
            let delta = c * d;
            h *= delta;
            if (delta - 1.0).abs() < 1e-16 {
                break;
            }
        }
        h * (-x).exp()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn close(a: f64, b: f64, rel: f64) -> bool {
        (a - b).abs() <= rel * b.abs()
    }

    #[test]
    fn special_functions_known_values() {
        // γ(1, x) = 1 − e^{−x}; γ(0.5, x) = √π erf(√x); E₁(1) = 0.21938393439552…
        assert!(close(lower_gamma(1.0, 0.3), 1.0 - (-0.3f64).exp(), 1e-14));
        assert!(close(lower_gamma(1.0, 7.0), 1.0 - (-7.0f64).exp(), 1e-14));
        assert!(close(
            lower_gamma(2.0, 5.0),
            1.0 - 6.0 * (-5.0f64).exp(),
            1e-14
        ));
        assert!(close(exp_integral_e1(1.0), 0.219_383_934_395_520_3, 1e-14));
        assert!(close(exp_integral_e1(0.1), 1.822_923_958_419_390_7, 1e-14));
        assert!(close(
            exp_integral_e1(5.0),
            0.001_148_295_591_275_325_8,
            1e-13
        ));
    }

    #[test]
    fn gev_conditional_mean_matches_scipy() {
        // scipy 1.17.1: genextreme(c, loc=37.5, scale=35.8).expect(lambda x: x, lb=u,
        // conditional=True), numerical quadrature (tolerance about 1e-10).
        for (c, u, scipy) in [
            (0.2, 30.0, 69.998_527_603_182_71),
            (-0.17, 600.0, 758.363_970_768_934_1),
            (0.0, 90.0, 127.890_004_607_972_36),
            (-0.5, 40.0, 139.090_392_017_167_23),
            (0.02, 300.0, 329.953_650_000_419_77),
        ] {
            let p = GevParams {
                c,
                loc: 37.5,
                scale: 35.8,
            };
            let closed = gev_mean_above(p, u).unwrap();
            assert!(
                close(closed, scipy, 1e-9),
                "c={c} u={u}: {closed} vs {scipy}"
            );
        }
    }

    #[test]
    fn unusable_tails_fall_back() {
        let heavy = GevParams {
            c: -1.2,
            loc: 10.0,
            scale: 5.0,
        };
        assert_eq!(gev_mean_above(heavy, 50.0), None);
        let bounded = GevParams {
            c: 0.5,
            loc: 10.0,
            scale: 5.0,
        };
        // upper bound 20: nothing above 25
        assert_eq!(gev_mean_above(bounded, 25.0), None);
        let mut out = Vec::new();
        representative_values(&[0.0, 5.0, 10.0], "gev", Some(heavy), 0.0, &mut out);
        assert_eq!(out, [0.0, 2.5, 7.5, 12.5]);
        representative_values(&[0.0, 5.0, 10.0], "empirical", None, 0.0, &mut out);
        assert_eq!(out, [0.0, 2.5, 7.5, 12.5]);
        representative_values(&[0.0, 5.0, 10.0], "degenerate", None, 7.0, &mut out);
        assert_eq!(out, [0.0, 2.5, 7.0, 12.5]);
    }
}
