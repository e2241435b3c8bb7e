//! Reads compressed HDF5 storage chunks of a netCDF-4 variable directly and undoes their filters
//! (deflate, shuffle) here, outside the library's global lock.
//!
//! libnetcdf and HDF5 are not thread-safe, so every call into them holds one process-wide lock
//! (`netcdf_sys::libnetcdf_lock`). Through the library, decompression happens inside that lock:
//! two job chunks reading a zlib-compressed file decompress one after the other, and for files
//! chunked along time decompression is most of the read. Here only the raw bytes of each stored
//! chunk are fetched under the lock (`H5Dread_chunk`); inflating and un-shuffling run on the
//! caller's thread, in parallel with other readers.
//!
//! Only what is handled exactly is taken: chunked layout, little-endian IEEE floats, a filter
//! pipeline of at most shuffle then deflate. Anything else (fletcher32, szip or other filters, big
//! endian or integer storage, netCDF classic files) opens as `None`, and a stored chunk this code
//! cannot decode (never written, or stored with a filter skipped) makes the read answer
//! [`Direct::NotHandled`]: the caller then reads through libnetcdf as before.

use std::ffi::{CString, c_uint};
use std::ops::Range;
use std::path::Path;

use hdf5_sys::h5::{herr_t, hsize_t};
use hdf5_sys::h5d::{
    H5D_layout_t, H5Dclose, H5Dget_create_plist, H5Dget_space, H5Dget_type, H5Dopen2, H5Dread_chunk,
};
use hdf5_sys::h5f::{H5F_ACC_RDONLY, H5Fclose, H5Fopen};
use hdf5_sys::h5i::hid_t;
use hdf5_sys::h5p::{
    H5P_DEFAULT, H5Pclose, H5Pget_chunk, H5Pget_filter2, H5Pget_layout, H5Pget_nfilters,
};
use hdf5_sys::h5s::{H5Sclose, H5Sget_simple_extent_dims, H5Sget_simple_extent_ndims};
use hdf5_sys::h5t::{H5T_class_t, H5T_order_t, H5Tclose, H5Tget_class, H5Tget_order, H5Tget_size};
use hdf5_sys::h5z::{H5Z_FILTER_DEFLATE, H5Z_FILTER_SHUFFLE};

unsafe extern "C" {
    /// Stored (filtered) size of the chunk at `offset`, 0 if it was never written; HDF5 ≥
    /// 1.10.2, not declared by hdf5-sys. A chunk index lookup, where `H5Dget_chunk_info_by_coord`
    /// walks every chunk of the dataset in HDF5 1.10.
    fn H5Dget_chunk_storage_size(
        dset_id: hid_t,
        offset: *const hsize_t,
        chunk_bytes: *mut hsize_t,
    ) -> herr_t;
}

/// Largest stored chunk read directly (decoded size).
const MAX_CHUNK_BYTES: usize = 256 << 20;

/// Values a stored float variable decodes to, from little-endian bytes.
pub(crate) trait StoredFloat: Copy + Default {
    const SIZE: usize;
    /// The values of a decoded (inflated) chunk into `out`, which holds exactly as many values
    /// as the chunk, undoing HDF5's shuffle filter if `shuffled`.
    fn from_chunk(stored: &[u8], shuffled: bool, out: &mut [Self]);
}

impl StoredFloat for f32 {
    const SIZE: usize = 4;
    fn from_chunk(stored: &[u8], shuffled: bool, out: &mut [Self]) {
        if !shuffled {
            return from_chunk::<4, f32>(stored, false, out, f32::from_le_bytes);
        }
        // The four byte planes zipped: a loop the compiler vectorizes, 4× the tiled gather of
        // `from_chunk` (30,000 chunks of 3,652 values: 40 against 160 ms).
        let n = out.len().min(stored.len() / 4);
        let (b0, rest) = stored.split_at(n);
        let (b1, rest) = rest.split_at(n);
        let (b2, rest) = rest.split_at(n);
        let b3 = &rest[..n];
        for ((((o, &a), &b), &c), &d) in out.iter_mut().zip(b0).zip(b1).zip(b2).zip(b3) {
            *o = f32::from_bits(
                u32::from(a) | u32::from(b) << 8 | u32::from(c) << 16 | u32::from(d) << 24,
            );
        }
    }
}

