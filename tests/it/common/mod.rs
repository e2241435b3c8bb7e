//! Writes small CF NetCDF files for tests (the netcdf crate can create them).
#![allow(dead_code)]

use std::path::{Path, PathBuf};
use std::sync::atomic::{AtomicUsize, Ordering};

/// A fresh directory under the system temp dir, removed when dropped.
pub struct TempDir(PathBuf);

impl TempDir {
    pub fn new(tag: &str) -> Self {
        static N: AtomicUsize = AtomicUsize::new(0);
        let dir = std::env::temp_dir().join(format!(
            "climate-jobs-{tag}-{}-{}",
            std::process::id(),
            N.fetch_add(1, Ordering::Relaxed)
        ));
        std::fs::create_dir_all(&dir).expect("create temp dir");
        TempDir(dir)
    }
    pub fn path(&self, name: &str) -> PathBuf {
        self.0.join(name)
    }
}

impl Drop for TempDir {
    fn drop(&mut self) {
        let _ = std::fs::remove_dir_all(&self.0);
    }
}

pub enum Data {
    F32(Vec<f32>),
    F64(Vec<f64>),
}

pub struct Var {
    pub name: String,
    pub units: Option<String>,
    pub data: Data,
    pub fill: Option<f64>,
    pub missing_value: Option<f64>,
}

impl Var {
    pub fn f32(name: &str, units: &str, data: Vec<f32>) -> Self {
        Var {
            name: name.into(),
            units: Some(units.into()),
            data: Data::F32(data),
            fill: None,
            missing_value: None,
        }
    }
    pub fn f64(name: &str, units: &str, data: Vec<f64>) -> Self {
        Var {
            data: Data::F64(data),
            ..Var::f32(name, units, Vec::new())
        }
    }
    pub fn fill(mut self, f: f64) -> Self {
        self.fill = Some(f);
        self
    }
    pub fn missing_value(mut self, f: f64) -> Self {
        self.missing_value = Some(f);
        self
    }
}

pub enum Grid {
    /// (time, lat, lon)
    LatLon { lats: Vec<f64>, lons: Vec<f64> },
    /// (time, point) with lat(point), lon(point); `lat_name` e.g. "latitude".
    Points {
        lats: Vec<f64>,
        lons: Vec<f64>,
        lat_name: &'static str,
        lon_name: &'static str,
    },
    /// Only (lat, lon): no time dimension at all.
    NoTime { lats: Vec<f64>, lons: Vec<f64> },
}

pub struct Spec {
    pub grid: Grid,
    pub time: Vec<f64>,
    pub time_units: String,
    pub calendar: Option<String>,
    pub vars: Vec<Var>,
    pub experiment_id: Option<String>,
    /// netCDF classic (CDF-1) instead of netCDF-4.
    pub classic: bool,
}

impl Spec {
    /// Daily steps from `start` ("YYYY-MM-DD") for `days` days at noon.
    pub fn daily(grid: Grid, start: &str, days: usize, calendar: Option<&str>) -> Self {
        Spec {
            grid,
            time: (0..days).map(|d| d as f64 + 0.5).collect(),
            time_units: format!("days since {start}"),
            calendar: calendar.map(str::to_owned),
            vars: Vec::new(),
            experiment_id: None,
            classic: false,
        }
    }

    pub fn npoints(&self) -> usize {
        match &self.grid {
            Grid::LatLon { lats, lons } | Grid::NoTime { lats, lons } => lats.len() * lons.len(),
            Grid::Points { lats, .. } => lats.len(),
        }
    }

