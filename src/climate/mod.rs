//! Reading gridded daily climate projections (CF-convention NetCDF) and turning them into yearly
//! hazard indices.
//!
//! [`ClimateFile::open`] validates a file completely (grid, time axis, calendar, units), so a
//! job can refuse bad input before it writes anything; [`annual_indices`] then streams the file
//! time-major through the pure accumulators of [`crate::hazard`].

mod attributes;
mod calendar;
pub mod dataset;
mod direct_read;
mod driver;
mod error;
mod file;
mod grid;
mod hdf5_quiet;
mod packing;
mod slab;
mod time_steps;
pub mod units;

pub use crate::hazard::{Unit, Variable};
pub use attributes::{FileAttributes, read_attributes};
pub use calendar::{Calendar, CfDate, check_time_order, decode_time, parse_time_units};
pub use driver::{AnnualValue, Dataset, annual_indices, dataset_indices, dataset_indices_each};
pub use error::{InputError, InputErrorKind};
pub use file::{ClimateFile, Layout, VariableNames};
pub use grid::normalize_lon;
