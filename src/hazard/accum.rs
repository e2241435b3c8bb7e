//! Per-point running state for one hazard, fed one day at a time (time-major), so memory is
//! proportional to the number of points and independent of the number of years.

use super::{CompiledIndex, Op};

/// A daily value as stored in the file. Converting to f64 is exact for f32, so comparing in f64
/// against a threshold already rounded to f32 gives exactly numpy's float32 comparison.
pub trait Sample: Copy + Send + Sync + 'static {
    fn to_f64(self) -> f64;
}

impl Sample for f32 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        f64::from(self)
    }
}

impl Sample for f64 {
    #[inline(always)]
    fn to_f64(self) -> f64 {
        self
    }
}

/// Running state of one compiled index over a block of points.
///
/// Feed every day of the series in order with [`push_day`](Self::push_day) and close each
/// calendar year with [`finish_year`](Self::finish_year). The n-day window survives the year
/// boundary (a window is labelled by its last day), everything else restarts each year.
#[derive(Debug, Clone)]
pub struct Accumulator {
    index: CompiledIndex,
    points: usize,
    /// Any missing day this year (xclim `missing="any"`).
    missing: Vec<bool>,
    /// Day count (`CountDays`) or current run length (`MaxSpell`).
    count: Vec<u32>,
    /// Longest run (`MaxSpell`) or largest window sum in data units (`MaxNDayAmount`).
    best: Vec<f64>,
    /// Last `window` days, one row per day (`MaxNDayAmount` with window > 1).
    ring: Vec<f64>,
    sums: Vec<f64>,
    slot: usize,
    /// Days pushed since the start of the series, saturating at the window length.
    seen: usize,
    /// Days pushed since the last `finish_year`.
    days: u32,
}

impl Accumulator {
    pub fn new(index: CompiledIndex, points: usize) -> Self {
        let (ring, sums) = match index {
            CompiledIndex::MaxNDayAmount { window, .. } if window > 1 => {
                (vec![f64::NAN; window * points], vec![0.0; points])
            }
            _ => (Vec::new(), Vec::new()),
        };
        let mut acc = Accumulator {
            index,
            points,
            missing: vec![false; points],
            count: vec![0; points],
            best: vec![0.0; points],
            ring,
            sums,
            slot: 0,
            seen: 0,
            days: 0,
        };
        acc.reset_year();
        acc
    }

    pub fn index(&self) -> CompiledIndex {
        self.index
    }

    pub fn points(&self) -> usize {
        self.points
    }

    /// Days pushed since the last year boundary.
    pub fn days(&self) -> u32 {
        self.days
    }

    /// Adds one day: `values[i]` is point `i`'s value, NaN when missing.
    ///
    /// # Panics
    /// If `values.len()` differs from the point count given to [`Accumulator::new`] (a caller bug,
    /// never a property of the input data).
    pub fn push_day<T: Sample>(&mut self, values: &[T]) {
        assert_eq!(values.len(), self.points, "push_day: one value per point");
        self.days += 1;
        match self.index {
            CompiledIndex::CountDays { op, threshold: t } => match op {
                Op::Gt => self.count_days(values, |x| x > t),
                Op::Ge => self.count_days(values, |x| x >= t),
                Op::Lt => self.count_days(values, |x| x < t),
                Op::Le => self.count_days(values, |x| x <= t),
            },
            CompiledIndex::MaxSpell { op, threshold: t } => match op {
                Op::Gt => self.spell_days(values, |x| x > t),
                Op::Ge => self.spell_days(values, |x| x >= t),
                Op::Lt => self.spell_days(values, |x| x < t),
                Op::Le => self.spell_days(values, |x| x <= t),
            },
            CompiledIndex::MaxNDayAmount { .. } => self.amount_day(values),
        }
    }

    // One loop per operator (the closure is inlined), with the missing-day check fused in: this
    // is the hot path of the whole batch.
    #[inline(always)]
    fn count_days<T: Sample>(&mut self, values: &[T], holds: impl Fn(f64) -> bool) {
        for ((c, m), v) in self.count.iter_mut().zip(&mut self.missing).zip(values) {
            let x = v.to_f64();
            *m |= x.is_nan();
            *c += u32::from(holds(x));
        }
    }

