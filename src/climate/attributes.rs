//! The global attributes and variable names of a NetCDF file: what a dataset's identity and a
//! file's share of the variables are read from, before the file is opened for its data.

use std::collections::BTreeMap;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::path::Path;

use netcdf::AttributeValue;

use super::error::{InputError, InputErrorKind as K};

/// Text global attributes (trimmed, empty ones left out) and every variable name.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FileAttributes {
    pub globals: BTreeMap<String, String>,
    pub variables: Vec<String>,
}

impl FileAttributes {
    pub fn get(&self, name: &str) -> Option<&str> {
        self.globals.get(name).map(String::as_str)
    }

    pub fn has_variable(&self, name: &str) -> bool {
        self.variables.iter().any(|v| v == name)
    }
}

/// Reads the global attributes of `path`. Errors name the file, as [`super::ClimateFile::open`]
/// would (a file that is missing or not NetCDF is reported here first).
pub fn read_attributes(path: &Path) -> Result<FileAttributes, InputError> {
    super::file::ensure_regular_file(path)?;
    super::hdf5_quiet::quiet_hdf5_errors();
    let nc = netcdf::open(path).map_err(|e| {
        let kind = match e {
            netcdf::Error::Netcdf(-51) => K::NotNetcdf(e.to_string()),
            _ => K::Corrupt(e.to_string()),
        };
        InputError::new(path, None, kind)
    })?;
    // The netcdf crate panics on a few library errors of damaged files: an input error.
    catch_unwind(AssertUnwindSafe(|| {
        let mut globals = BTreeMap::new();
        for attr in nc.attributes() {
            let value = attr
                .value()
                .map_err(|e| InputError::new(path, None, K::Corrupt(e.to_string())))?;
            let text = match value {
                AttributeValue::Str(s) => s,
                AttributeValue::Strs(v) => v.join(" "),
                _ => continue,
            };
            let text = text.trim();
            if !text.is_empty() {
                globals.insert(attr.name().to_owned(), text.to_owned());
            }
        }
        let variables = nc.variables().map(|v| v.name()).collect();
        Ok(FileAttributes { globals, variables })
    }))
    .unwrap_or_else(|_| {
        Err(InputError::new(
            path,
            None,
            K::Corrupt("netcdf library error reading the global attributes".into()),
        ))
    })
}
