//! [`ClimateFile`]: one daily CF NetCDF file, validated up front, read in time-major blocks.

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};
use std::sync::Mutex;

use netcdf::{AttributeValue, Extent, Extents, NcTypeDescriptor};

use super::calendar::{Calendar, CfDate, check_time_order};
use super::direct_read::{Direct, DirectFile, DirectVar, StoredFloat};
use super::error::{InputError, InputErrorKind as K};
use super::grid::{self, dims_of};
use super::packing::{self, Decoding, FromF64};
use super::slab::{self, Order, Slab};
use super::units;
use crate::hazard::{Precision, Sample, Unit, Variable};

/// File variable names of the three inputs; data providers do not all use the CMIP names.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct VariableNames {
    pub tasmax: String,
    pub tasmin: String,
    pub pr: String,
}

impl Default for VariableNames {
    fn default() -> Self {
        Self {
            tasmax: "tasmax".into(),
            tasmin: "tasmin".into(),
            pr: "pr".into(),
        }
    }
}

impl VariableNames {
    pub fn get(&self, v: Variable) -> &str {
        match v {
            Variable::Tasmax => &self.tasmax,
            Variable::Tasmin => &self.tasmin,
            Variable::Pr => &self.pr,
        }
    }
}

/// How the points of the file are laid out after the time dimension.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Layout {
    /// `(time, lat, lon)`, or `(time, y, x)` of a curvilinear grid with 2-D latitude/longitude
    /// (`nlat` = ny, `nlon` = nx): point = iy * nx + ix, in the file's order.
    Grid { nlat: usize, nlon: usize },
    /// `(time, point)` with `lat(point)`, `lon(point)`.
    Points { n: usize },
}

/// What open() learned about one data variable.
#[derive(Debug, Clone)]
struct VarMeta {
    name: String,
    unit: Unit,
    /// Precision of the decoded values (xarray's choice for packed data).
    precision: Precision,
    /// Storage type, packing, fill values and valid range.
    decoding: Decoding,
    /// HDF5 chunks span much more than a year: year reads are served from a time slab.
    long_time_chunks: bool,
    /// Index of the variable's slab in [`ClimateFile::slabs`].
    slot: usize,
}

/// A daily climate projection file whose structure, time axis and units have been checked.
pub struct ClimateFile {
    path: PathBuf,
    /// Per variable: its stored chunks read directly (variables with `long_time_chunks` whose
    /// storage [`direct_read`](super::direct_read) decodes), so decompression runs outside the
    /// library lock. Declared before `direct_file` and `nc`: fields drop in order, so the
    /// datasets close before the file and both before libnetcdf's handle.
    direct_vars: [Option<DirectVar>; 3],
    direct_file: Option<DirectFile>,
    nc: netcdf::File,
    layout: Layout,
    points: Vec<(f64, f64)>,
    dates: Vec<CfDate>,
    /// Calendar day number of every step (strictly increasing; a gap is a missing day).
    day_numbers: Vec<i64>,
    calendar: Calendar,
    scenario: Option<String>,
    vars: [Option<VarMeta>; 3],
    /// Per variable: the decoded values last read for a time window × point range (only for
    /// variables with `long_time_chunks`), see [`slab`].
    slabs: [Mutex<Option<Slab>>; 3],
}

impl std::fmt::Debug for ClimateFile {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("ClimateFile")
            .field("path", &self.path)
            .field("layout", &self.layout)
            .field("points", &self.points.len())
            .field("days", &self.dates.len())
            .field("calendar", &self.calendar)
            .field("scenario", &self.scenario)
            .finish_non_exhaustive()
    }
}

/// The sample types values are decoded into (the variable's [`Precision`]).
pub(crate) trait NcSample:
    Sample + NcTypeDescriptor + Default + FromF64 + slab::SlabValue + StoredFloat
{
    const NAN: Self;
}
impl NcSample for f32 {
    const NAN: Self = f32::NAN;
}
impl NcSample for f64 {
    const NAN: Self = f64::NAN;
}