    pub fn write(&self, path: &Path) {
        let mut f = if self.classic {
            netcdf::create_with(path, netcdf::Options::empty()).expect("create classic")
        } else {
            netcdf::create(path).expect("create")
        };
        // Define everything first, then write: netCDF classic cannot add variables in data mode.
        let (lats, lons, lat_name, lon_name, data_dims): (_, _, &str, &str, Vec<&str>) = match &self
            .grid
        {
            Grid::LatLon { lats, lons } => (lats, lons, "lat", "lon", vec!["time", "lat", "lon"]),
            Grid::NoTime { lats, lons } => (lats, lons, "lat", "lon", vec!["lat", "lon"]),
            Grid::Points {
                lats,
                lons,
                lat_name,
                lon_name,
            } => (lats, lons, *lat_name, *lon_name, vec!["time", "point"]),
        };
        let is_points = matches!(self.grid, Grid::Points { .. });
        if is_points {
            f.add_dimension("point", lats.len()).unwrap();
            f.add_variable::<f64>(lat_name, &["point"]).unwrap();
            f.add_variable::<f64>(lon_name, &["point"]).unwrap();
        } else {
            f.add_dimension("lat", lats.len()).unwrap();
            f.add_dimension("lon", lons.len()).unwrap();
            let mut v = f.add_variable::<f64>("lat", &["lat"]).unwrap();
            v.put_attribute("units", "degrees_north").unwrap();
            let mut v = f.add_variable::<f64>("lon", &["lon"]).unwrap();
            v.put_attribute("units", "degrees_east").unwrap();
        }
        let has_time = !matches!(self.grid, Grid::NoTime { .. });
        if has_time {
            f.add_unlimited_dimension("time").unwrap();
            let mut t = f.add_variable::<f64>("time", &["time"]).unwrap();
            t.put_attribute("units", self.time_units.as_str()).unwrap();
            if let Some(c) = &self.calendar {
                t.put_attribute("calendar", c.as_str()).unwrap();
            }
        }
        if let Some(e) = &self.experiment_id {
            f.add_attribute("experiment_id", e.as_str()).unwrap();
        }
        for var in &self.vars {
            match &var.data {
                Data::F32(_) => {
                    let mut v = f.add_variable::<f32>(&var.name, &data_dims).unwrap();
                    if let Some(u) = &var.units {
                        v.put_attribute("units", u.as_str()).unwrap();
                    }
                    if let Some(x) = var.fill {
                        v.put_attribute("_FillValue", x as f32).unwrap();
                    }
                    if let Some(x) = var.missing_value {
                        v.put_attribute("missing_value", x as f32).unwrap();
                    }
                }
                Data::F64(_) => {
                    let mut v = f.add_variable::<f64>(&var.name, &data_dims).unwrap();
                    if let Some(u) = &var.units {
                        v.put_attribute("units", u.as_str()).unwrap();
                    }
                    if let Some(x) = var.fill {
                        v.put_attribute("_FillValue", x).unwrap();
                    }
                    if let Some(x) = var.missing_value {
                        v.put_attribute("missing_value", x).unwrap();
                    }
                }
            }
        }
        if self.classic {
            f.enddef().unwrap();
        }
        f.variable_mut(lat_name)
            .unwrap()
            .put_values(lats, ..)
            .unwrap();
        f.variable_mut(lon_name)
            .unwrap()
            .put_values(lons, ..)
            .unwrap();
        let nt = self.time.len();
        if has_time {
            f.variable_mut("time")
                .unwrap()
                .put_values(&self.time, 0..nt)
                .unwrap();
        }
        let extents: Vec<netcdf::Extent> = match &self.grid {
            Grid::LatLon { lats, lons } => {
                vec![
                    (0..nt).into(),
                    (0..lats.len()).into(),
                    (0..lons.len()).into(),
                ]
            }
            Grid::NoTime { lats, lons } => vec![(0..lats.len()).into(), (0..lons.len()).into()],
            Grid::Points { lats, .. } => vec![(0..nt).into(), (0..lats.len()).into()],
        };
        for var in &self.vars {
            let mut v = f.variable_mut(&var.name).unwrap();
            let ext = netcdf::Extents::from(extents.clone());
            match &var.data {
                Data::F32(d) => v.put_values(d, ext).unwrap(),
                Data::F64(d) => v.put_values(d, ext).unwrap(),
            }
        }
        f.close().expect("close");
    }
}
