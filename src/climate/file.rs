//! [`ClimateFile`]: one daily CF NetCDF file, validated up front, read in time-major blocks.

use std::ops::Range;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::{Path, PathBuf};

use netcdf::types::{FloatType, NcVariableType};
use netcdf::{AttributeValue, Extent, Extents, NcTypeDescriptor};

use super::calendar::{Calendar, CfDate, decode_time};
use super::error::{InputError, InputErrorKind as K};
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
    /// `(time, lat, lon)`: point = ilat * nlon + ilon, in the file's latitude order.
    Grid { nlat: usize, nlon: usize },
    /// `(time, point)` with `lat(point)`, `lon(point)`.
    Points { n: usize },
}

/// What open() learned about one data variable.
#[derive(Debug, Clone)]
struct VarMeta {
    name: String,
    unit: Unit,
    precision: Precision,
    /// `_FillValue` / `missing_value`, already rounded to the storage precision.
    fills: Vec<f64>,
}

/// A daily climate projection file whose structure, time axis and units have been checked.
pub struct ClimateFile {
    path: PathBuf,
    nc: netcdf::File,
    layout: Layout,
    points: Vec<(f64, f64)>,
    dates: Vec<CfDate>,
    calendar: Calendar,
    scenario: Option<String>,
    vars: [Option<VarMeta>; 3],
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

/// Values read straight from the file in their storage type.
pub(crate) trait NcSample: Sample + NcTypeDescriptor + Default {
    const NAN: Self;
}
impl NcSample for f32 {
    const NAN: Self = f32::NAN;
}
impl NcSample for f64 {
    const NAN: Self = f64::NAN;
}

impl ClimateFile {
    /// Opens `path` and validates everything the `needed` variables require: grid, time axis,
    /// calendar, units, storage type. Later reads can then only fail on I/O or corruption.
    pub fn open(
        path: &Path,
        names: &VariableNames,
        needed: &[Variable],
    ) -> Result<ClimateFile, InputError> {
        match std::fs::metadata(path) {
            Ok(m) if m.is_dir() => {
                return Err(InputError::new(path, None, K::Io("is a directory".into())));
            }
            // Opening a FIFO waits for a writer forever; a device never ends.
            Ok(m) if !m.is_file() => {
                return Err(InputError::new(
                    path,
                    None,
                    K::Io("is not a regular file (a FIFO, socket or device)".into()),
                ));
            }
            Ok(_) => {}
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
                return Err(InputError::new(path, None, K::NotFound));
            }
            Err(e) => return Err(InputError::new(path, None, K::Io(e.to_string()))),
        }
        super::hdf5_quiet::quiet_hdf5_errors();
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