impl StoredFloat for f64 {
    const SIZE: usize = 8;
    fn from_chunk(stored: &[u8], shuffled: bool, out: &mut [Self]) {
        from_chunk::<8, f64>(stored, shuffled, out, f64::from_le_bytes);
    }
}

/// [`StoredFloat::from_chunk`] for values of `N` bytes built by `value`.
///
/// HDF5's shuffle filter stores byte j of element k at j * n + k. The bytes are gathered a tile
/// of 16 elements at a time from fixed-size arrays (scalar code, byte by byte: float32 has its
/// own vectorized loop, this serves float64 and unshuffled chunks).
fn from_chunk<const N: usize, T: Copy>(
    stored: &[u8],
    shuffled: bool,
    out: &mut [T],
    value: fn([u8; N]) -> T,
) {
    const TILE: usize = 16;
    let n = out.len().min(stored.len() / N);
    if !shuffled {
        for (o, b) in out.iter_mut().zip(stored.chunks_exact(N)) {
            let mut a = [0u8; N];
            a.copy_from_slice(b);
            *o = value(a);
        }
        return;
    }
    let planes: [&[u8]; N] = std::array::from_fn(|j| &stored[j * n..(j + 1) * n]);
    let mut tile = [[0u8; TILE]; N];
    let whole = n - n % TILE;
    for (k0, values) in (0..whole).step_by(TILE).zip(out.chunks_exact_mut(TILE)) {
        for (row, plane) in tile.iter_mut().zip(&planes) {
            row.copy_from_slice(&plane[k0..k0 + TILE]);
        }
        for (i, v) in values.iter_mut().enumerate() {
            *v = value(std::array::from_fn(|j| tile[j][i]));
        }
    }
    for (k, v) in out.iter_mut().enumerate().take(n).skip(whole) {
        *v = value(std::array::from_fn(|j| planes[j][k]));
    }
}

/// Outcome of a direct read.
#[derive(Debug, PartialEq, Eq)]
pub(crate) enum Direct {
    /// `out` holds the values.
    Done,
    /// A stored chunk needs the library (unwritten, or a filter was skipped for it): read the
    /// block through libnetcdf instead. `out` is unspecified.
    NotHandled,
}

/// The netCDF-4 file opened a second time through HDF5 (HDF5 shares the open file with
/// libnetcdf's handle), holding the datasets read directly.
#[derive(Debug)]
pub(crate) struct DirectFile {
    file: hid_t,
}

/// One variable that can be read directly: a dataset of `(time, y, x)` or `(time, point)`
/// (seen as y = 1).
#[derive(Debug)]
pub(crate) struct DirectVar {
    dataset: hid_t,
    /// Dataset extent as (time, y, x).
    dims: [usize; 3],
    /// Stored chunk shape as (time, y, x).
    chunk: [usize; 3],
    /// Rank of the dataset (2 or 3): the coordinates given to HDF5.
    rank: usize,
    elem: usize,
    /// Decoded size of one stored chunk.
    chunk_bytes: usize,
    shuffle: bool,
    deflate: bool,
}

// SAFETY: the handles are plain integers; every use goes through the library lock.
unsafe impl Send for DirectVar {}
unsafe impl Sync for DirectVar {}

impl DirectFile {
    /// Opens `path` read-only through HDF5; `None` if HDF5 cannot (not a netCDF-4 file).
    pub fn open(path: &Path) -> Option<DirectFile> {
        use std::os::unix::ffi::OsStrExt;
        let name = CString::new(path.as_os_str().as_bytes()).ok()?;
        let _guard = netcdf_sys::libnetcdf_lock.lock();
        // SAFETY: NUL-terminated path, default access list; the id is checked.
        let file = unsafe { H5Fopen(name.as_ptr(), H5F_ACC_RDONLY, H5P_DEFAULT) };
        (file >= 0).then_some(DirectFile { file })
    }

