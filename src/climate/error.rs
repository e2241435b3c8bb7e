use std::path::PathBuf;

/// Bad input data: the file, and where it applies the variable, plus what is wrong.
///
/// Displayed as `data/ssp245.nc: variable "pr": unknown units "x" (expected …)` so an operator
/// can fix the file without reading code; jobs map it to exit code 65.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
#[error("{}{}: {kind}", path.display(), variable.as_ref().map(|v| format!(": variable \"{v}\"")).unwrap_or_default())]
pub struct InputError {
    pub path: PathBuf,
    pub variable: Option<String>,
    pub kind: InputErrorKind,
}

/// What is wrong with an input file; one variant per case callers may want to tell apart.
#[derive(Debug, Clone, PartialEq, thiserror::Error)]
pub enum InputErrorKind {
    #[error("file not found")]
    NotFound,
    #[error("cannot read the file: {0}")]
    Io(String),
    #[error("not a NetCDF file ({0})")]
    NotNetcdf(String),
    #[error("read failed, the file may be truncated or corrupt ({0})")]
    Corrupt(String),
    #[error("variable not found in the file")]
    MissingVariable,
    #[error("unknown units \"{units}\" (expected {expected})")]
    UnknownUnits {
        units: String,
        expected: &'static str,
    },
    #[error("no units attribute (expected {expected})")]
    NoUnits { expected: &'static str },
    #[error("no time axis: {0}")]
    NoTimeAxis(String),
    #[error(
        "unsupported calendar \"{0}\" (supported: standard, gregorian, proleptic_gregorian, \
         noleap, 365_day, all_leap, 366_day, 360_day, julian)"
    )]
    UnsupportedCalendar(String),
    #[error("bad time axis: {0}")]
    BadTimeAxis(String),
    #[error("unsupported grid: {0}")]
    BadGrid(String),
    #[error("unsupported data type {0} (expected float or double)")]
    UnsupportedType(String),
    /// The data variable's storage type or packing attributes (`scale_factor`, `add_offset`,
    /// `_Unsigned`, fill values, valid range) cannot be decoded.
    #[error("{0}")]
    BadData(String),
    #[error("{0}")]
    Invalid(String),
}

impl InputError {
    pub fn new(path: impl Into<PathBuf>, variable: Option<&str>, kind: InputErrorKind) -> Self {
        Self {
            path: path.into(),
            variable: variable.map(str::to_owned),
            kind,
        }
    }
}
