//! Time slabs: decoded values of one variable for a window of time steps × a point range.
//!
//! Files chunked along time — (ntime, 1, 1) is common for station-like data — store each point's
//! whole series in one compressed HDF5 chunk. Reading them one calendar year at a time (as the
//! driver does) decompresses every chunk once per year, and HDF5's chunk cache holds them only by
//! growing to the whole file. Reading a window of many years for the point range once and serving
//! the year reads from it decompresses each chunk once per window, in bounded memory.

use std::ops::Range;

/// Memory for one variable's slab, decoded values plus the raw values read for them. Three
/// variables per open file: 96 MiB per job chunk at most (10 years × 2,000 points of float32 fit
/// in one window).
pub(crate) const SLAB_BYTES: usize = 32 << 20;

/// Decoded values, time-major (t outer, point inner).
#[derive(Debug)]
pub(crate) enum SlabData {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

#[derive(Debug)]
pub(crate) struct Slab {
    pub time: Range<usize>,
    pub points: Range<usize>,
    pub data: SlabData,
}

/// Values that can live in a slab.
pub(crate) trait SlabValue: Copy + Sized {
    fn values(data: &SlabData) -> Option<&[Self]>;
    fn wrap(values: Vec<Self>) -> SlabData;
}

impl SlabValue for f32 {
    fn values(data: &SlabData) -> Option<&[Self]> {
        match data {
            SlabData::F32(v) => Some(v),
            SlabData::F64(_) => None,
        }
    }
    fn wrap(values: Vec<Self>) -> SlabData {
        SlabData::F32(values)
    }
}

impl SlabValue for f64 {
    fn values(data: &SlabData) -> Option<&[Self]> {
        match data {
            SlabData::F64(v) => Some(v),
            SlabData::F32(_) => None,
        }
    }
    fn wrap(values: Vec<Self>) -> SlabData {
        SlabData::F64(values)
    }
}

/// The window to read for a request of `time` × `npoints` when each step of one point costs
/// `bytes_per_value`: from `time.start`, as many steps as fit in [`SLAB_BYTES`], at least the
/// request, within `0..ntime`. `None` if the request alone does not fit (read it directly).
pub(crate) fn window(
    time: &Range<usize>,
    npoints: usize,
    ntime: usize,
    bytes_per_value: usize,
) -> Option<Range<usize>> {
    let per_step = npoints.checked_mul(bytes_per_value)?.max(1);
    let steps = SLAB_BYTES / per_step;
    if steps < time.len() {
        return None;
    }
    Some(time.start..time.start.saturating_add(steps).min(ntime).max(time.end))
}

impl Slab {
    /// Copies `time` × `points` into `out` (cleared) if the slab holds them.
    pub fn serve<T: SlabValue>(
        &self,
        time: &Range<usize>,
        points: &Range<usize>,
        out: &mut Vec<T>,
    ) -> bool {
        let Some(values) = T::values(&self.data) else {
            return false;
        };
        if time.start < self.time.start
            || time.end > self.time.end
            || points.start < self.points.start
            || points.end > self.points.end
        {
            return false;
        }
        let width = self.points.len();
        let off = points.start - self.points.start;
        out.clear();
        out.reserve(time.len() * points.len());
        for t in time.clone() {
            let base = (t - self.time.start) * width + off;
            out.extend_from_slice(&values[base..base + points.len()]);
        }
        true
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn window_fits_the_budget_and_the_file() {
        assert_eq!(window(&(0..365), 1000, 3653, 4), Some(0..3653));
        let w = window(&(365..730), 10_000, 3653, 4).unwrap();
        assert_eq!(w.start, 365);
        assert_eq!(w.len(), SLAB_BYTES / 40_000);
        assert_eq!(window(&(0..366), 100_000, 3653, 4), None);
    }

    #[test]
    fn serves_sub_blocks() {
        let slab = Slab {
            time: 10..13,
            points: 5..8,
            data: SlabData::F32((0..9).map(|i| i as f32).collect()),
        };
        let mut out: Vec<f32> = Vec::new();
        assert!(slab.serve(&(11..13), &(6..8), &mut out));
        assert_eq!(out, vec![4.0, 5.0, 7.0, 8.0]);
        assert!(!slab.serve(&(9..11), &(5..8), &mut out));
        let mut wrong: Vec<f64> = Vec::new();
        assert!(!slab.serve(&(10..11), &(5..8), &mut wrong));
    }
}
