//! Streams a [`ClimateFile`] through the hazard accumulators, one calendar year per read.

use std::ops::{Range, RangeInclusive};

use super::error::{InputError, InputErrorKind as K};
use super::file::{ClimateFile, NcSample};
use crate::hazard::{Accumulator, Hazard, Precision, Variable};

/// One hazard index value of one point and calendar year.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct AnnualValue {
    /// Point index in file order (see [`ClimateFile::points`]).
    pub point: usize,
    /// Index into the `hazards` slice given to [`annual_indices`].
    pub hazard: usize,
    pub year: i32,
    /// In the index's unit: days, or mm for amounts.
    pub value: f64,
    /// 0–100, see [`Hazard::score`].
    pub score: f64,
}

/// Computes every hazard for the points `points` and the calendar years `years` (all years in
/// the file if `None`).
///
/// Reads the file time-major, one calendar year × the whole point range per variable per read,
/// and keeps only per-point running state, so memory is flat in the number of years. Rows are
/// emitted only for years that get a value (complete year, no missing day).
pub fn annual_indices(
    file: &ClimateFile,
    hazards: &[Hazard],
    points: Range<usize>,
    years: Option<RangeInclusive<i32>>,
) -> Result<Vec<AnnualValue>, InputError> {
    let path = file.path();
    if points.start > points.end || points.end > file.points().len() {
        return Err(InputError::new(
            path,
            None,
            K::Invalid(format!(
                "point range {points:?} is outside the file's {} points",
                file.points().len()
            )),
        ));
    }
    let np = points.len();

    // One group per variable: its accumulators and which hazard each belongs to.
    let mut groups: Vec<Group> = Vec::new();
    for (h, hazard) in hazards.iter().enumerate() {
        let var = hazard.variable;
        let (name, precision) = file.meta_for(var)?;
        let unit = file.units(var).ok_or_else(|| {
            InputError::new(path, Some(name), K::Invalid("units not validated".into()))
        })?;
        let compiled = hazard
            .compile(unit, precision)
            .map_err(|e| InputError::new(path, Some(name), K::Invalid(e.to_string())))?;
        let acc = Accumulator::new(compiled, np);
        match groups.iter_mut().find(|g| g.var == var) {
            Some(g) => g.accs.push((h, acc)),
            None => groups.push(Group {
                var,
                precision,
                accs: vec![(h, acc)],
            }),
        }
    }
    let lead = hazards
        .iter()
        .map(|h| match h.index {
            crate::hazard::IndexKind::MaxNDayAmount { window } => window.saturating_sub(1),
            _ => 0,
        })
        .max()
        .unwrap_or(0);

    let segments = year_segments(file);
    let wanted = |y: i32| years.as_ref().is_none_or(|r| r.contains(&y));
    let Some(first) = segments.iter().position(|(y, _)| wanted(*y)) else {
        return Ok(Vec::new());
    };
    let mut out = Vec::new();
    if np == 0 || groups.is_empty() {
        return Ok(out);
    }
    let mut buf = Buffers::default();

    // Days before the first wanted year only feed n-day windows that end in it.
    let start = segments[first].1.start;
    let lead_in = start.saturating_sub(lead)..start;
    if !lead_in.is_empty() {
        for g in &mut groups {
            g.feed(file, lead_in.clone(), points.clone(), &mut buf)?;
            for (_, acc) in &mut g.accs {
                acc.reset_year();
            }
        }
    }

    let calendar = file.calendar();
    for (year, range) in &segments[first..] {
        if !wanted(*year) {
            if years.as_ref().is_some_and(|r| *year > *r.end()) {
                break;
            }
            continue;
        }
        let complete = range.len() == calendar.days_in_year(*year) as usize;
        for g in &mut groups {
            g.feed(file, range.clone(), points.clone(), &mut buf)?;
            for (h, acc) in &mut g.accs {
                let hazard = &hazards[*h];
                acc.finish_year(complete, |i, value| {
                    out.push(AnnualValue {
                        point: points.start + i,
                        hazard: *h,
                        year: *year,
                        value,
                        score: hazard.score(value),
                    });
                });
            }
        }
    }
    Ok(out)
}

/// Consecutive time steps of each calendar year, in file order.
fn year_segments(file: &ClimateFile) -> Vec<(i32, Range<usize>)> {
    let mut segs: Vec<(i32, Range<usize>)> = Vec::new();
    for (i, d) in file.dates().iter().enumerate() {
        match segs.last_mut() {
            Some((y, r)) if *y == d.year => r.end = i + 1,
            _ => segs.push((d.year, i..i + 1)),
        }
    }
    segs
}

/// Read buffers reused across years: one year × the point range, in the storage type.
#[derive(Default)]
struct Buffers {
    f32: Vec<f32>,
    f64: Vec<f64>,
    s32: Vec<f32>,
    s64: Vec<f64>,
}

struct Group {
    var: Variable,
    precision: Precision,
    accs: Vec<(usize, Accumulator)>,
}

impl Group {
    fn feed(
        &mut self,
        file: &ClimateFile,
        time: Range<usize>,
        points: Range<usize>,
        buf: &mut Buffers,
    ) -> Result<(), InputError> {
        match self.precision {
            Precision::F32 => self.feed_typed(file, time, points, &mut buf.f32, &mut buf.s32),
            Precision::F64 => self.feed_typed(file, time, points, &mut buf.f64, &mut buf.s64),
        }
    }

    fn feed_typed<T: NcSample>(
        &mut self,
        file: &ClimateFile,
        time: Range<usize>,
        points: Range<usize>,
        values: &mut Vec<T>,
        scratch: &mut Vec<T>,
    ) -> Result<(), InputError> {
        let np = points.len();
        file.read_native_var(self.var, time, points, values, scratch)?;
        for (_, acc) in &mut self.accs {
            for day in values.chunks_exact(np) {
                acc.push_day(day);
            }
        }
        Ok(())
    }
}
