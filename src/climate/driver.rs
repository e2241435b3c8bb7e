//! Streams a [`ClimateFile`] through the hazard accumulators, one calendar year per read.

use std::ops::{Range, RangeInclusive};

use super::error::{InputError, InputErrorKind as K};
use super::file::ClimateFile;
use crate::hazard::{Accumulator, Hazard, Precision, Sample, Variable};

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

    // The work, in file order: lead-in days before the first wanted year only feed n-day
    // windows that end in it; then every wanted year.
    let mut steps: Vec<Step> = Vec::new();
    let start = segments[first].1.start;
    let lead_in = start.saturating_sub(lead)..start;
    if !lead_in.is_empty() {
        steps.push(Step {
            time: lead_in,
            year: None,
        });
    }
    for (year, range) in &segments[first..] {
        if years.as_ref().is_some_and(|r| *year > *r.end()) {
            break;
        }
        if wanted(*year) {
            steps.push(Step {
                time: range.clone(),
                year: Some(*year),
            });
        }
    }

    // A reader thread runs one block ahead of the accumulators, so decompression / I/O and index
    // computation overlap (libnetcdf serialises its calls anyway; the compute is ours).
    let reads: Vec<(Variable, Precision)> = groups.iter().map(|g| (g.var, g.precision)).collect();
    let calendar = file.calendar();
    std::thread::scope(|scope| -> Result<(), InputError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Block, InputError>>(reads.len());
        let (steps_ref, reads_ref, points_ref) = (&steps, &reads, &points);
        scope.spawn(move || {
            let mut scratch32 = Vec::new();
            let mut scratch64 = Vec::new();
            for step in steps_ref {
                for &(var, precision) in reads_ref {
                    let time = step.time.clone();
                    let block = match precision {
                        Precision::F32 => {
                            let mut v = Vec::new();
                            file.read_native_var(
                                var,
                                time,
                                points_ref.clone(),
                                &mut v,
                                &mut scratch32,
                            )
                            .map(|()| Block::F32(v))
                        }
                        Precision::F64 => {
                            let mut v = Vec::new();
                            file.read_native_var(
                                var,
                                time,
                                points_ref.clone(),
                                &mut v,
                                &mut scratch64,
                            )
                            .map(|()| Block::F64(v))
                        }
                    };
                    let failed = block.is_err();
                    if tx.send(block).is_err() || failed {
                        return; // the consumer stopped, or there is nothing more to read
                    }
                }
            }
        });
        for step in &steps {
            for g in &mut groups {
                let block = rx.recv().map_err(|_| {
                    InputError::new(path, None, K::Corrupt("reader thread stopped".into()))
                })??;
                match &block {
                    Block::F32(v) => g.feed(v, np),
                    Block::F64(v) => g.feed(v, np),
                }
                let Some(year) = step.year else {
                    for (_, acc) in &mut g.accs {
                        acc.reset_year();
                    }
                    continue;
                };
                let complete = step.time.len() == calendar.days_in_year(year) as usize;
                for (h, acc) in &mut g.accs {
                    let hazard = &hazards[*h];
                    acc.finish_year(complete, |i, value| {
                        out.push(AnnualValue {
                            point: points.start + i,
                            hazard: *h,
                            year,
                            value,
                            score: hazard.score(value),
                        });
                    });
                }
            }
        }
        Ok(())
    })?;
    Ok(out)
}

/// A run of consecutive days: a calendar year to finish, or lead-in days (`year` None).
struct Step {
    time: Range<usize>,
    year: Option<i32>,
}

/// One variable's values for one step, time-major, in the storage type.
enum Block {
    F32(Vec<f32>),
    F64(Vec<f64>),
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

struct Group {
    var: Variable,
    precision: Precision,
    accs: Vec<(usize, Accumulator)>,
}

impl Group {
    fn feed<T: Sample>(&mut self, values: &[T], np: usize) {
        for (_, acc) in &mut self.accs {
            for day in values.chunks_exact(np) {
                acc.push_day(day);
            }
        }
    }
}