    /// The dataset of netCDF variable `name` (a root-group variable is the dataset `/name`) if
    /// it is stored as this module can decode and its extent is `dims` (2 or 3 dimensions, time
    /// first); `None` otherwise.
    pub fn variable(&self, name: &str, dims: &[usize], elem: usize) -> Option<DirectVar> {
        let cname = CString::new(format!("/{name}")).ok()?;
        let _guard = netcdf_sys::libnetcdf_lock.lock();
        // SAFETY: valid file id and NUL-terminated name; the dataset id is checked, and closed
        // below unless kept.
        let dataset = unsafe { H5Dopen2(self.file, cname.as_ptr(), H5P_DEFAULT) };
        if dataset < 0 {
            return None;
        }
        // SAFETY: `dataset` is an open dataset id; `describe` closes what it opens.
        let described = unsafe { describe(dataset, dims, elem) };
        if described.is_none() {
            // SAFETY: closing the id opened above.
            unsafe { H5Dclose(dataset) };
        }
        described
    }
}

impl Drop for DirectFile {
    fn drop(&mut self) {
        let _guard = netcdf_sys::libnetcdf_lock.lock();
        // SAFETY: the id opened in `open`, closed once.
        unsafe { H5Fclose(self.file) };
    }
}

impl Drop for DirectVar {
    fn drop(&mut self) {
        let _guard = netcdf_sys::libnetcdf_lock.lock();
        // SAFETY: the id opened in `DirectFile::variable`, closed once.
        unsafe { H5Dclose(self.dataset) };
    }
}

/// Layout, type, filters and extent of `dataset`, if this module handles them.
///
/// # Safety
/// `dataset` is an open dataset id and the library lock is held.
unsafe fn describe(dataset: hid_t, dims: &[usize], elem: usize) -> Option<DirectVar> {
    let rank = dims.len();
    if !(rank == 2 || rank == 3) {
        return None;
    }
    // Extent.
    // SAFETY (all calls below): ids opened here are closed before returning; buffers are
    // sized for `rank` ≤ 3 dimensions, as the calls are told.
    let space = unsafe { H5Dget_space(dataset) };
    if space < 0 {
        return None;
    }
    let mut extent = [0 as hsize_t; 3];
    let ok = unsafe {
        H5Sget_simple_extent_ndims(space) == rank as i32
            && H5Sget_simple_extent_dims(space, extent.as_mut_ptr(), std::ptr::null_mut())
                == rank as i32
    };
    unsafe { H5Sclose(space) };
    if !ok
        || extent[..rank]
            .iter()
            .zip(dims)
            .any(|(&e, &d)| e as usize != d)
    {
        return None;
    }
    // Storage type: little-endian IEEE float of the expected size.
    let dtype = unsafe { H5Dget_type(dataset) };
    if dtype < 0 {
        return None;
    }
    let ok = unsafe {
        H5Tget_class(dtype) == H5T_class_t::H5T_FLOAT
            && H5Tget_size(dtype) == elem
            && H5Tget_order(dtype) == H5T_order_t::H5T_ORDER_LE
    };
    unsafe { H5Tclose(dtype) };
    if !ok {
        return None;
    }
    // Chunked layout and a pipeline of [shuffle] [deflate], in that order (write order).
    let dcpl = unsafe { H5Dget_create_plist(dataset) };
    if dcpl < 0 {
        return None;
    }
    let mut chunk = [0 as hsize_t; 3];
    let mut filters = Vec::new();
    let mut ok = unsafe {
        H5Pget_layout(dcpl) == H5D_layout_t::H5D_CHUNKED
            && H5Pget_chunk(dcpl, rank as i32, chunk.as_mut_ptr()) == rank as i32
    };
    let n = unsafe { H5Pget_nfilters(dcpl) };
    ok &= n >= 0;
    for i in 0..n.max(0) as c_uint {
        let (mut flags, mut config) = (0 as c_uint, 0 as c_uint);
        let mut cd = [0 as c_uint; 8];
        let mut ncd = cd.len();
        let id = unsafe {
            H5Pget_filter2(
                dcpl,
                i,
                &mut flags,
                &mut ncd,
                cd.as_mut_ptr(),
                0,
                std::ptr::null_mut(),
                &mut config,
            )
        };
        filters.push(id);
    }
    unsafe { H5Pclose(dcpl) };
    let (shuffle, deflate) = match filters.as_slice() {
        [] => (false, false),
        [a] if *a == H5Z_FILTER_SHUFFLE => (true, false),
        [a] if *a == H5Z_FILTER_DEFLATE => (false, true),
        [a, b] if *a == H5Z_FILTER_SHUFFLE && *b == H5Z_FILTER_DEFLATE => (true, true),
        _ => return None,
    };
    if !ok || chunk[..rank].contains(&0) {
        return None;
    }
    // A stored chunk is decoded whole: leave absurd chunk sizes to the library.
    let chunk_bytes = chunk[..rank]
        .iter()
        .try_fold(elem, |a, &c| a.checked_mul(usize::try_from(c).ok()?))
        .filter(|&b| b <= MAX_CHUNK_BYTES)?;
    let to3 = |v: &[hsize_t]| -> [usize; 3] {
        if rank == 3 {
            [v[0] as usize, v[1] as usize, v[2] as usize]
        } else {
            [v[0] as usize, 1, v[1] as usize]
        }
    };
    Some(DirectVar {
        dataset,
        dims: to3(&extent),
        chunk: to3(&chunk),
        rank,
        elem,
        chunk_bytes,
        shuffle,
        deflate,
    })
}