    #[inline(always)]
    fn spell_days<T: Sample>(&mut self, values: &[T], holds: impl Fn(f64) -> bool) {
        let state = self
            .count
            .iter_mut()
            .zip(&mut self.best)
            .zip(&mut self.missing);
        for (((run, best), m), v) in state.zip(values) {
            let x = v.to_f64();
            *m |= x.is_nan();
            *run = if holds(x) { *run + 1 } else { 0 };
            *best = best.max(f64::from(*run));
        }
    }

    fn amount_day<T: Sample>(&mut self, values: &[T]) {
        for (m, v) in self.missing.iter_mut().zip(values) {
            *m |= v.to_f64().is_nan();
        }
        match self.index {
            CompiledIndex::MaxNDayAmount { window: 1, .. } => {
                for (best, v) in self.best.iter_mut().zip(values) {
                    let x = v.to_f64();
                    // NaN never compares greater: a missing day is no candidate.
                    if x > *best {
                        *best = x;
                    }
                }
            }
            CompiledIndex::CountDays { .. } | CompiledIndex::MaxSpell { .. } => {}
            CompiledIndex::MaxNDayAmount { window, .. } => {
                let n = self.points;
                let row = &mut self.ring[self.slot * n..(self.slot + 1) * n];
                for (r, v) in row.iter_mut().zip(values) {
                    *r = v.to_f64();
                }
                self.slot = (self.slot + 1) % window;
                self.seen = (self.seen + 1).min(window);
                if self.seen < window {
                    return; // the first window-1 days of the series end no window
                }
                // Sum the window oldest day first; a missing day makes the sum NaN (skipna=False).
                self.sums.fill(0.0);
                for k in 0..window {
                    let s = (self.slot + k) % window;
                    for (sum, r) in self.sums.iter_mut().zip(&self.ring[s * n..(s + 1) * n]) {
                        *sum += *r;
                    }
                }
                for (best, &s) in self.best.iter_mut().zip(&self.sums) {
                    if s > *best {
                        *best = s;
                    }
                }
            }
        }
    }

    /// Closes the current calendar year: calls `emit(point, value)` for every point that has a
    /// value, then starts a new year. `complete` says whether the year had every calendar day;
    /// an incomplete year, or a point with any missing day, gets no value (xclim
    /// `missing="any"`).
    pub fn finish_year(&mut self, complete: bool, mut emit: impl FnMut(usize, f64)) {
        if complete {
            for i in 0..self.points {
                if self.missing[i] {
                    continue;
                }
                let value = match self.index {
                    CompiledIndex::CountDays { .. } => f64::from(self.count[i]),
                    CompiledIndex::MaxSpell { .. } => self.best[i],
                    CompiledIndex::MaxNDayAmount { to_mm, .. } => {
                        if !self.best[i].is_finite() {
                            continue; // no complete window ended this year
                        }
                        self.best[i] * to_mm
                    }
                };
                emit(i, value);
            }
        }
        self.reset_year();
    }

    /// Forgets the current year's state but keeps the n-day window (for lead-in days that only
    /// feed windows ending in the first wanted year).
    pub fn reset_year(&mut self) {
        self.days = 0;
        self.missing.fill(false);
        self.count.fill(0);
        let start = match self.index {
            CompiledIndex::MaxNDayAmount { .. } => f64::NEG_INFINITY,
            _ => 0.0,
        };
        self.best.fill(start);
    }
}

#[cfg(test)]
mod tests {
    use super::super::{Op, Precision, Unit, default_hazards};
    use super::*;

    fn run_years<T: Sample>(acc: &mut Accumulator, years: &[Vec<Vec<T>>]) -> Vec<Vec<Option<f64>>> {
        years
            .iter()
            .map(|days| {
                for d in days {
                    acc.push_day(d);
                }
                let mut out = vec![None; acc.points()];
                acc.finish_year(true, |i, v| out[i] = Some(v));
                out
            })
            .collect()
    }

    fn series(days: &[f64]) -> Vec<Vec<f64>> {
        days.iter().map(|&d| vec![d]).collect()
    }

