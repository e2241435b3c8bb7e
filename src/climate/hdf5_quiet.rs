//! Silences HDF5's own error printing on the current thread.
//!
//! libnetcdf turns HDF5's automatic error stack printing off only on the
//! thread that initialises it; on any other thread, probing for an optional
//! attribute (which netCDF-4 does on every open) prints a page of
//! "HDF5-DIAG" noise to stderr, drowning the job's JSON logs. The errors
//! themselves still reach us as netCDF return codes.
//!
//! HDF5 is linked by libnetcdf, not by us, so the function is looked up at
//! run time; if it is not there (a netCDF built without HDF5), nothing is
//! printed anyway.

use std::cell::Cell;
use std::ffi::{c_int, c_void};

thread_local! {
    static QUIET: Cell<bool> = const { Cell::new(false) };
}

type SetAuto = unsafe extern "C" fn(estack: i64, func: *const c_void, data: *mut c_void) -> c_int;

/// Call before netCDF calls on a thread; cheap after the first time.
pub fn quiet_hdf5_errors() {
    if QUIET.with(|q| q.replace(true)) {
        return;
    }
    // HDF5 here is not thread-safe: every call into it, this one too, holds the lock the netcdf
    // crate takes around libnetcdf calls (reentrant). Without it a concurrent open on another
    // thread failed now and then with "NetCDF: HDF error".
    let _guard = netcdf_sys::libnetcdf_lock.lock();
    // SAFETY: dlsym with a NUL-terminated name; the symbol, when present,
    // is HDF5's `herr_t H5Eset_auto2(hid_t, H5E_auto2_t, void *)` (hid_t is
    // int64_t since HDF5 1.10). H5E_DEFAULT is 0; a null function turns
    // printing off for this thread's default error stack.
    unsafe {
        let sym = libc::dlsym(libc::RTLD_DEFAULT, c"H5Eset_auto2".as_ptr());
        if !sym.is_null() {
            let set_auto: SetAuto = std::mem::transmute::<*mut c_void, SetAuto>(sym);
            set_auto(0, std::ptr::null(), std::ptr::null_mut());
        }
    }
}