/// Buffers reused from one stored chunk to the next.
struct Buffers {
    inflater: libdeflater::Decompressor,
    raw: Vec<u8>,
    inflated: Vec<u8>,
}

impl DirectVar {
    /// Values for the steps `time` × the points `points` (flat index y * nx + x), point-major
    /// (each point's steps together, as a chunk of (ntime, 1, 1) stores them), into `out`
    /// (resized; unspecified if the answer is [`Direct::NotHandled`]). Each stored chunk the
    /// block touches is read and decoded once.
    pub fn read_series<T: StoredFloat>(
        &self,
        time: Range<usize>,
        points: Range<usize>,
        out: &mut Vec<T>,
    ) -> Result<Direct, String> {
        let [nt, ny, nx] = self.dims;
        let [ct, cy, cx] = self.chunk;
        if T::SIZE != self.elem
            || time.end > nt
            || points.end > ny * nx
            || time.is_empty()
            || points.is_empty()
        {
            return Ok(Direct::NotHandled);
        }
        let steps = time.len();
        // Every value is overwritten unless the read is not handled (`out` then unspecified):
        // a reused buffer of the right size is not cleared first.
        out.resize(steps * points.len(), T::default());
        let (r0, r1) = (points.start / nx, (points.end - 1) / nx + 1);
        // The columns of grid row r inside the request: only the first and last rows are partial.
        let cols = |r: usize| {
            let lo = if r == r0 { points.start % nx } else { 0 };
            let hi = if r == r1 - 1 {
                (points.end - 1) % nx + 1
            } else {
                nx
            };
            lo..hi
        };
        let mut buf = Buffers {
            inflater: libdeflater::Decompressor::new(),
            raw: Vec::new(),
            inflated: Vec::new(),
        };
        let mut decoded: Vec<T> = Vec::new();
        for ti in time.start / ct..(time.end - 1) / ct + 1 {
            let ts = ti * ct;
            let t_in = time.start.max(ts)..time.end.min(ts + ct);
            // Where the chunk's first wanted step goes in a point's series of `out`.
            let at = t_in.start - time.start;
            for yi in r0 / cy..(r1 - 1) / cy + 1 {
                let ys = yi * cy;
                let rows = r0.max(ys)..r1.min(ys + cy);
                // Columns any of these rows needs: only a lone row can be partial.
                let needed = if rows.len() == 1 {
                    cols(rows.start)
                } else {
                    0..nx
                };
                for xi in needed.start / cx..(needed.end - 1) / cx + 1 {
                    let xs = xi * cx;
                    if self.read_chunk([ts, ys, xs], &mut buf)? == Direct::NotHandled {
                        return Ok(Direct::NotHandled);
                    }
                    let stored: &[u8] = if self.deflate {
                        &buf.inflated
                    } else {
                        &buf.raw
                    };
                    if cy * cx == 1 && t_in.len() == ct {
                        // One point's whole chunk wanted: decode straight into its series.
                        let p = ys * nx + xs - points.start;
                        let series = &mut out[p * steps + at..p * steps + at + ct];
                        T::from_chunk(stored, self.shuffle, series);
                        continue;
                    }
                    decoded.resize(self.chunk_bytes / T::SIZE, T::default());
                    T::from_chunk(stored, self.shuffle, &mut decoded);
                    for r in rows.clone() {
                        // The columns of row r inside the request and inside this chunk.
                        let wanted = cols(r);
                        for c in wanted.start.max(xs)..wanted.end.min(xs + cx) {
                            let p = r * nx + c - points.start;
                            let series = &mut out[p * steps + at..p * steps + at + t_in.len()];
                            let first = (t_in.start - ts) * cy * cx + (r - ys) * cx + (c - xs);
                            let from = decoded[first..].iter().step_by(cy * cx);
                            for (o, v) in series.iter_mut().zip(from) {
                                *o = *v;
                            }
                        }
                    }
                }
            }
        }
        Ok(Direct::Done)
    }

