//! Empirical distribution of a window, for count hazards (days per year).
//!
//! Count indices are small integers with many ties and often a mass at zero; a continuous
//! parametric fit would put probability on impossible values, so the window's own values are
//! the distribution.
//!
//! * CDF: `F(x) = #{values <= x} / n` — a right-continuous step function, so a bin
//!   `(a, b]` gets exactly the share of values in it.
//! * Quantile (return levels): numpy's default `np.quantile(values, p)` ("linear", Hyndman &
//!   Fan type 7): `h = (n - 1) p`, interpolated linearly between the order statistics
//!   `x[floor h]` and `x[floor h + 1]`, with numpy's two-sided lerp so the numbers are
//!   bit-comparable with the Python reference. It never leaves `[min, max]` of the window: an
//!   empirical 100-year level from 30 years is at most the largest value seen, which is the
//!   honest statement for a count.

/// `#{v <= x} / n` over an ascending-sorted, non-empty sample.
pub fn cdf_sorted(sorted: &[f64], x: f64) -> f64 {
    let count = sorted.partition_point(|&v| v <= x);
    count as f64 / sorted.len() as f64
}

/// numpy's `quantile(sorted, p, method="linear")` for `p` in [0, 1] over an ascending-sorted,
/// non-empty sample.
pub fn quantile_sorted(sorted: &[f64], p: f64) -> f64 {
    let n = sorted.len();
    let last = n.saturating_sub(1);
    let h = last as f64 * p;
    let lo_f = h.floor();
    // `as usize` saturates (NaN -> 0), and both indices are clipped as numpy does.
    let lo = (lo_f as usize).min(last);
    let hi = (lo + 1).min(last);
    let t = h - lo_f;
    let a = sorted[lo];
    let b = sorted[hi];
    let diff = b - a;
    // numpy `_lerp`: a + d t, but b - d (1 - t) when t >= 0.5 (exact at t = 1, monotone).
    if t >= 0.5 {
        b - diff * (1.0 - t)
    } else {
        a + diff * t
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn cdf_counts_values_at_or_below() {
        let v = [0.0, 0.0, 1.0, 3.0, 3.0, 7.0];
        assert_eq!(cdf_sorted(&v, -1.0), 0.0);
        assert_eq!(cdf_sorted(&v, 0.0), 2.0 / 6.0);
        assert_eq!(cdf_sorted(&v, 2.9), 3.0 / 6.0);
        assert_eq!(cdf_sorted(&v, 3.0), 5.0 / 6.0);
        assert_eq!(cdf_sorted(&v, 7.0), 1.0);
        assert_eq!(cdf_sorted(&v, f64::INFINITY), 1.0);
    }

    #[test]
    fn quantile_is_numpy_linear() {
        let v = [1.0, 2.0, 4.0, 8.0];
        // np.quantile([1,2,4,8], [0, .5, .9, 1]) = [1, 3, 6.8, 8]
        assert_eq!(quantile_sorted(&v, 0.0), 1.0);
        assert_eq!(quantile_sorted(&v, 0.5), 3.0);
        assert!((quantile_sorted(&v, 0.9) - 6.8).abs() < 1e-12);
        assert_eq!(quantile_sorted(&v, 1.0), 8.0);
        assert_eq!(quantile_sorted(&[5.0], 0.99), 5.0);
    }
}