    #[test]
    fn counts_at_threshold_in_kelvin_float32() {
        let heat = default_hazards()[0]
            .compile(Unit::Kelvin, Precision::F32)
            .unwrap();
        let mut acc = Accumulator::new(heat, 3);
        let at = 306.15_f32; // 33 degC stored as float32 Kelvin: counted (>=)
        let below = f32::from_bits(at.to_bits() - 1);
        acc.push_day(&[at, below, 310.0]);
        acc.push_day(&[at, below, 250.0]);
        let mut out = vec![None; 3];
        acc.finish_year(true, |i, v| out[i] = Some(v));
        assert_eq!(out, [Some(2.0), Some(0.0), Some(1.0)]);
    }

    #[test]
    fn counts_at_threshold_in_celsius_float32_and_float64() {
        let cold = default_hazards()[1]
            .compile(Unit::Celsius, Precision::F32)
            .unwrap();
        let mut acc = Accumulator::new(cold, 2);
        acc.push_day(&[-12.0_f32, f32::from_bits((-12.0_f32).to_bits() - 1)]);
        let mut out = vec![None; 2];
        acc.finish_year(true, |i, v| out[i] = Some(v));
        // -12 is counted (<=); the next float32 towards zero (-11.999999) is not.
        assert_eq!(out, [Some(1.0), Some(0.0)]);

        // In Kelvin float32, -12 degC is f32(261.15); a value a hair above in f64 is not.
        let cold_k = default_hazards()[1]
            .compile(Unit::Kelvin, Precision::F64)
            .unwrap();
        let mut acc = Accumulator::new(cold_k, 2);
        acc.push_day(&[261.15_f64, 261.150_000_001]);
        let mut out = vec![None; 2];
        acc.finish_year(true, |i, v| out[i] = Some(v));
        assert_eq!(out, [Some(1.0), Some(0.0)]);
    }

    #[test]
    fn dry_threshold_in_flux_units_is_float32_rounded() {
        let dry = default_hazards()[2]
            .compile(Unit::KgPerM2PerS, Precision::F32)
            .unwrap();
        let t = (1.0 / 86_400.0) as f32;
        let mut acc = Accumulator::new(dry, 2);
        // exactly 1 mm/day is not dry (<); one float32 ulp below is.
        for _ in 0..3 {
            acc.push_day(&[t, f32::from_bits(t.to_bits() - 1)]);
        }
        let mut out = vec![None; 2];
        acc.finish_year(true, |i, v| out[i] = Some(v));
        assert_eq!(out, [Some(0.0), Some(3.0)]);
    }

    #[test]
    fn dry_spell_is_cut_at_new_year() {
        let dry = default_hazards()[2]
            .compile(Unit::MmPerDay, Precision::F64)
            .unwrap();
        let mut acc = Accumulator::new(dry, 1);
        // year 1: wet, then 3 dry days at the end; year 2: 4 dry days, wet, 2 dry.
        let y1 = series(&[5.0, 0.0, 0.5, 0.99]);
        let y2 = series(&[0.0, 0.0, 0.0, 0.0, 1.0, 0.0, 0.0]);
        let out = run_years(&mut acc, &[y1, y2]);
        assert_eq!(out, [vec![Some(3.0)], vec![Some(4.0)]]);
    }

    #[test]
    fn rx1day_in_mm_from_flux() {
        let rx1 = default_hazards()[3]
            .compile(Unit::KgPerM2PerS, Precision::F64)
            .unwrap();
        let mut acc = Accumulator::new(rx1, 1);
        let out = run_years(&mut acc, &[series(&[1e-4, 5e-4, 2e-4])]);
        assert_eq!(out, [vec![Some(5e-4 * 86_400.0)]]);
    }

