//! Hazard index definitions: pure functions over daily series.
//!
//! Knows nothing of files, databases or clocks. The registry of hazards is data
//! ([`default_hazards`]): an index is a [`Hazard`] value, so adding one is one definition, and
//! thresholds, operators and score bounds are configurable.
//!
//! Semantics follow xclim 0.62 (`xclim.atmos` indicators, `missing="any"`): thresholds are
//! converted into the data's units and rounded to the data's storage precision before comparing
//! (numpy 2 / NEP 50 compares a float32 array with a Python float in float32).

mod accum;

use std::borrow::Cow;
use std::fmt;

pub use accum::{Accumulator, Sample};

/// The daily input variables the hazards are computed from.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum Variable {
    /// Daily maximum near-surface air temperature.
    Tasmax,
    /// Daily minimum near-surface air temperature.
    Tasmin,
    /// Precipitation (flux or daily rate).
    Pr,
}

impl Variable {
    pub const ALL: [Variable; 3] = [Variable::Tasmax, Variable::Tasmin, Variable::Pr];

    /// Position in [`Variable::ALL`], for small per-variable tables.
    pub fn index(self) -> usize {
        match self {
            Variable::Tasmax => 0,
            Variable::Tasmin => 1,
            Variable::Pr => 2,
        }
    }

    pub fn is_temperature(self) -> bool {
        matches!(self, Variable::Tasmax | Variable::Tasmin)
    }
}

impl fmt::Display for Variable {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Variable::Tasmax => "tasmax",
            Variable::Tasmin => "tasmin",
            Variable::Pr => "pr",
        })
    }
}

/// Physical units of daily data and of thresholds.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Unit {
    Kelvin,
    Celsius,
    /// Precipitation flux, kg m-2 s-1 (numerically mm/s of water).
    KgPerM2PerS,
    /// Daily precipitation rate, mm/day (numerically mm per daily step).
    MmPerDay,
    /// Daily precipitation in metres of water per day (ERA5 daily totals, `m`, `m/day`).
    MPerDay,
}

impl Unit {
    pub fn is_temperature(self) -> bool {
        matches!(self, Unit::Kelvin | Unit::Celsius)
    }

    /// Converts `value` from `self` into `to`; `None` across dimensions (temperature vs flux).
    pub fn convert(self, value: f64, to: Unit) -> Option<f64> {
        use Unit::*;
        Some(match (self, to) {
            (a, b) if a == b => value,
            (Celsius, Kelvin) => value + 273.15,
            (Kelvin, Celsius) => value - 273.15,
            (MmPerDay, KgPerM2PerS) => value / 86_400.0,
            (KgPerM2PerS, MmPerDay) => value * 86_400.0,
            (MmPerDay, MPerDay) => value / 1000.0,
            (MPerDay, MmPerDay) => value * 1000.0,
            (KgPerM2PerS, MPerDay) => value * 86.4,
            (MPerDay, KgPerM2PerS) => value / 86.4,
            _ => return None,
        })
    }
}

impl fmt::Display for Unit {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(match self {
            Unit::Kelvin => "K",
            Unit::Celsius => "degC",
            Unit::KgPerM2PerS => "kg m-2 s-1",
            Unit::MmPerDay => "mm/day",
            Unit::MPerDay => "m/day",
        })
    }
}

/// Storage precision of the data; thresholds are rounded to it before comparing (as numpy does).
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Precision {
    F32,
    F64,
}

/// Comparison of a daily value with a threshold: `value <op> threshold`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Op {
    Gt,
    Ge,
    Lt,
    Le,
}

impl Op {
    #[inline(always)]
    pub fn holds(self, value: f64, threshold: f64) -> bool {
        match self {
            Op::Gt => value > threshold,
            Op::Ge => value >= threshold,
            Op::Lt => value < threshold,
            Op::Le => value <= threshold,
        }
    }
}

/// A threshold with its unit, e.g. 33 degC; converted into the data's unit at compile time.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct Threshold {
    pub value: f64,
    pub unit: Unit,
}

impl Threshold {
    pub const fn new(value: f64, unit: Unit) -> Self {
        Self { value, unit }
    }
}

/// What an index computes per calendar year.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum IndexKind {
    /// Number of days with `value <op> threshold` (xclim `tx_days_above`, `tn_days_below`).
    CountDays { op: Op, threshold: Threshold },
    /// Longest run of consecutive days with `value <op> threshold`, runs cut at the year
    /// boundary (xclim `maximum_consecutive_dry_days`, `resample_before_rl=True`).
    MaxSpell { op: Op, threshold: Threshold },
    /// Largest precipitation amount over `window` consecutive days, in mm; a window belongs to
    /// the year of its last day and a window containing a missing day is skipped (xclim
    /// `max_1day_precipitation_amount`, `max_n_day_precipitation_amount`).
    MaxNDayAmount { window: usize },
}