    /// The date of every time step (consecutive days).
    pub fn dates(&self) -> &[CfDate] {
        &self.dates
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
        super::hdf5_quiet::quiet_hdf5_errors();
        let err = |kind| InputError::new(&self.path, Some(&meta.name), kind);
        if time.start > time.end
            || time.end > self.dates.len()
            || points.start > points.end
            || points.end > self.points.len()
        {
            return Err(err(K::Invalid(format!(
                "block time {time:?} × points {points:?} is outside the file ({} days × {} points)",
                self.dates.len(),
                self.points.len()
            ))));
        }
        let (nt, np) = (time.len(), points.len());
        out.clear();
        if nt == 0 || np == 0 {
            return Ok(());
        }
        let result = catch_unwind(AssertUnwindSafe(|| {
            let var = self
                .nc
                .variable(&meta.name)
                .ok_or_else(|| K::Corrupt("variable disappeared".into()))?;
            let read = |buf: &mut Vec<T>, ext: Vec<Extent>| {
                var.get_values_into(buf.as_mut_slice(), Extents::from(ext))
                    .map_err(|e| K::Corrupt(format!("{e} (reading steps {time:?})")))
            };
            match self.layout {
                Layout::Points { .. } => {
                    out.resize(nt * np, T::default());
                    read(out, vec![time.clone().into(), points.clone().into()])
                }
                Layout::Grid { nlon, .. } => {
                    let r0 = points.start / nlon;
                    let r1 = (points.end - 1) / nlon + 1;
                    let ext = vec![time.clone().into(), (r0..r1).into(), (0..nlon).into()];
                    if points.start == r0 * nlon && points.end == r1 * nlon {
                        out.resize(nt * np, T::default());
                        return read(out, ext);
                    }
                    let row_len = (r1 - r0) * nlon;
                    scratch.clear();
                    scratch.resize(nt * row_len, T::default());
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
            Ok(Ok(())) => {}
            Ok(Err(kind)) => return Err(err(kind)),
            Err(p) => return Err(err(K::Corrupt(panic_message(&p)))),
        }
        mask_fills(out, &meta.fills);
        Ok(())
    }
}

/// Replaces fill / missing values with NaN (NaN already is missing).
fn mask_fills<T: NcSample>(values: &mut [T], fills: &[f64]) {
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

fn attr_numbers(v: AttributeValue) -> Vec<f64> {
    use AttributeValue as A;
    match v {
        A::Uchar(x) => vec![f64::from(x)],
        A::Uchars(x) => x.into_iter().map(f64::from).collect(),
        A::Schar(x) => vec![f64::from(x)],
        A::Schars(x) => x.into_iter().map(f64::from).collect(),
        A::Ushort(x) => vec![f64::from(x)],
        A::Ushorts(x) => x.into_iter().map(f64::from).collect(),
        A::Short(x) => vec![f64::from(x)],
        A::Shorts(x) => x.into_iter().map(f64::from).collect(),
        A::Uint(x) => vec![f64::from(x)],
        A::Uints(x) => x.into_iter().map(f64::from).collect(),
        A::Int(x) => vec![f64::from(x)],
        A::Ints(x) => x.into_iter().map(f64::from).collect(),
        A::Ulonglong(x) => vec![x as f64],
        A::Ulonglongs(x) => x.into_iter().map(|v| v as f64).collect(),
        A::Longlong(x) => vec![x as f64],
        A::Longlongs(x) => x.into_iter().map(|v| v as f64).collect(),
        A::Float(x) => vec![f64::from(x)],
        A::Floats(x) => x.into_iter().map(f64::from).collect(),
        A::Double(x) => vec![x],
        A::Doubles(x) => x,
        A::Str(_) | A::Strs(_) => Vec::new(),
    }
}

/// Name and length of each dimension of `var`.
fn dims_of(var: &netcdf::Variable<'_>) -> Vec<(String, usize)> {
    var.dimensions()
        .iter()
        .map(|d| (d.name(), d.len()))
        .collect()
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
    for &v in needed {
        let name = names.get(v);
        let var = nc
            .variable(name)
            .ok_or_else(|| at(Some(name), K::MissingVariable))?;
        let precision = match var.vartype() {
            NcVariableType::Float(FloatType::F32) => Precision::F32,
            NcVariableType::Float(FloatType::F64) => Precision::F64,
            other => return Err(at(Some(name), K::UnsupportedType(format!("{other:?}")))),
        };
        for packed in ["scale_factor", "add_offset"] {
            if var.attribute(packed).is_some() {
                return Err(at(
                    Some(name),
                    K::UnsupportedType(format!("packed data ({packed} attribute)")),
                ));
            }
        }
        let expected = if v.is_temperature() {
            "K or degC"
        } else {
            "kg m-2 s-1 or mm/day"
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
        let mut fills = Vec::new();
        for attr in ["_FillValue", "missing_value"] {
            if let Some(value) = var
                .attribute_value(attr)
                .transpose()
                .map_err(|e| corrupt(Some(name), e))?
            {
                for f in attr_numbers(value) {
                    let f = match precision {
                        Precision::F32 => f64::from(f as f32),
                        Precision::F64 => f,
                    };
                    if !f.is_nan() && !fills.contains(&f) {
                        fills.push(f);
                    }
                }
            }
        }
        let dims = dims_of(&var);
        match &layout_dims {
            None => layout_dims = Some((name.to_owned(), dims)),
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
        vars[v.index()] = Some(VarMeta {
            name: name.to_owned(),
            unit,
            precision,
            fills,
        });
    }
    let Some((first_var, dims)) = layout_dims else {
        return Err(at(None, K::Invalid("no variables requested".into())));
    };
    let first = Some(first_var.as_str());

    // Time axis: the first dimension, with a `time` coordinate variable.
    let time_var = nc.variable("time").ok_or_else(|| {
        at(
            None,
            K::NoTimeAxis("no \"time\" coordinate variable".into()),
        )
    })?;
    let time_dims = dims_of(&time_var);
    let [(time_dim, _)] = time_dims.as_slice() else {
        return Err(at(
            None,
            K::NoTimeAxis(format!("\"time\" is not one-dimensional: {time_dims:?}")),
        ));
    };
    if dims.first().map(|d| &d.0) != Some(time_dim) {
        return Err(at(
            first,
            K::NoTimeAxis(format!(
                "first dimension should be the time dimension \"{time_dim}\", dimensions are {dims:?}"
            )),
        ));
    }

    // Points: (time, lat, lon) or (time, point) with lat/lon coordinates on the point dim.
    let coord = |cands: &[&str]| {
        cands
            .iter()
            .find_map(|n| nc.variable(n).map(|v| ((*n).to_owned(), dims_of(&v))))
    };
    let (lat_name, lat_dims) = coord(&["lat", "latitude"]).ok_or_else(|| {
        at(
            None,
            K::BadGrid("no lat/latitude coordinate variable".into()),
        )
    })?;
    let (lon_name, lon_dims) = coord(&["lon", "longitude"]).ok_or_else(|| {
        at(
            None,
            K::BadGrid("no lon/longitude coordinate variable".into()),
        )
    })?;
    let one_dim = |d: &[(String, usize)]| match d {
        [(n, _)] => Some(n.clone()),
        _ => None,
    };
    let (lat_dim, lon_dim) = (one_dim(&lat_dims), one_dim(&lon_dims));
    let read_coord = |name: &str| -> Result<Vec<f64>, InputError> {
        let v = nc
            .variable(name)
            .ok_or_else(|| at(Some(name), K::MissingVariable))?;
        v.get_values::<f64, _>(..)
            .map_err(|e| corrupt(Some(name), e))
    };
    let lats = read_coord(&lat_name)?;
    let lons = read_coord(&lon_name)?;
    let (layout, points) = match dims.as_slice() {
        [_, (y, nlat), (x, nlon)] if lat_dim.as_ref() == Some(y) && lon_dim.as_ref() == Some(x) => {
            let pts = lats
                .iter()
                .flat_map(|&la| lons.iter().map(move |&lo| (la, lo)))
                .collect();
            (
                Layout::Grid {
                    nlat: *nlat,
                    nlon: *nlon,
                },
                pts,
            )
        }
        [_, (p, n)] if lat_dim.as_ref() == Some(p) && lon_dim.as_ref() == Some(p) => (
            Layout::Points { n: *n },
            lats.into_iter().zip(lons).collect(),
        ),
        _ => {
            return Err(at(
                first,
                K::BadGrid(format!(
                    "expected (time, lat, lon) or (time, point) with 1-D \"{lat_name}\" and \
                     \"{lon_name}\"; dimensions are {dims:?}, {lat_name}{lat_dims:?}, \
                     {lon_name}{lon_dims:?}"
                )),
            ));
        }
    };

    let time_attr = |attr: &str| -> Result<Option<String>, InputError> {
        Ok(time_var
            .attribute_value(attr)
            .transpose()
            .map_err(|e| corrupt(Some("time"), e))?
            .and_then(attr_string))
    };
    let calendar = match time_attr("calendar")? {
        None => Calendar::Standard,
        Some(c) => {
            Calendar::parse(&c).ok_or_else(|| at(Some("time"), K::UnsupportedCalendar(c)))?
        }
    };
    let time_units = time_attr("units")?.ok_or_else(|| {
        at(
            Some("time"),
            K::NoTimeAxis("\"time\" has no units attribute".into()),
        )
    })?;
    let raw_time = time_var
        .get_values::<f64, _>(..)
        .map_err(|e| corrupt(Some("time"), e))?;
    if raw_time.is_empty() {
        return Err(at(
            Some("time"),
            K::NoTimeAxis("the time axis is empty".into()),
        ));
    }
    let dates = decode_time(&raw_time, &time_units, calendar)
        .map_err(|e| at(Some("time"), K::BadTimeAxis(e)))?;

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
        calendar,
        scenario,
        vars,
    };
    // Read the last time step of each variable: a truncated file fails here, at open, rather
    // than half-way through a batch.
    let last = file.dates.len() - 1;
    let npts = file.points.len();
    for &v in needed {
        if npts > 0 {
            file.read_block(v, last..last + 1, 0..npts)?;
        }
    }
    Ok(file)
}

/// libnetcdf's "not a netCDF file" status (netcdf.h `NC_ENOTNC`).
const NC_ENOTNC: i32 = -51;
