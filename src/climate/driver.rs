//! Streams a dataset (one or more [`ClimateFile`]s joined in time) through the hazard
//! accumulators, one calendar year per read.

use std::ops::{Range, RangeInclusive};
use std::sync::Arc;

use super::calendar::{Calendar, CfDate};
use super::dataset::{Overlap, Piece, join_pieces};
use super::error::{InputError, InputErrorKind as K};
use super::file::{ClimateFile, NcSample};
use crate::hazard::{Accumulator, Hazard, Precision, Sample, Unit, Variable};

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

/// The files of one dataset, joined in time per variable: the value of day `d` is the value of
/// whichever file covers `d` (files that overlap must agree, see [`Dataset::check_overlaps`]);
/// a day no file covers is missing (NaN), so every day keeps its place in the joined series and
/// runs and n-day windows cross file boundaries.
pub struct Dataset<'a> {
    files: Vec<&'a ClimateFile>,
    /// Per variable (by [`Variable::index`]): its pieces in time order.
    pieces: [Vec<Piece>; 3],
    /// Per variable: units and storage precision, equal in every piece.
    meta: [Option<(Unit, Precision)>; 3],
    calendar: Calendar,
    first_day: i64,
    last_day: i64,
}

impl<'a> Dataset<'a> {
    /// Joins `files` (each holding one or more of the variables validated at open). Bad input
    /// when they do not share the grid, calendar, or a variable's units and storage type.
    pub fn new(files: Vec<&'a ClimateFile>) -> Result<Self, InputError> {
        let Some(first) = files.first() else {
            return Err(InputError::new(
                "",
                None,
                K::Invalid("a dataset needs at least one file".into()),
            ));
        };
        let mut pieces: [Vec<Piece>; 3] = Default::default();
        let mut meta: [Option<(Unit, Precision, usize)>; 3] = [None; 3];
        let (mut first_day, mut last_day) = (i64::MAX, i64::MIN);
        for (i, f) in files.iter().enumerate() {
            if f.calendar() != first.calendar() {
                return Err(InputError::new(
                    f.path(),
                    Some("time"),
                    K::Invalid(format!(
                        "calendar {} differs from {} of {}, in the same dataset",
                        f.calendar(),
                        first.calendar(),
                        first.path().display()
                    )),
                ));
            }
            if f.points() != first.points() {
                return Err(InputError::new(
                    f.path(),
                    None,
                    K::BadGrid(format!(
                        "its grid ({} points) differs from that of {} ({} points), in the same \
                         dataset: files of one dataset must share the grid",
                        f.points().len(),
                        first.path().display(),
                        first.points().len()
                    )),
                ));
            }
            let (Some(&a), Some(&b)) = (f.day_numbers().first(), f.day_numbers().last()) else {
                continue;
            };
            first_day = first_day.min(a);
            last_day = last_day.max(b);
            for var in Variable::ALL {
                let (Some(unit), Ok((_, precision))) = (f.units(var), f.meta_for(var)) else {
                    continue; // not one of this file's variables
                };
                match meta[var.index()] {
                    None => meta[var.index()] = Some((unit, precision, i)),
                    Some((u, p, j)) if (u, p) != (unit, precision) => {
                        return Err(InputError::new(
                            f.path(),
                            f.variable_name(var),
                            K::Invalid(format!(
                                "units {unit:?} / {precision:?} differ from {u:?} / {p:?} in {}, \
                                 in the same dataset",
                                files[j].path().display()
                            )),
                        ));
                    }
                    Some(_) => {}
                }
                pieces[var.index()].push(Piece {
                    file: i,
                    first_day: a,
                    last_day: b,
                });
            }
        }
        for p in &mut pieces {
            join_pieces(p);
        }
        Ok(Dataset {
            calendar: first.calendar(),
            files,
            pieces,
            meta: meta.map(|m| m.map(|(u, p, _)| (u, p))),
            first_day,
            last_day,
        })
    }

    /// A single file as a dataset of one piece.
    pub fn single(file: &'a ClimateFile) -> Result<Self, InputError> {
        Dataset::new(vec![file])
    }