/// Refuses what netCDF cannot open or would wait on forever: a missing path,
/// a directory, a FIFO (opening it waits for a writer), a socket or device.
pub(crate) fn ensure_regular_file(path: &Path) -> Result<(), InputError> {
    match std::fs::metadata(path) {
        Ok(m) if m.is_dir() => Err(InputError::new(path, None, K::Io("is a directory".into()))),
        Ok(m) if !m.is_file() => Err(InputError::new(
            path,
            None,
            K::Io("is not a regular file (a FIFO, socket or device)".into()),
        )),
        Ok(_) => Ok(()),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Err(InputError::new(path, None, K::NotFound))
        }
        Err(e) => Err(InputError::new(path, None, K::Io(e.to_string()))),
    }
}

impl ClimateFile {
    /// Opens `path` and validates everything the `needed` variables require: grid, time axis,
    /// calendar, units, storage type. Later reads can then only fail on I/O or corruption.
    pub fn open(
        path: &Path,
        names: &VariableNames,
        needed: &[Variable],
    ) -> Result<ClimateFile, InputError> {
        ensure_regular_file(path)?;
        super::hdf5_quiet::quiet_hdf5_errors();
        bound_chunk_cache();
        let nc = netcdf::open(path).map_err(|e| {
            let kind = match e {
                netcdf::Error::Netcdf(NC_ENOTNC) => K::NotNetcdf(e.to_string()),
                _ => K::Corrupt(e.to_string()),
            };
            InputError::new(path, None, kind)
        })?;
        // The netcdf crate panics on a few "cannot happen" library errors (e.g. reading an
        // attribute of a damaged file): keep those an input error, never a crashed job.
        catch_unwind(AssertUnwindSafe(|| validate(path, nc, names, needed)))
            .unwrap_or_else(|p| Err(InputError::new(path, None, K::Corrupt(panic_message(&p)))))
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// (lat, lon) of every point, in file order.
    pub fn points(&self) -> &[(f64, f64)] {
        &self.points
    }

    pub fn layout(&self) -> Layout {
        self.layout
    }

    /// The date of every time step (increasing; days between steps are missing days).
    pub fn dates(&self) -> &[CfDate] {
        &self.dates
    }

    /// The calendar day number ([`Calendar::day_number`]) of every time step.
    pub fn day_numbers(&self) -> &[i64] {
        &self.day_numbers
    }

    pub fn calendar(&self) -> Calendar {
        self.calendar
    }

    pub fn time_len(&self) -> usize {
        self.dates.len()
    }

    /// Units of a validated variable; `None` if it was not among `needed` at open.
    pub fn units(&self, var: Variable) -> Option<Unit> {
        self.vars[var.index()].as_ref().map(|m| m.unit)
    }

    /// Storage precision of a validated variable (thresholds are compared at this precision).
    pub fn precision(&self, var: Variable) -> Option<Precision> {
        self.vars[var.index()].as_ref().map(|m| m.precision)
    }

    /// Name of the variable in the file, if it was validated.
    pub fn variable_name(&self, var: Variable) -> Option<&str> {
        self.vars[var.index()].as_ref().map(|m| m.name.as_str())
    }

    /// The `experiment_id` global attribute (e.g. `ssp245`), if present.
    pub fn scenario(&self) -> Option<&str> {
        self.scenario.as_deref()
    }

    /// Values of `var` for `time` × `points`, time-major (t outer, point inner), in the file's
    /// units, missing values as NaN.
    pub fn read_block(
        &self,
        var: Variable,
        time: Range<usize>,
        points: Range<usize>,
    ) -> Result<Vec<f32>, InputError> {
        let meta = self.meta(var)?;
        match meta.precision {
            Precision::F32 => {
                let mut out = Vec::new();
                self.read_native::<f32>(meta, time, points, &mut out, &mut Vec::new())?;
                Ok(out)
            }
            Precision::F64 => {
                let mut out = Vec::new();
                self.read_native::<f64>(meta, time, points, &mut out, &mut Vec::new())?;
                Ok(out.into_iter().map(|v| v as f32).collect())
            }
        }
    }

    /// Whether `var` is stored in chunks much longer in time than a year (read in point ranges
    /// through a time slab, see [`slab`]).
    pub(crate) fn long_time_chunks(&self, var: Variable) -> bool {
        self.vars[var.index()]
            .as_ref()
            .is_some_and(|m| m.long_time_chunks)
    }

    /// Whether reads of `var` fetch the stored HDF5 chunks and decompress them here, outside
    /// the library lock (see `climate::direct_read`); otherwise libnetcdf reads.
    pub fn reads_stored_chunks_directly(&self, var: Variable) -> bool {
        self.direct_vars[var.index()].is_some()
    }

    pub(crate) fn meta_for(&self, var: Variable) -> Result<(&str, Precision), InputError> {
        let m = self.meta(var)?;
        Ok((&m.name, m.precision))
    }

    fn meta(&self, var: Variable) -> Result<&VarMeta, InputError> {
        self.vars[var.index()].as_ref().ok_or_else(|| {
            InputError::new(
                &self.path,
                Some(&var.to_string()),
                K::Invalid("variable was not validated when the file was opened".into()),
            )
        })
    }

    /// Reads a block in the variable's storage type into `out` (resized), using `scratch` for
    /// whole grid rows when the point range cuts rows.
    pub(crate) fn read_native_var<T: NcSample>(
        &self,
        var: Variable,
        time: Range<usize>,
        points: Range<usize>,
        out: &mut Vec<T>,
        scratch: &mut Vec<T>,
    ) -> Result<(), InputError> {
        let meta = self.meta(var)?;
        self.read_native(meta, time, points, out, scratch)
    }

    fn read_native<T: NcSample>(
        &self,
        meta: &VarMeta,
        time: Range<usize>,
        points: Range<usize>,
        out: &mut Vec<T>,
        scratch: &mut Vec<T>,
    ) -> Result<(), InputError> {
        if time.start > time.end
            || time.end > self.dates.len()
            || points.start > points.end
            || points.end > self.points.len()
        {
            return Err(InputError::new(
                &self.path,
                Some(&meta.name),
                K::Invalid(format!(
                    "block time {time:?} × points {points:?} is outside the file ({} days × {} \
                     points)",
                    self.dates.len(),
                    self.points.len()
                )),
            ));
        }
        out.clear();
        if time.is_empty() || points.is_empty() {
            return Ok(());
        }
        if meta.long_time_chunks {
            // One lock per variable: a pass decodes its variables' slabs on parallel threads.
            let mut guard = self.slabs[meta.slot]
                .lock()
                .unwrap_or_else(|p| p.into_inner());
            let held = &mut *guard;
            if held.as_ref().is_some_and(|s| s.serve(&time, &points, out)) {
                return Ok(());
            }
            let raw_size = if meta.decoding.is_packed() { 8 } else { 0 };
            let bytes = std::mem::size_of::<T>() + raw_size;
            if let Some(win) = slab::window(&time, points.len(), self.dates.len(), bytes) {
                // The old window's allocation holds the next: a fresh one of several MB per
                // pass would be mapped and page-faulted in anew each time.
                let mut values = held
                    .take()
                    .and_then(|old| T::reuse(old.data))
                    .unwrap_or_default();
                let order = if self.read_direct(meta, &win, &points, &mut values)? {
                    Order::PointMajor
                } else {
                    // A local scratch: a window-sized buffer must not outlive this read.
                    let mut window_scratch = Vec::new();
                    self.read_decoded(
                        meta,
                        win.clone(),
                        points.clone(),
                        &mut values,
                        &mut window_scratch,
                    )?;
                    Order::TimeMajor
                };
                let new = Slab {
                    time: win,
                    points: points.clone(),
                    data: T::wrap(values),
                    order,
                };
                new.serve(&time, &points, out);
                *held = Some(new);
                return Ok(());
            }
        }
        self.read_decoded(meta, time, points, out, scratch)
    }

    /// Reads a block and decodes it: packed values through their scale and offset, fill values
    /// and values outside the valid range as NaN.
    fn read_decoded<T: NcSample>(
        &self,
        meta: &VarMeta,
        time: Range<usize>,
        points: Range<usize>,
        out: &mut Vec<T>,
        scratch: &mut Vec<T>,
    ) -> Result<(), InputError> {
        if meta.decoding.is_packed() {
            let (mut raw, mut raw_scratch) = (Vec::<f64>::new(), Vec::<f64>::new());
            self.read_raw(meta, time, points, &mut raw, &mut raw_scratch)?;
            meta.decoding.decode_into(&raw, out);
        } else {
            if self.read_direct(meta, &time, &points, scratch)? {
                slab::time_major(scratch, time.len(), 0..time.len(), points.len(), out);
            } else {
                self.read_raw(meta, time, points, out, scratch)?;
                mask(out, &meta.decoding);
            }
        }
        Ok(())
    }

    /// Reads and decodes (masks) stored values through [`direct_read`](super::direct_read),
    /// point-major, when the variable allows it; `false` when the block must be read through
    /// libnetcdf instead (`out` is then unspecified).
    fn read_direct<T: NcSample>(
        &self,
        meta: &VarMeta,
        time: &Range<usize>,
        points: &Range<usize>,
        out: &mut Vec<T>,
    ) -> Result<bool, InputError> {
        // Only unpacked float variables are opened for direct reads (`with_direct_reads`).
        let Some(direct) = &self.direct_vars[meta.slot] else {
            return Ok(false);
        };
        // A never-written chunk makes HDF5 1.10 report an error (then the library reads it):
        // keep its error stack off stderr on this thread too.
        super::hdf5_quiet::quiet_hdf5_errors();
        match direct.read_series(time.clone(), points.clone(), out) {
            Ok(Direct::Done) => {
                mask(out, &meta.decoding);
                Ok(true)
            }
            Ok(Direct::NotHandled) => Ok(false),
            Err(why) => Err(InputError::new(
                &self.path,
                Some(&meta.name),
                K::Corrupt(format!("{why} (reading steps {time:?})")),
            )),
        }
    }

    /// Reads stored values (converted by libnetcdf into `U`) into `out`, using `scratch` for
    /// whole grid rows when the point range cuts rows.
    fn read_raw<U: NcTypeDescriptor + Copy + Default>(
        &self,
        meta: &VarMeta,
        time: Range<usize>,
        points: Range<usize>,
        out: &mut Vec<U>,
        scratch: &mut Vec<U>,
    ) -> Result<(), InputError> {
        super::hdf5_quiet::quiet_hdf5_errors();
        let err = |kind| InputError::new(&self.path, Some(&meta.name), kind);
        let (nt, np) = (time.len(), points.len());
        out.clear();
        let result = catch_unwind(AssertUnwindSafe(|| {
            let var = self
                .nc
                .variable(&meta.name)
                .ok_or_else(|| K::Corrupt("variable disappeared".into()))?;
            let read = |buf: &mut Vec<U>, ext: Vec<Extent>| {
                var.get_values_into(buf.as_mut_slice(), Extents::from(ext))
                    .map_err(|e| K::Corrupt(format!("{e} (reading steps {time:?})")))
            };
            match self.layout {
                Layout::Points { .. } => {
                    out.resize(nt * np, U::default());
                    read(out, vec![time.clone().into(), points.clone().into()])
                }
                Layout::Grid { nlon, .. } => {
                    let r0 = points.start / nlon;
                    let r1 = (points.end - 1) / nlon + 1;
                    let ext = vec![time.clone().into(), (r0..r1).into(), (0..nlon).into()];
                    if points.start == r0 * nlon && points.end == r1 * nlon {
                        out.resize(nt * np, U::default());
                        return read(out, ext);
                    }
                    let row_len = (r1 - r0) * nlon;
                    scratch.clear();
                    scratch.resize(nt * row_len, U::default());
                    read(scratch, ext)?;
                    let off = points.start - r0 * nlon;
                    out.reserve(nt * np);
                    for t in 0..nt {
                        let base = t * row_len + off;
                        out.extend_from_slice(&scratch[base..base + np]);
                    }
                    Ok(())
                }
            }
        }));
        match result {
            Ok(Ok(())) => Ok(()),
            Ok(Err(kind)) => Err(err(kind)),
            Err(p) => Err(err(K::Corrupt(panic_message(&p)))),
        }
    }
}

/// Replaces fill / missing values and values outside the valid range with NaN (NaN already is
/// missing) in values stored unpacked.
fn mask<T: NcSample>(values: &mut [T], decoding: &Decoding) {
    let fills = decoding.fills.as_slice();
    if decoding.has_valid_range() {
        let (lo, hi) = decoding.valid;
        for v in values.iter_mut() {
            let x = v.to_f64();
            if x < lo || x > hi || fills.contains(&x) {
                *v = T::NAN;
            }
        }
        return;
    }
    match fills {
        [] => {}
        [f] => {
            for v in values.iter_mut() {
                if v.to_f64() == *f {
                    *v = T::NAN;
                }
            }
        }
        _ => {
            for v in values.iter_mut() {
                let x = v.to_f64();
                if fills.contains(&x) {
                    *v = T::NAN;
                }
            }
        }
    }
}

fn panic_message(p: &Box<dyn std::any::Any + Send>) -> String {
    let msg = p
        .downcast_ref::<String>()
        .map(String::as_str)
        .or_else(|| p.downcast_ref::<&str>().copied())
        .unwrap_or("unknown error");
    format!("netcdf library error: {msg}")
}

fn attr_string(v: AttributeValue) -> Option<String> {
    match v {
        AttributeValue::Str(s) => Some(s),
        AttributeValue::Strs(v) => Some(v.join(" ")),
        _ => None,
    }
}

/// libnetcdf reads the missing tail of a truncated netCDF classic file as zeros instead of
/// failing, so compare the file size with the bytes its variables need (a lower bound: the header
/// and padding are not counted). netCDF-4 (HDF5) files fail on their own.
fn check_classic_size(path: &Path, nc: &netcdf::File) -> Result<(), InputError> {
    use std::io::Read;
    let io = |e: std::io::Error| InputError::new(path, None, K::Io(e.to_string()));
    let mut magic = [0u8; 4];
    let mut f = std::fs::File::open(path).map_err(io)?;
    if f.read_exact(&mut magic).is_err() || &magic[..3] != b"CDF" {
        return Ok(());
    }
    let size = f.metadata().map_err(io)?.len();
    let needed: u64 = nc
        .variables()
        .map(|v| (v.len() as u64).saturating_mul(v.vartype().size() as u64))
        .fold(0, u64::saturating_add);
    if size < needed {
        return Err(InputError::new(
            path,
            None,
            K::Corrupt(format!(
                "netCDF classic file is {size} bytes but its variables need at least {needed}"
            )),
        ));
    }
    Ok(())
}

fn validate(
    path: &Path,
    nc: netcdf::File,
    names: &VariableNames,
    needed: &[Variable],
) -> Result<ClimateFile, InputError> {
    let at = |var: Option<&str>, kind| InputError::new(path, var, kind);
    let corrupt = |var: Option<&str>, e: netcdf::Error| at(var, K::Corrupt(e.to_string()));
    check_classic_size(path, &nc)?;

    let mut vars: [Option<VarMeta>; 3] = [None, None, None];
    let mut layout_dims: Option<(String, Vec<(String, usize)>)> = None;
    let mut data_coordinates: Vec<String> = Vec::new();
    for &v in needed {
        let name = names.get(v);
        let var = nc
            .variable(name)
            .ok_or_else(|| at(Some(name), K::MissingVariable))?;
        let decoding = packing::decoding_for(&var.vartype(), |attr| {
            var.attribute_value(attr)
                .transpose()
                .map_err(|e| format!("cannot read attribute {attr}: {e}"))
        })
        .map_err(|why| at(Some(name), K::BadData(why)))?;
        let expected = if v.is_temperature() {
            "K or degC"
        } else {
            "kg m-2 s-1, mm/day, or m/day (m: daily totals)"
        };
        let units_attr = var
            .attribute_value("units")
            .transpose()
            .map_err(|e| corrupt(Some(name), e))?
            .ok_or_else(|| at(Some(name), K::NoUnits { expected }))?;
        let units_str =
            attr_string(units_attr.clone()).unwrap_or_else(|| format!("{units_attr:?}"));
        let parsed = if v.is_temperature() {
            units::parse_temperature(&units_str)
        } else {
            units::parse_precipitation(&units_str)
        };
        let unit = parsed.ok_or_else(|| {
            at(
                Some(name),
                K::UnknownUnits {
                    units: units_str.clone(),
                    expected,
                },
            )
        })?;
        let dims = dims_of(&var);
        match &layout_dims {
            None => {
                layout_dims = Some((name.to_owned(), dims.clone()));
                if let Some(c) = var
                    .attribute_value("coordinates")
                    .transpose()
                    .map_err(|e| corrupt(Some(name), e))?
                    .and_then(attr_string)
                {
                    data_coordinates = c.split_whitespace().map(str::to_owned).collect();
                }
            }
            Some((first, d)) if *d != dims => {
                return Err(at(
                    Some(name),
                    K::BadGrid(format!(
                        "dimensions {dims:?} differ from those of \"{first}\" {d:?}"
                    )),
                ));
            }
            Some(_) => {}
        }
        // Chunks much longer in time than a year: serve year reads from a time slab.
        let long_time_chunks = matches!(
            var.chunking().map_err(|e| corrupt(Some(name), e))?,
            Some(c) if c.first().is_some_and(|&t| t > 2 * 366)
        );
        vars[v.index()] = Some(VarMeta {
            name: name.to_owned(),
            unit,
            precision: decoding.precision,
            decoding,
            long_time_chunks,
            slot: v.index(),
        });
    }
    let Some((first_var, dims)) = layout_dims else {
        return Err(at(None, K::Invalid("no variables requested".into())));
    };
    let first = Some(first_var.as_str());

    // Time axis: the data's first dimension, described by a 1-D variable of that dimension
    // (its coordinate variable, or `time` / `valid_time` (ERA5) / `XTIME` (WRF)).
    let time_var = find_time_variable(&nc, &dims, &data_coordinates)
        .map_err(|why| at(first, K::NoTimeAxis(why)))?;

    let grid =
        grid::locate(&nc, &dims, &data_coordinates).map_err(|why| at(first, K::BadGrid(why)))?;
    let layout = match grid.shape {
        Some((nlat, nlon)) => Layout::Grid { nlat, nlon },
        None => Layout::Points {
            n: grid.points.len(),
        },
    };
    let points = grid.points;

    let (calendar, day_numbers, dates) = read_time_axis(path, &time_var)?;

    let scenario = nc
        .attribute("experiment_id")
        .map(|a| a.value())
        .transpose()
        .map_err(|e| corrupt(None, e))?
        .and_then(attr_string)
        .map(|s| s.trim().to_owned())
        .filter(|s| !s.is_empty());

    let file = ClimateFile {
        path: path.to_owned(),
        nc,
        layout,
        points,
        dates,
        day_numbers,
        calendar,
        scenario,
        vars,
        slabs: [Mutex::new(None), Mutex::new(None), Mutex::new(None)],
        direct_vars: [None, None, None],
        direct_file: None,
    };
    let file = with_direct_reads(file, &dims);
    // Read the last time step of each variable: a truncated file fails here, at open, rather
    // than half-way through a batch. Files chunked along time hold each point's whole series in
    // one chunk: there the last point's step is enough to reach the end of the data without
    // decompressing the whole file (HDF5 itself refuses a file shorter than its superblock says).
    let last = file.dates.len() - 1;
    let npts = file.points.len();
    for &v in needed {
        if npts > 0 {
            let long = file.meta(v)?.long_time_chunks;
            let pts = if long { npts - 1..npts } else { 0..npts };
            file.read_block(v, last..last + 1, pts)?;
        }
    }
    Ok(file)
}

/// Opens the stored chunks of variables with `long_time_chunks` for direct reads, where the
/// storage allows (see [`direct_read`](super::direct_read)); otherwise the file reads through
/// libnetcdf as before.
fn with_direct_reads(mut file: ClimateFile, dims: &[(String, usize)]) -> ClimateFile {
    let nt = file.dates.len();
    let extent: Vec<usize> = match file.layout {
        Layout::Grid { nlat, nlon } => vec![nt, nlat, nlon],
        Layout::Points { n } => vec![nt, n],
    };
    // The direct reader indexes points as y * nx + x over the data's own dimensions.
    let same = dims.len() == extent.len() && dims.iter().zip(&extent).all(|((_, a), b)| a == b);
    let wanted: Vec<(usize, String, usize)> = file
        .vars
        .iter()
        .flatten()
        .filter(|m| m.long_time_chunks && !m.decoding.is_packed())
        .map(|m| {
            let elem = match m.precision {
                Precision::F32 => 4,
                Precision::F64 => 8,
            };
            (m.slot, m.name.clone(), elem)
        })
        .collect();
    if !same || wanted.is_empty() {
        return file;
    }
    let Some(direct) = DirectFile::open(&file.path) else {
        return file;
    };
    for (slot, name, elem) in wanted {
        file.direct_vars[slot] = direct.variable(&name, &extent, elem);
    }
    file.direct_file = Some(direct);
    file
}

/// The time axis of `time_var`: its calendar, each step's day number and
/// date. Steps that go backwards or repeat a day are refused ("not sorted" /
/// "duplicated"); a gap is kept (missing days).
fn read_time_axis(
    path: &Path,
    time_var: &netcdf::Variable<'_>,
) -> Result<(Calendar, Vec<i64>, Vec<CfDate>), InputError> {
    let at = |var: Option<&str>, kind| InputError::new(path, var, kind);
    let corrupt = |var: Option<&str>, e: netcdf::Error| at(var, K::Corrupt(e.to_string()));
    let time_name = time_var.name();
    let time_name = time_name.as_str();
    let time_attr = |attr: &str| -> Result<Option<String>, InputError> {
        Ok(time_var
            .attribute_value(attr)
            .transpose()
            .map_err(|e| corrupt(Some(time_name), e))?
            .and_then(attr_string))
    };
    let calendar = match time_attr("calendar")? {
        None => Calendar::Standard,
        Some(c) => {
            Calendar::parse(&c).ok_or_else(|| at(Some(time_name), K::UnsupportedCalendar(c)))?
        }
    };
    let time_units = time_attr("units")?.ok_or_else(|| {
        at(
            Some(time_name),
            K::NoTimeAxis(format!("\"{time_name}\" has no units attribute")),
        )
    })?;
    let raw_time = time_var
        .get_values::<f64, _>(..)
        .map_err(|e| corrupt(Some(time_name), e))?;
    if raw_time.is_empty() {
        return Err(at(
            Some(time_name),
            K::NoTimeAxis("the time axis is empty".into()),
        ));
    }
    check_time_order(&raw_time, &time_units, calendar)
        .map_err(|e| at(Some(time_name), K::BadTimeAxis(e)))?;
    let day_numbers = super::time_steps::decode_day_numbers(&raw_time, &time_units, calendar)
        .map_err(|e| at(Some(time_name), K::BadTimeAxis(e)))?;
    let dates = day_numbers.iter().map(|&n| calendar.date(n)).collect();

    Ok((calendar, day_numbers, dates))
}

fn is_time_name(name: &str) -> bool {
    matches!(name, "time" | "valid_time" | "XTIME")
}

fn has_since_units(var: &netcdf::Variable<'_>) -> bool {
    var.attribute_value("units")
        .and_then(Result::ok)
        .and_then(attr_string)
        .is_some_and(|u| u.to_ascii_lowercase().contains(" since "))
}

/// The 1-D variable that gives the dates of the data's first dimension.
fn find_time_variable<'f>(
    nc: &'f netcdf::File,
    dims: &[(String, usize)],
    data_coordinates: &[String],
) -> Result<netcdf::Variable<'f>, String> {
    let Some((time_dim, _)) = dims.first() else {
        return Err(format!("the data variable has no dimensions: {dims:?}"));
    };
    let mut candidates: Vec<&str> = vec![time_dim.as_str()];
    candidates.extend(data_coordinates.iter().map(String::as_str));
    candidates.extend(["time", "valid_time", "XTIME"]);
    let mut elsewhere = None;
    for name in candidates {
        let Some(var) = nc.variable(name) else {
            continue;
        };
        let vd = dims_of(&var);
        match vd.as_slice() {
            [(d, _)] if d == time_dim && (is_time_name(name) || has_since_units(&var)) => {
                return Ok(var);
            }
            _ if matches!(name, "time" | "valid_time") && elsewhere.is_none() => {
                elsewhere = Some((name.to_owned(), vd));
            }
            _ => {}
        }
    }
    Err(match elsewhere {
        Some((name, vd)) if vd.len() == 1 => format!(
            "first dimension should be the time dimension \"{}\" of \"{name}\", dimensions are \
             {dims:?}",
            vd[0].0
        ),
        Some((name, vd)) => format!("\"{name}\" is not one-dimensional: {vd:?}"),
        None => format!(
            "no \"time\" coordinate variable (looked for a 1-D variable on the first dimension \
             \"{time_dim}\", time, valid_time and XTIME); dimensions are {dims:?}"
        ),
    })
}

/// HDF5 chunk cache per variable for files opened from now on. libnetcdf's default (64 MiB per
/// variable here) grows with every chunk a read touches: three variables in two concurrent job
/// chunks reached ~400 MB on files chunked along time. Reads that would need a larger cache are
/// served from time slabs instead (see [`slab`]).
const CHUNK_CACHE_BYTES: usize = 4 << 20;

fn bound_chunk_cache() {
    static ONCE: std::sync::Once = std::sync::Once::new();
    ONCE.call_once(|| {
        let _guard = netcdf_sys::libnetcdf_lock.lock();
        // SAFETY: a plain setter of libnetcdf's global defaults, called under the lock the
        // netcdf crate holds around every libnetcdf call. Its status is ignored: if it fails,
        // the default cache stays, which is correct, only larger.
        unsafe {
            netcdf_sys::nc_set_chunk_cache(CHUNK_CACHE_BYTES, 1009, 0.75);
        }
    });
}

/// libnetcdf's "not a netCDF file" status (netcdf.h `NC_ENOTNC`).
const NC_ENOTNC: i32 = -51;