/// One hazard of the registry.
#[derive(Debug, Clone, PartialEq)]
pub struct Hazard {
    /// Stored as `hazard_results.risk_type`.
    pub risk_type: Cow<'static, str>,
    pub variable: Variable,
    pub index: IndexKind,
    /// Index values mapped linearly to 0 (at `lo`) .. 100 (at `hi`), clamped.
    pub score_range: (f64, f64),
}

/// A hazard definition that cannot be applied to the data it was given.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum HazardError {
    #[error("hazard {risk_type}: threshold in {threshold} cannot be compared with data in {data}")]
    UnitMismatch {
        risk_type: String,
        threshold: Unit,
        data: Unit,
    },
    #[error("hazard {risk_type}: an amount index needs precipitation data, not {data}")]
    NotPrecipitation { risk_type: String, data: Unit },
    #[error("hazard {risk_type}: {why}")]
    Invalid { risk_type: String, why: String },
}

/// An index ready to run on data of one unit and precision: thresholds converted and rounded.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum CompiledIndex {
    CountDays {
        op: Op,
        threshold: f64,
    },
    MaxSpell {
        op: Op,
        threshold: f64,
    },
    /// `to_mm` converts a sum of daily values into mm (86400 for kg m-2 s-1, 1 for mm/day,
    /// 1000 for m/day).
    MaxNDayAmount {
        window: usize,
        to_mm: f64,
    },
}

impl Hazard {
    /// Prepares the index for data stored in `unit` at `precision`.
    pub fn compile(&self, unit: Unit, precision: Precision) -> Result<CompiledIndex, HazardError> {
        let (lo, hi) = self.score_range;
        if !(lo.is_finite() && hi.is_finite() && lo < hi) {
            return Err(HazardError::Invalid {
                risk_type: self.risk_type.to_string(),
                why: format!("score range ({lo}, {hi}) must be finite with lo < hi"),
            });
        }
        let convert = |t: Threshold| {
            let v = t
                .unit
                .convert(t.value, unit)
                .ok_or(HazardError::UnitMismatch {
                    risk_type: self.risk_type.to_string(),
                    threshold: t.unit,
                    data: unit,
                })?;
            Ok(match precision {
                Precision::F32 => f64::from(v as f32),
                Precision::F64 => v,
            })
        };
        Ok(match self.index {
            IndexKind::CountDays { op, threshold } => CompiledIndex::CountDays {
                op,
                threshold: convert(threshold)?,
            },
            IndexKind::MaxSpell { op, threshold } => CompiledIndex::MaxSpell {
                op,
                threshold: convert(threshold)?,
            },
            IndexKind::MaxNDayAmount { window } => {
                if window == 0 || window > 366 {
                    return Err(HazardError::Invalid {
                        risk_type: self.risk_type.to_string(),
                        why: format!("window {window} must be 1..=366 days"),
                    });
                }
                let to_mm = match unit {
                    Unit::MmPerDay => 1.0,
                    Unit::KgPerM2PerS => 86_400.0,
                    Unit::MPerDay => 1000.0,
                    Unit::Kelvin | Unit::Celsius => {
                        return Err(HazardError::NotPrecipitation {
                            risk_type: self.risk_type.to_string(),
                            data: unit,
                        });
                    }
                };
                CompiledIndex::MaxNDayAmount { window, to_mm }
            }
        })
    }

    /// The index value mapped linearly onto 0–100 between `score_range`, clamped.
    pub fn score(&self, value: f64) -> f64 {
        let (lo, hi) = self.score_range;
        ((value - lo) / (hi - lo) * 100.0).clamp(0.0, 100.0)
    }

    /// Physical unit of the index value, for labels.
    pub fn value_units(&self) -> &'static str {
        match self.index {
            IndexKind::CountDays { .. } | IndexKind::MaxSpell { .. } => "days",
            IndexKind::MaxNDayAmount { .. } => "mm",
        }
    }
}