    /// (lat, lon) of every point (shared by every file).
    pub fn points(&self) -> &[(f64, f64)] {
        self.files[0].points()
    }

    pub fn calendar(&self) -> Calendar {
        self.calendar
    }

    /// Whether any file stores one of `vars` in chunks much longer in time than a year (read in
    /// passes of points through time slabs).
    fn time_chunked(&self, vars: impl IntoIterator<Item = Variable> + Clone) -> bool {
        self.files
            .iter()
            .any(|f| vars.clone().into_iter().any(|v| f.long_time_chunks(v)))
    }

    /// Variables at least one file holds.
    pub fn variables(&self) -> Vec<Variable> {
        Variable::ALL
            .into_iter()
            .filter(|v| !self.pieces[v.index()].is_empty())
            .collect()
    }

    /// First and last date any file covers.
    pub fn span(&self) -> Option<(CfDate, CfDate)> {
        (self.first_day <= self.last_day).then(|| {
            (
                self.calendar.date(self.first_day),
                self.calendar.date(self.last_day),
            )
        })
    }

    /// Days inside the span that no file of `var` covers.
    pub fn missing_days(&self, var: Variable) -> i64 {
        let mut covered = 0i64;
        let mut upto = i64::MIN;
        for p in &self.pieces[var.index()] {
            let days = self.files[p.file].day_numbers();
            for &d in days {
                if d > upto {
                    covered += 1;
                    upto = d;
                }
            }
        }
        (self.last_day - self.first_day + 1).max(0) - covered
    }

    /// Every pair of files that cover the same days of a variable.
    pub fn overlaps(&self) -> Vec<(Variable, Overlap)> {
        let mut out = Vec::new();
        for var in Variable::ALL {
            let mut p = self.pieces[var.index()].clone();
            out.extend(join_pieces(&mut p).into_iter().map(|o| (var, o)));
        }
        out
    }

    /// Reads the days two files both cover and requires identical values (NaN equal to NaN):
    /// a conflict is bad input naming both files and the first conflicting date.
    pub fn check_overlaps(&self) -> Result<(), InputError> {
        let np = self.points().len();
        for (var, o) in self.overlaps() {
            let (a, b) = (self.files[o.earlier], self.files[o.later]);
            // A year at a time keeps memory bounded whatever the overlap.
            let mut start = o.first_day;
            while start <= o.last_day {
                let end = (start + 366).min(o.last_day + 1);
                let (mut va, mut vb) = (Vec::new(), Vec::new());
                for (f, v) in [(a, &mut va), (b, &mut vb)] {
                    match self.meta[var.index()].map(|m| m.1) {
                        Some(Precision::F64) => {
                            read_file_days::<f64>(f, var, start..end, 0..np, v)?
                        }
                        _ => read_file_days::<f32>(f, var, start..end, 0..np, v)?,
                    }
                }
                let differs = va
                    .iter()
                    .zip(&vb)
                    .position(|(x, y)| x.to_bits() != y.to_bits() && !(x.is_nan() && y.is_nan()));
                if let Some(i) = differs {
                    let day = start + (i / np.max(1)) as i64;
                    let (lat, lon) = self.points()[i % np.max(1)];
                    return Err(InputError::new(
                        b.path(),
                        b.variable_name(var),
                        K::Invalid(format!(
                            "overlaps {} on {}..{} with different values: first conflicting \
                             date {} (point {lat}, {lon}: {} vs {}); overlapping days must be \
                             identical",
                            a.path().display(),
                            self.calendar.date(o.first_day),
                            self.calendar.date(o.last_day),
                            self.calendar.date(day),
                            va[i],
                            vb[i]
                        )),
                    ));
                }
                start = end;
            }
        }
        Ok(())
    }