    /// Fetches the stored chunk at `origin` (time, y, x) under the library lock and decodes it
    /// outside (inflated) into `buf`: `buf.inflated` with deflate, else `buf.raw`, each
    /// chunk-shaped (row-major) and still shuffled if the pipeline shuffles.
    fn read_chunk(&self, origin: [usize; 3], buf: &mut Buffers) -> Result<Direct, String> {
        let offset: [hsize_t; 3] = if self.rank == 3 {
            [
                origin[0] as hsize_t,
                origin[1] as hsize_t,
                origin[2] as hsize_t,
            ]
        } else {
            [origin[0] as hsize_t, origin[2] as hsize_t, 0]
        };
        {
            let _guard = netcdf_sys::libnetcdf_lock.lock();
            let mut size = 0 as hsize_t;
            // SAFETY: open dataset id; `offset` holds `rank` coordinates; out-pointer valid.
            let status =
                unsafe { H5Dget_chunk_storage_size(self.dataset, offset.as_ptr(), &mut size) };
            if status < 0 || size == 0 {
                // Never written (HDF5 1.10 fails here for such a chunk; later versions say 0):
                // the library gives fill values, and reports a damaged index if that is the cause.
                return Ok(Direct::NotHandled);
            }
            buf.raw.clear();
            buf.raw.resize(size as usize, 0);
            let mut filters = 0u32;
            // SAFETY: `raw` is `size` bytes, the stored size HDF5 just reported for this chunk.
            let status = unsafe {
                H5Dread_chunk(
                    self.dataset,
                    H5P_DEFAULT,
                    offset.as_ptr(),
                    &mut filters,
                    buf.raw.as_mut_ptr().cast(),
                )
            };
            if status < 0 {
                return Err(format!("cannot read the stored chunk at {origin:?}"));
            }
            if filters != 0 {
                // A filter was skipped for this chunk (HDF5 stores a chunk unfiltered when an
                // optional filter fails on it): rare, left to the library.
                return Ok(Direct::NotHandled);
            }
        }
        let bytes = self.chunk_bytes;
        if self.deflate {
            // Every byte is overwritten (checked below): no clearing between chunks.
            buf.inflated.resize(bytes, 0);
            let n = buf
                .inflater
                .zlib_decompress(&buf.raw, &mut buf.inflated)
                .map_err(|e| format!("stored chunk at {origin:?}: inflate: {e}"))?;
            if n != bytes {
                return Err(format!(
                    "stored chunk at {origin:?} inflates to {n} bytes, expected {bytes}"
                ));
            }
        } else if buf.raw.len() != bytes {
            return Err(format!(
                "stored chunk at {origin:?} is {} bytes, expected {bytes}",
                buf.raw.len()
            ));
        }
        Ok(Direct::Done)
    }
}

#[cfg(test)]
mod tests {
    use std::ops::Range;
    use std::path::PathBuf;

    use super::{Direct, DirectFile, StoredFloat};

    const NT: usize = 800;
    const NY: usize = 5;
    const NX: usize = 7;

    fn scratch(name: &str) -> PathBuf {
        let dir = std::env::temp_dir().join(format!("direct-read-{}", std::process::id()));
        std::fs::create_dir_all(&dir).unwrap();
        dir.join(name)
    }

    /// Values with repeats (so deflate has work), NaNs and a fill-like sentinel.
    fn values(n: usize, salt: u64) -> Vec<f64> {
        (0..n as u64)
            .map(|i| {
                let h = (i.wrapping_add(salt)).wrapping_mul(2_654_435_761) % 10_007;
                match h % 97 {
                    0 => f64::NAN,
                    1 => -999.0,
                    _ => (h % 400) as f64 / 10.0 - 5.0,
                }
            })
            .collect()
    }