/// The platform's five hazards.
///
/// Score bounds: the index value that maps to score 0 and to 100. Day counts saturate at 60 days
/// (two months of extreme heat / cold or of dry spell is the top of the scale in the regions the
/// platform covers); Rx1day 200 mm and Rx5day 400 mm are high-end flood-producing totals.
pub fn default_hazards() -> Vec<Hazard> {
    vec![
        Hazard {
            risk_type: Cow::Borrowed("extreme_heat"),
            variable: Variable::Tasmax,
            // Korean heat-wave threshold; xclim tx_days_above(thresh="33 degC", op=">=").
            index: IndexKind::CountDays {
                op: Op::Ge,
                threshold: Threshold::new(33.0, Unit::Celsius),
            },
            score_range: (0.0, 60.0),
        },
        Hazard {
            risk_type: Cow::Borrowed("extreme_cold"),
            variable: Variable::Tasmin,
            // xclim tn_days_below(thresh="-12 degC", op="<=").
            index: IndexKind::CountDays {
                op: Op::Le,
                threshold: Threshold::new(-12.0, Unit::Celsius),
            },
            score_range: (0.0, 60.0),
        },
        Hazard {
            risk_type: Cow::Borrowed("drought"),
            variable: Variable::Pr,
            // xclim maximum_consecutive_dry_days(thresh="1 mm/day"): dry is pr < 1 mm/day.
            index: IndexKind::MaxSpell {
                op: Op::Lt,
                threshold: Threshold::new(1.0, Unit::MmPerDay),
            },
            score_range: (0.0, 60.0),
        },
        Hazard {
            risk_type: Cow::Borrowed("urban_flood"),
            variable: Variable::Pr,
            // Rx1day, xclim max_1day_precipitation_amount.
            index: IndexKind::MaxNDayAmount { window: 1 },
            score_range: (0.0, 200.0),
        },
        Hazard {
            risk_type: Cow::Borrowed("river_flood"),
            variable: Variable::Pr,
            // Rx5day, xclim max_n_day_precipitation_amount(window=5).
            index: IndexKind::MaxNDayAmount { window: 5 },
            score_range: (0.0, 400.0),
        },
    ]
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn thresholds_are_rounded_to_data_precision() {
        let h = default_hazards();
        let heat = h[0].compile(Unit::Kelvin, Precision::F32).unwrap();
        assert_eq!(
            heat,
            CompiledIndex::CountDays {
                op: Op::Ge,
                threshold: f64::from(306.15_f32)
            }
        );
        let heat64 = h[0].compile(Unit::Kelvin, Precision::F64).unwrap();
        assert_eq!(
            heat64,
            CompiledIndex::CountDays {
                op: Op::Ge,
                threshold: 33.0 + 273.15
            }
        );
        let cold = h[1].compile(Unit::Celsius, Precision::F32).unwrap();
        assert_eq!(
            cold,
            CompiledIndex::CountDays {
                op: Op::Le,
                threshold: -12.0
            }
        );
        let dry = h[2].compile(Unit::KgPerM2PerS, Precision::F32).unwrap();
        assert_eq!(
            dry,
            CompiledIndex::MaxSpell {
                op: Op::Lt,
                threshold: f64::from((1.0 / 86_400.0) as f32)
            }
        );
        let rx5 = h[4].compile(Unit::MmPerDay, Precision::F32).unwrap();
        assert_eq!(
            rx5,
            CompiledIndex::MaxNDayAmount {
                window: 5,
                to_mm: 1.0
            }
        );
    }

    #[test]
    fn compile_rejects_mismatched_units_and_bad_config() {
        let h = default_hazards();
        assert!(matches!(
            h[0].compile(Unit::MmPerDay, Precision::F32),
            Err(HazardError::UnitMismatch { .. })
        ));
        assert!(matches!(
            h[3].compile(Unit::Kelvin, Precision::F32),
            Err(HazardError::NotPrecipitation { .. })
        ));
        let mut bad = h[0].clone();
        bad.score_range = (10.0, 10.0);
        assert!(matches!(
            bad.compile(Unit::Kelvin, Precision::F32),
            Err(HazardError::Invalid { .. })
        ));
    }

    #[test]
    fn score_is_linear_and_clamped() {
        let h = &default_hazards()[4]; // 0..400 mm
        assert_eq!(h.score(0.0), 0.0);
        assert_eq!(h.score(100.0), 25.0);
        assert_eq!(h.score(400.0), 100.0);
        assert_eq!(h.score(1000.0), 100.0);
        assert_eq!(h.score(-5.0), 0.0);
    }

    #[test]
    fn unit_conversions() {
        assert_eq!(Unit::Celsius.convert(-12.0, Unit::Kelvin), Some(261.15));
        assert_eq!(Unit::Kelvin.convert(273.15, Unit::Celsius), Some(0.0));
        assert_eq!(
            Unit::MmPerDay.convert(86_400.0, Unit::KgPerM2PerS),
            Some(1.0)
        );
        assert_eq!(Unit::Kelvin.convert(1.0, Unit::MmPerDay), None);
    }
}