    /// Values of `var` for the days `days` × `points`, time-major, in the storage type; a day no
    /// file covers is NaN.
    fn read_days<T: NcSample>(
        &self,
        var: Variable,
        days: Range<i64>,
        points: Range<usize>,
        out: &mut Vec<T>,
        scratch: &mut Vec<T>,
    ) -> Result<(), InputError> {
        let (nd, np) = ((days.end - days.start).max(0) as usize, points.len());
        let pieces = &self.pieces[var.index()];
        // The common case: one file covers every day without a gap; read straight into `out`.
        for p in pieces {
            let f = self.files[p.file];
            let steps = steps_of(f, &days);
            let dn = f.day_numbers();
            if steps.len() == nd
                && nd > 0
                && dn[steps.start] == days.start
                && dn[steps.end - 1] == days.end - 1
            {
                return f.read_native_var(var, steps, points, out, scratch);
            }
        }
        out.clear();
        out.resize(nd * np, T::NAN);
        let mut block = Vec::new();
        for p in pieces {
            let f = self.files[p.file];
            let steps = steps_of(f, &days);
            if steps.is_empty() {
                continue;
            }
            f.read_native_var(var, steps.clone(), points.clone(), &mut block, scratch)?;
            for (k, t) in steps.enumerate() {
                let row = (f.day_numbers()[t] - days.start) as usize;
                out[row * np..(row + 1) * np].copy_from_slice(&block[k * np..(k + 1) * np]);
            }
        }
        Ok(())
    }
}

/// The steps of `file` whose days fall in `days`.
fn steps_of(file: &ClimateFile, days: &Range<i64>) -> Range<usize> {
    let dn = file.day_numbers();
    dn.partition_point(|&d| d < days.start)..dn.partition_point(|&d| d < days.end)
}

/// One file's values for `days` (NaN where it has no step), as f64 (exact for f32 and f64).
fn read_file_days<T: NcSample>(
    file: &ClimateFile,
    var: Variable,
    days: Range<i64>,
    points: Range<usize>,
    out: &mut Vec<f64>,
) -> Result<(), InputError> {
    let np = points.len();
    let nd = (days.end - days.start).max(0) as usize;
    out.clear();
    out.resize(nd * np, f64::NAN);
    let steps = steps_of(file, &days);
    if steps.is_empty() {
        return Ok(());
    }
    let (mut block, mut scratch) = (Vec::<T>::new(), Vec::<T>::new());
    file.read_native_var(var, steps.clone(), points, &mut block, &mut scratch)?;
    for (k, t) in steps.enumerate() {
        let row = (file.day_numbers()[t] - days.start) as usize;
        for (o, v) in out[row * np..(row + 1) * np]
            .iter_mut()
            .zip(&block[k * np..(k + 1) * np])
        {
            *o = v.to_f64();
        }
    }
    Ok(())
}

/// Computes every hazard of one file; see [`dataset_indices`].
pub fn annual_indices(
    file: &ClimateFile,
    hazards: &[Hazard],
    points: Range<usize>,
    years: Option<RangeInclusive<i32>>,
) -> Result<Vec<AnnualValue>, InputError> {
    dataset_indices(&Dataset::single(file)?, hazards, points, years)
}

/// Points per pass when a variable is stored in chunks much longer in time than a year (e.g.
/// (ntime, 1, 1)): each point's whole series is one compressed chunk, decoded once into a time
/// slab of the pass's points (see `slab`), so the pass size bounds that slab. At 125 points, 80
/// years of float32 are 15 MB per variable, so a pass's slabs stay in one window and two
/// concurrent tasks' slabs of 10 years (5.5 MB each) stay in the processor's cache between
/// decoding and serving; passes of 500 points were 1–3% slower and took 107 MB instead of 64
/// (bench/results/README.md, issue 9).
const TIME_CHUNKED_PASS_POINTS: usize = 125;

/// Computes every hazard for the points `points` and the calendar years `years` (all years the
/// dataset spans if `None`).
///
/// A dataset with variables chunked along time is processed in passes of
/// `TIME_CHUNKED_PASS_POINTS` (125) points (points outer, years inner); other datasets in one pass.
pub fn dataset_indices(
    dataset: &Dataset<'_>,
    hazards: &[Hazard],
    points: Range<usize>,
    years: Option<RangeInclusive<i32>>,
) -> Result<Vec<AnnualValue>, InputError> {
    let mut out = Vec::new();
    dataset_indices_each(dataset, hazards, points, years, 1, |v| out.push(v))?;
    Ok(out)
}