    /// (name, chunk shape or None for contiguous, deflate level, shuffle).
    type Layout = (&'static str, Option<Vec<usize>>, i32, bool);

    fn write(path: &PathBuf, dims: &[(&str, usize)], f32_vars: &[Layout], f64_vars: &[Layout]) {
        let mut f = netcdf::create(path).unwrap();
        for (d, n) in dims {
            f.add_dimension(d, *n).unwrap();
        }
        let names: Vec<&str> = dims.iter().map(|d| d.0).collect();
        let len: usize = dims.iter().map(|d| d.1).product();
        for (i, (name, chunks, level, shuffle)) in f32_vars.iter().chain(f64_vars).enumerate() {
            let is_f32 = i < f32_vars.len();
            let mut v = if is_f32 {
                f.add_variable::<f32>(name, &names).unwrap()
            } else {
                f.add_variable::<f64>(name, &names).unwrap()
            };
            if let Some(c) = chunks {
                v.set_chunking(c).unwrap();
                if *level > 0 || *shuffle {
                    v.set_compression(*level, *shuffle).unwrap();
                }
            }
            let data = values(len, i as u64);
            if is_f32 {
                let data: Vec<f32> = data.iter().map(|&x| x as f32).collect();
                v.put_values(&data, ..).unwrap();
            } else {
                v.put_values(&data, ..).unwrap();
            }
        }
    }

    /// Every value of `var` through libnetcdf, as bits.
    fn library_bits(path: &PathBuf, var: &str, is_f32: bool) -> Vec<u64> {
        let f = netcdf::open(path).unwrap();
        let v = f.variable(var).unwrap();
        if is_f32 {
            let x: Vec<f32> = v.get_values(..).unwrap();
            x.iter().map(|x| x.to_bits() as u64).collect()
        } else {
            let x: Vec<f64> = v.get_values(..).unwrap();
            x.iter().map(|x| x.to_bits()).collect()
        }
    }

    fn blocks(nt: usize, np: usize, nx: usize) -> Vec<(Range<usize>, Range<usize>)> {
        let times = [0..nt, 0..1, nt - 1..nt, 250..617, 299..301];
        let points = [
            0..np,
            0..1,
            np - 1..np,
            3..np.min(3 + nx + 1),
            nx.min(np - 1)..np.min(2 * nx),
            np.min(6)..np.min(np - 6).max(np.min(6)),
        ];
        let mut out = Vec::new();
        for t in &times {
            for p in &points {
                if !p.is_empty() {
                    out.push((t.clone(), p.clone()));
                }
            }
        }
        out
    }

    #[test]
    fn direct_reads_equal_library_reads_bit_for_bit() {
        crate::climate::hdf5_quiet::quiet_hdf5_errors();
        let grid = scratch("grid.nc");
        let f32s: Vec<Layout> = vec![
            ("shuffle_deflate", Some(vec![NT, 1, 1]), 4, true),
            ("short_series", Some(vec![300, 1, 1]), 4, true),
            ("deflate_edges", Some(vec![300, 2, 3]), 6, false),
            ("no_filter", Some(vec![NT, 1, 1]), 0, false),
            ("contiguous", None, 0, false),
        ];
        let f64s: Vec<Layout> = vec![("double", Some(vec![NT, 1, 2]), 1, true)];
        write(
            &grid,
            &[("time", NT), ("lat", NY), ("lon", NX)],
            &f32s,
            &f64s,
        );
        let stations = scratch("stations.nc");
        let st: Vec<Layout> = vec![("station_series", Some(vec![NT, 1]), 4, true)];
        write(&stations, &[("time", NT), ("point", 11)], &st, &[]);

        let file = DirectFile::open(&grid).expect("a netCDF-4 file opens through HDF5");
        assert!(
            file.variable("contiguous", &[NT, NY, NX], 4).is_none(),
            "a contiguous variable is left to the library"
        );
        assert!(
            file.variable("shuffle_deflate", &[NT, NY, NX], 8).is_none(),
            "a storage type of another size is left to the library"
        );
        let mut compared = 0;
        let cases = [
            (&grid, "shuffle_deflate", true, vec![NT, NY, NX]),
            (&grid, "short_series", true, vec![NT, NY, NX]),
            (&grid, "deflate_edges", true, vec![NT, NY, NX]),
            (&grid, "no_filter", true, vec![NT, NY, NX]),
            (&grid, "double", false, vec![NT, NY, NX]),
            (&stations, "station_series", true, vec![NT, 11]),
        ];
        for (path, name, is_f32, dims) in cases {
            let f = DirectFile::open(path).unwrap();
            let elem = if is_f32 { 4 } else { 8 };
            let var = f
                .variable(name, &dims, elem)
                .unwrap_or_else(|| panic!("{name} is read directly"));
            let all = library_bits(path, name, is_f32);
            let np: usize = dims[1..].iter().product();
            let nx = *dims.last().unwrap();
            for (time, points) in blocks(NT, np, nx) {
                let got: Vec<u64> = if is_f32 {
                    let mut out: Vec<f32> = Vec::new();
                    assert_eq!(
                        var.read_series(time.clone(), points.clone(), &mut out),
                        Ok(Direct::Done)
                    );
                    out.iter().map(|x| x.to_bits() as u64).collect()
                } else {
                    let mut out: Vec<f64> = Vec::new();
                    assert_eq!(
                        var.read_series(time.clone(), points.clone(), &mut out),
                        Ok(Direct::Done)
                    );
                    out.iter().map(|x| x.to_bits()).collect()
                };
                // Point-major: each point's steps together.
                let want: Vec<u64> = points
                    .clone()
                    .flat_map(|p| time.clone().map(move |t| (t, p)))
                    .map(|(t, p)| all[t * np + p])
                    .collect();
                assert_eq!(got.len(), want.len(), "{name} {time:?} × {points:?}");
                if let Some(i) = got.iter().zip(&want).position(|(a, b)| a != b) {
                    panic!(
                        "{name} {time:?} × {points:?}: value {i} differs: {:#x} vs library {:#x}",
                        got[i], want[i]
                    );
                }
                compared += got.len();
            }
        }
        assert!(compared > 100_000, "compared {compared} values");
    }

    #[test]
    fn unwritten_chunks_are_left_to_the_library() {
        crate::climate::hdf5_quiet::quiet_hdf5_errors();
        let path = scratch("partial.nc");
        {
            let mut f = netcdf::create(&path).unwrap();
            f.add_dimension("time", NT).unwrap();
            f.add_dimension("point", 4).unwrap();
            let mut v = f.add_variable::<f32>("tasmax", &["time", "point"]).unwrap();
            v.set_chunking(&[NT, 1]).unwrap();
            v.set_compression(4, true).unwrap();
            // Points 0 and 1 only: the chunks of points 2 and 3 are never written.
            v.put_values(&vec![280.5f32; NT * 2], (.., 0..2)).unwrap();
        }
        let file = DirectFile::open(&path).unwrap();
        let var = file.variable("tasmax", &[NT, 4], 4).unwrap();
        let mut out: Vec<f32> = Vec::new();
        assert_eq!(var.read_series(0..NT, 0..2, &mut out), Ok(Direct::Done));
        assert!(out.iter().all(|&x| x == 280.5));
        assert_eq!(
            var.read_series(0..NT, 1..3, &mut out),
            Ok(Direct::NotHandled)
        );
    }

    #[test]
    fn chunks_unshuffle_into_values() {
        // Little-endian values shuffled as HDF5 does: all first bytes, then all second bytes…
        // 37 values: two whole tiles of 16 and a tail.
        fn shuffled<const N: usize>(plain: &[[u8; N]]) -> Vec<u8> {
            (0..N)
                .flat_map(|j| plain.iter().map(move |e| e[j]))
                .collect()
        }
        let f: Vec<f32> = (0..37).map(|i| i as f32 * -1.25 + 1e-3).collect();
        let bytes: Vec<[u8; 4]> = f.iter().map(|x| x.to_le_bytes()).collect();
        let mut got = vec![9.0f32; 37];
        f32::from_chunk(&shuffled(&bytes), true, &mut got);
        assert_eq!(got, f);
        let mut got = vec![9.0f32; 37];
        f32::from_chunk(&bytes.concat(), false, &mut got);
        assert_eq!(got, f);
        let d: Vec<f64> = (0..37).map(|i| i as f64 * 1e10 - 0.5).collect();
        let bytes: Vec<[u8; 8]> = d.iter().map(|x| x.to_le_bytes()).collect();
        let mut got = vec![0.0f64; 37];
        f64::from_chunk(&shuffled(&bytes), true, &mut got);
        assert_eq!(got, d);
    }
}