    #[test]
    fn rx5day_window_across_new_year_belongs_to_new_year() {
        let rx5 = default_hazards()[4]
            .compile(Unit::MmPerDay, Precision::F64)
            .unwrap();
        let mut acc = Accumulator::new(rx5, 1);
        // Year 1 (8 days): big rain on its last 2 days; year 2 (8 days): rain on its first 2.
        let y1 = series(&[1.0, 1.0, 1.0, 1.0, 1.0, 1.0, 50.0, 50.0]);
        let y2 = series(&[30.0, 30.0, 0.0, 0.0, 0.0, 0.0, 0.0, 0.0]);
        let out = run_years(&mut acc, &[y1, y2]);
        // Year 1: best window ends on its last day: 1+1+1+50+50. Year 2: the window ending on
        // its 2nd day spans New Year: 1+50+50+30+30.
        assert_eq!(out, [vec![Some(103.0)], vec![Some(161.0)]]);
    }

    #[test]
    fn rx5day_first_days_of_series_end_no_window() {
        let rx5 = default_hazards()[4]
            .compile(Unit::MmPerDay, Precision::F64)
            .unwrap();
        let mut acc = Accumulator::new(rx5, 1);
        let out = run_years(&mut acc, &[series(&[100.0, 0.0, 0.0, 0.0, 0.0, 1.0])]);
        // Only two windows: days 1-5 (100) and 2-6 (1).
        assert_eq!(out, [vec![Some(100.0)]]);
        let mut acc = Accumulator::new(rx5, 1);
        // Four days: no window at all, so no value even for a "complete" year.
        let out = run_years(&mut acc, &[series(&[100.0, 0.0, 0.0, 0.0])]);
        assert_eq!(out, [vec![None]]);
    }

    #[test]
    fn missing_day_in_december_voids_the_year_but_not_windows_after_it() {
        let rx5 = default_hazards()[4]
            .compile(Unit::MmPerDay, Precision::F64)
            .unwrap();
        let mut acc = Accumulator::new(rx5, 1);
        let y1 = series(&[1.0, 1.0, 1.0, 1.0, 1.0, f64::NAN]);
        let y2 = series(&[9.0, 9.0, 9.0, 9.0, 1.0, 1.0, 1.0]);
        let out = run_years(&mut acc, &[y1, y2]);
        // Windows in year 2 ending on days 1-4 contain the NaN and are skipped; the window
        // ending on day 5 is 9+9+9+9+1.
        assert_eq!(out, [vec![None], vec![Some(37.0)]]);
    }

    #[test]
    fn any_missing_day_or_incomplete_year_gives_no_value() {
        for (k, h) in default_hazards().iter().enumerate() {
            let unit = if h.variable.is_temperature() {
                Unit::Celsius
            } else {
                Unit::MmPerDay
            };
            let c = h.compile(unit, Precision::F32).unwrap();
            let mut acc = Accumulator::new(c, 3);
            for d in 0..10 {
                let miss = if d == 7 { f32::NAN } else { 40.0 };
                acc.push_day(&[40.0_f32, miss, f32::NAN]); // point 2: all missing
            }
            let mut got = Vec::new();
            acc.finish_year(true, |i, v| got.push((i, v)));
            assert_eq!(got.len(), 1, "hazard {k}");
            assert_eq!(got[0].0, 0);
            for _ in 0..10 {
                acc.push_day(&[40.0_f32, 40.0, 40.0]);
            }
            let mut got = Vec::new();
            acc.finish_year(false, |i, v| got.push((i, v)));
            assert!(got.is_empty(), "incomplete year must give nothing");
        }
    }

    #[test]
    fn reset_year_keeps_the_window() {
        let rx5 = default_hazards()[4]
            .compile(Unit::MmPerDay, Precision::F64)
            .unwrap();
        let mut acc = Accumulator::new(rx5, 1);
        for v in [10.0, 10.0, 10.0, 10.0] {
            acc.push_day(&[v]);
        }
        acc.reset_year();
        acc.push_day(&[1.0]);
        let mut out = None;
        acc.finish_year(true, |_, v| out = Some(v));
        assert_eq!(out, Some(41.0));
    }

    #[test]
    fn ops_compare_as_named() {
        assert!(Op::Ge.holds(1.0, 1.0) && !Op::Gt.holds(1.0, 1.0));
        assert!(Op::Le.holds(1.0, 1.0) && !Op::Lt.holds(1.0, 1.0));
        assert!(!Op::Ge.holds(f64::NAN, 0.0) && !Op::Lt.holds(f64::NAN, 0.0));
    }
}