/// [`dataset_indices`] handing each value to `emit` as it is computed, so a caller can keep them
/// in its own compact form instead of a `Vec<AnnualValue>` of the whole chunk (40 bytes per
/// value). Within a pass values come years ascending; a time-chunked dataset is several passes,
/// so a caller must place values by their point, hazard and year, not by arrival order.
///
/// `workers` > 1 computes on that many threads, each over its own sub-range of the points of
/// every block read (the read stays one block of the whole range, which is what keeps a
/// time-major file's reads contiguous); values are emitted in the same order as with one.
pub fn dataset_indices_each(
    dataset: &Dataset<'_>,
    hazards: &[Hazard],
    points: Range<usize>,
    years: Option<RangeInclusive<i32>>,
    workers: usize,
    mut emit: impl FnMut(AnnualValue),
) -> Result<(), InputError> {
    if points.start > points.end || points.end > dataset.points().len() {
        return Err(InputError::new(
            dataset.files[0].path(),
            None,
            K::Invalid(format!(
                "point range {points:?} is outside the file's {} points",
                dataset.points().len()
            )),
        ));
    }
    let time_chunked = dataset.time_chunked(hazards.iter().map(|h| h.variable));
    if !time_chunked {
        return pass_indices(dataset, hazards, points, years, workers, false, &mut emit);
    }
    for start in points.clone().step_by(TIME_CHUNKED_PASS_POINTS) {
        let end = points.end.min(start + TIME_CHUNKED_PASS_POINTS);
        let pass = start..end;
        pass_indices(
            dataset,
            hazards,
            pass,
            years.clone(),
            workers,
            true,
            &mut emit,
        )?;
    }
    Ok(())
}

