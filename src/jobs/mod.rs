//! Each job: its arguments, its plan, and the code of one task, over the
//! harness. The binaries in `src/bin/` only parse flags into these.

pub mod hazard_timeseries;
