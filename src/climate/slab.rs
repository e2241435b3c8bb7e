//! Time slabs: decoded values of one variable for a window of time steps × a point range.
//!
//! Files chunked along time — (ntime, 1, 1) is common for station-like data — store each point's
//! whole series in one compressed HDF5 chunk. Reading them one calendar year at a time (as the
//! driver does) decompresses every chunk once per year, and HDF5's chunk cache holds them only by
//! growing to the whole file. Reading a window of many years for the point range once and serving
//! the year reads from it decompresses each chunk once per window, in bounded memory.
//!
//! A slab the job decodes itself (`direct_read`) is kept point-major, the order the chunks hold:
//! each decoded chunk is one contiguous write, and a year block is turned time-major when served,
//! small enough then to stay in the cache. A slab read through libnetcdf is time-major.

use std::ops::Range;

/// Memory for one variable's slab, decoded values plus the raw values read for them. Three
/// variables per open file: 96 MiB per pass at most (the driver's passes of 125 points hold 80
/// years of float32 in one window, 15 MB).
pub(crate) const SLAB_BYTES: usize = 32 << 20;

/// Decoded values, in the slab's [`Order`].
#[derive(Debug)]
pub(crate) enum SlabData {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

/// How a slab's values are laid out.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Order {
    /// Each time step's points together, as the driver reads and libnetcdf returns blocks.
    TimeMajor,
    /// Each point's time steps together, as chunks of (ntime, 1, 1) store them: decoded without
    /// a scattered write, and turned time-major a year at a time when served, when that year's
    /// block fits in the cache.
    PointMajor,
}

#[derive(Debug)]
pub(crate) struct Slab {
    pub time: Range<usize>,
    pub points: Range<usize>,
    pub data: SlabData,
    pub order: Order,
}

/// Values that can live in a slab.
pub(crate) trait SlabValue: Copy + Default + Sized {
    fn values(data: &SlabData) -> Option<&[Self]>;
    fn wrap(values: Vec<Self>) -> SlabData;
    /// The slab's allocation, with its stale values, for the next window (`None` for another
    /// type): a reader that overwrites every value need not clear a buffer of the right size.
    fn reuse(data: SlabData) -> Option<Vec<Self>>;
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
    fn reuse(data: SlabData) -> Option<Vec<Self>> {
        match data {
            SlabData::F32(v) => Some(v),
            SlabData::F64(_) => None,
        }
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
    fn reuse(data: SlabData) -> Option<Vec<Self>> {
        match data {
            SlabData::F64(v) => Some(v),
            SlabData::F32(_) => None,
        }
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
        let off = points.start - self.points.start;
        let t0 = time.start - self.time.start;
        match self.order {
            Order::TimeMajor => {
                let width = self.points.len();
                out.clear();
                out.reserve(time.len() * points.len());
                for t in t0..t0 + time.len() {
                    let base = t * width + off;
                    out.extend_from_slice(&values[base..base + points.len()]);
                }
            }
            Order::PointMajor => {
                let first = off * self.time.len();
                time_major(
                    &values[first..],
                    self.time.len(),
                    t0..t0 + time.len(),
                    points.len(),
                    out,
                );
            }
        }
        true
    }
}

/// Points per strip of [`time_major`].
const STRIP_POINTS: usize = 32;

/// The steps `steps` of the first `npoints` point series of the point-major `series` (point k's
/// steps start at k * `stride`) into `out` (resized), time-major.
///
/// In strips of [`STRIP_POINTS`] series: each step writes one short run of `out` and reads one
/// value from each series of the strip, whose next values stay in the cache for the following
/// steps. A plain loop over either order strides through one side a value per cache line.
pub(crate) fn time_major<T: Copy + Default>(
    series: &[T],
    stride: usize,
    steps: Range<usize>,
    npoints: usize,
    out: &mut Vec<T>,
) {
    // Every value is overwritten: a buffer of the same size is not cleared first.
    out.resize(steps.len() * npoints, T::default());
    for p0 in (0..npoints).step_by(STRIP_POINTS) {
        let p1 = npoints.min(p0 + STRIP_POINTS);
        for (i, t) in steps.clone().enumerate() {
            let row = &mut out[i * npoints + p0..i * npoints + p1];
            for (k, o) in row.iter_mut().enumerate() {
                *o = series[(p0 + k) * stride + t];
            }
        }
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
            order: Order::TimeMajor,
        };
        let mut out: Vec<f32> = Vec::new();
        assert!(slab.serve(&(11..13), &(6..8), &mut out));
        assert_eq!(out, vec![4.0, 5.0, 7.0, 8.0]);
        assert!(!slab.serve(&(9..11), &(5..8), &mut out));
        let mut wrong: Vec<f64> = Vec::new();
        assert!(!slab.serve(&(10..11), &(5..8), &mut wrong));
    }

    #[test]
    fn point_major_slabs_serve_time_major_blocks() {
        // 40 points × 150 steps (a partial strip of 32 points), value = point * 1000 + step.
        let (np, nt) = (40usize, 150usize);
        let series: Vec<f64> = (0..np)
            .flat_map(|p| (0..nt).map(move |t| (p * 1000 + t) as f64))
            .collect();
        let slab = Slab {
            time: 100..100 + nt,
            points: 7..7 + np,
            data: SlabData::F64(series),
            order: Order::PointMajor,
        };
        let mut out: Vec<f64> = Vec::new();
        let (time, points) = (105..237, 9..44);
        assert!(slab.serve(&time, &points, &mut out));
        let want: Vec<f64> = time
            .clone()
            .flat_map(|t| {
                points
                    .clone()
                    .map(move |p| ((p - 7) * 1000 + t - 100) as f64)
            })
            .collect();
        assert_eq!(out, want);
        assert!(!slab.serve(&(99..101), &points, &mut out));
    }
}