/// [`dataset_indices`] for one pass over `points`.
///
/// Reads time-major, one calendar year × the whole point range per variable per read, and keeps
/// only per-point running state, so memory is flat in the number of years. Rows are emitted
/// only for years that get a value (every calendar day present, no missing value). Every hazard's
/// variable must be in the dataset (see [`Dataset::variables`]). `time_chunked`: a variable read
/// is chunked along time, so the pass's slabs are decoded side by side first (`warm_slabs`).
fn pass_indices(
    dataset: &Dataset<'_>,
    hazards: &[Hazard],
    points: Range<usize>,
    years: Option<RangeInclusive<i32>>,
    workers: usize,
    time_chunked: bool,
    emit: &mut impl FnMut(AnnualValue),
) -> Result<(), InputError> {
    let path = dataset.files[0].path();
    let np = points.len();

    // One group per variable: its accumulators and which hazard each belongs to.
    let mut groups: Vec<Group> = Vec::new();
    for (h, hazard) in hazards.iter().enumerate() {
        let var = hazard.variable;
        let Some((unit, precision)) = dataset.meta[var.index()] else {
            return Err(InputError::new(
                path,
                Some(&var.to_string()),
                K::MissingVariable,
            ));
        };
        let compiled = hazard.compile(unit, precision).map_err(|e| {
            InputError::new(path, Some(&var.to_string()), K::Invalid(e.to_string()))
        })?;
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
        .unwrap_or(0) as i64;

    let Some((first_date, last_date)) = dataset.span() else {
        return Ok(());
    };
    if np == 0 || groups.is_empty() {
        return Ok(());
    }
    let cal = dataset.calendar;
    let year_days = |y: i32| -> Option<Range<i64>> {
        Some(cal.day_number(CfDate::new(y, 1, 1))?..cal.day_number(CfDate::new(y + 1, 1, 1))?)
    };
    let (mut y0, mut y1) = (first_date.year, last_date.year);
    if let Some(r) = &years {
        y0 = y0.max(*r.start());
        y1 = y1.min(*r.end());
    }
    // The work, in time order: lead-in days before the first wanted year only feed n-day
    // windows that end in it; then every wanted year.
    let mut steps: Vec<Step> = Vec::new();
    for year in y0..=y1 {
        let Some(days) = year_days(year) else {
            continue;
        };
        if steps.is_empty() {
            let lead_in = (days.start - lead).max(dataset.first_day)..days.start;
            if !lead_in.is_empty() {
                steps.push(Step {
                    days: lead_in,
                    year: None,
                });
            }
        }
        steps.push(Step {
            days,
            year: Some(year),
        });
    }

    // A reader thread runs one block ahead of the accumulators, so decompression / I/O and index
    // computation overlap (libnetcdf serialises its calls anyway; the compute is ours).
    let reads: Vec<(Variable, Precision)> = groups.iter().map(|g| (g.var, g.precision)).collect();
    std::thread::scope(|scope| -> Result<(), InputError> {
        let (tx, rx) = std::sync::mpsc::sync_channel::<Result<Block, InputError>>(reads.len());
        let (steps_ref, reads_ref, points_ref) = (&steps, &reads, &points);
        scope.spawn(move || {
            if time_chunked && reads_ref.len() > 1 {
                warm_slabs(dataset, reads_ref, steps_ref, points_ref);
            }
            let mut scratch32 = Vec::new();
            let mut scratch64 = Vec::new();
            for step in steps_ref {
                for &(var, precision) in reads_ref {
                    let days = step.days.clone();
                    let block = match precision {
                        Precision::F32 => {
                            let mut v = Vec::new();
                            dataset
                                .read_days(var, days, points_ref.clone(), &mut v, &mut scratch32)
                                .map(|()| Block::F32(v))
                        }
                        Precision::F64 => {
                            let mut v = Vec::new();
                            dataset
                                .read_days(var, days, points_ref.clone(), &mut v, &mut scratch64)
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
        // Point `i` of the pass, hazard `h`: the value as callers see it.
        let annual = |h: usize, i: usize, year: i32, value: f64| AnnualValue {
            point: points.start + i,
            hazard: h,
            year,
            value,
            score: hazards[h].score(value),
        };
        if workers <= 1 || np < 2 * MIN_WORKER_POINTS {
            for step in &steps {
                for g in &mut groups {
                    let block = rx.recv().map_err(|_| reader_stopped(path))??;
                    match &block {
                        Block::F32(v) => g.feed(v, np, 0..np),
                        Block::F64(v) => g.feed(v, np, 0..np),
                    }
                    let Some(year) = step.year else {
                        for (_, acc) in &mut g.accs {
                            acc.reset_year();
                        }
                        continue;
                    };
                    // Days no file covers were fed as missing, so every year is read whole.
                    for (h, acc) in &mut g.accs {
                        acc.finish_year(true, |i, value| emit(annual(*h, i, year, value)));
                    }
                }
            }
            return Ok(());
        }

        // Several workers: each owns accumulators for its sub-range of the points and gets
        // every block (shared, read once); per finished year it sends back each accumulator's
        // values, which are emitted here in worker order, i.e. point order.
        let parts = split_points(np, workers.min(np / MIN_WORKER_POINTS));
        let mut to_workers = Vec::with_capacity(parts.len());
        let mut from_workers = Vec::with_capacity(parts.len());
        for part in &parts {
            let (block_tx, block_rx) = std::sync::mpsc::sync_channel::<Arc<Block>>(2);
            let (value_tx, value_rx) = std::sync::mpsc::channel::<Vec<(usize, f64)>>();
            let mut own: Vec<Group> = groups.iter().map(|g| g.for_points(part.len())).collect();
            let part = part.clone();
            scope.spawn(move || {
                for step in steps_ref {
                    for g in &mut own {
                        let Ok(block) = block_rx.recv() else {
                            return; // the caller stopped
                        };
                        match &*block {
                            Block::F32(v) => g.feed(v, np, part.clone()),
                            Block::F64(v) => g.feed(v, np, part.clone()),
                        }
                        for (_, acc) in &mut g.accs {
                            if step.year.is_none() {
                                acc.reset_year();
                                continue;
                            }
                            let mut values = Vec::with_capacity(part.len());
                            acc.finish_year(true, |i, v| values.push((part.start + i, v)));
                            if value_tx.send(values).is_err() {
                                return;
                            }
                        }
                    }
                }
            });
            to_workers.push(block_tx);
            from_workers.push(value_rx);
        }
        let stopped = || InputError::new(path, None, K::Corrupt("a compute thread stopped".into()));
        for step in &steps {
            for g in &groups {
                let block = Arc::new(rx.recv().map_err(|_| reader_stopped(path))??);
                for w in &to_workers {
                    w.send(Arc::clone(&block)).map_err(|_| stopped())?;
                }
                drop(block);
                let Some(year) = step.year else {
                    continue;
                };
                for (h, _) in &g.accs {
                    for from in &from_workers {
                        for (i, value) in from.recv().map_err(|_| stopped())? {
                            emit(annual(*h, i, year, value));
                        }
                    }
                }
            }
        }
        Ok(())
    })
}

/// Decodes the time slab of every variable of a pass at once, one thread each, before the
/// pass's reader asks for its first step. In a file chunked along time the first read of a
/// variable decompresses its whole slab, most of a pass's work: one after the other, a chunk
/// running alone (the last of a run) would keep one core busy; side by side, it keeps both.
/// What a warm read fails on, the reader's own read of the same block reports.
fn warm_slabs(
    dataset: &Dataset<'_>,
    reads: &[(Variable, Precision)],
    steps: &[Step],
    points: &Range<usize>,
) {
    let Some(first) = steps.first() else {
        return;
    };
    fn warm<T: NcSample>(
        dataset: &Dataset<'_>,
        var: Variable,
        days: Range<i64>,
        points: Range<usize>,
    ) {
        let (mut values, mut scratch) = (Vec::<T>::new(), Vec::new());
        let _ = dataset.read_days(var, days, points, &mut values, &mut scratch);
    }
    std::thread::scope(|scope| {
        for &(var, precision) in reads {
            let (days, points) = (first.days.clone(), points.clone());
            scope.spawn(move || match precision {
                Precision::F32 => warm::<f32>(dataset, var, days, points),
                Precision::F64 => warm::<f64>(dataset, var, days, points),
            });
        }
    });
}

/// A run of consecutive days: a calendar year to finish, or lead-in days (`year` None).
struct Step {
    days: Range<i64>,
    year: Option<i32>,
}

/// One variable's values for one step, time-major, in the storage type.
enum Block {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

struct Group {
    var: Variable,
    precision: Precision,
    accs: Vec<(usize, Accumulator)>,
}

impl Group {
    /// Feeds the points `part` of a time-major block of `np` points per day.
    fn feed<T: Sample>(&mut self, values: &[T], np: usize, part: Range<usize>) {
        for (_, acc) in &mut self.accs {
            for day in values.chunks_exact(np) {
                acc.push_day(&day[part.clone()]);
            }
        }
    }

    /// The same indices, fresh, for `points` points.
    fn for_points(&self, points: usize) -> Group {
        Group {
            var: self.var,
            precision: self.precision,
            accs: self
                .accs
                .iter()
                .map(|(h, acc)| (*h, Accumulator::new(acc.index(), points)))
                .collect(),
        }
    }
}

/// Fewest points a compute worker gets: below this a thread costs more than it saves.
const MIN_WORKER_POINTS: usize = 256;

/// `0..np` cut into `parts` (≥ 1) contiguous ranges of nearly equal length.
fn split_points(np: usize, parts: usize) -> Vec<Range<usize>> {
    let parts = parts.max(1);
    (0..parts)
        .map(|k| k * np / parts..(k + 1) * np / parts)
        .collect()
}

fn reader_stopped(path: &std::path::Path) -> InputError {
    InputError::new(path, None, K::Corrupt("reader thread stopped".into()))
}
