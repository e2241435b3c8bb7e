//! Where the points of a file are: 1-D latitude/longitude axes, the (time, point) station layout,
//! or a curvilinear grid (rotated pole, Lambert conformal, WRF) with 2-D latitude/longitude
//! auxiliary coordinates. Points are always stored at geographic coordinates: axes that are not
//! (`grid_latitude`, `projection_x_coordinate`, plain `degrees`) are never taken as lat/lon.

use netcdf::AttributeValue;

/// Names under which data providers store geographic coordinates when no `coordinates`
/// attribute points to them (CF, NEMO, WRF).
const LAT_NAMES: [&str; 5] = ["lat", "latitude", "nav_lat", "XLAT", "XLAT_M"];
const LON_NAMES: [&str; 5] = ["lon", "longitude", "nav_lon", "XLONG", "XLONG_M"];

/// Which axis a coordinate variable describes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Axis {
    Lat,
    Lon,
}

/// What a coordinate variable's attributes say about it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum Kind {
    /// Geographic latitude / longitude.
    Geographic(Axis),
    /// Rotated or projected (`grid_latitude`, `projection_x_coordinate`, plain `degrees`, …).
    NotGeographic,
    /// Nothing says either way (no standard_name, no units).
    Unknown,
    /// Something else (e.g. a `height` coordinate in metres).
    Other,
}

fn text(v: Option<AttributeValue>) -> Option<String> {
    match v? {
        AttributeValue::Str(s) => Some(s.trim().to_owned()),
        AttributeValue::Strs(v) => Some(v.join(" ").trim().to_owned()),
        _ => None,
    }
}

fn attr_text(var: &netcdf::Variable<'_>, name: &str) -> Option<String> {
    text(var.attribute_value(name).and_then(Result::ok))
}

fn kind(var: &netcdf::Variable<'_>) -> Kind {
    let standard = attr_text(var, "standard_name").map(|s| s.to_ascii_lowercase());
    match standard.as_deref() {
        Some("latitude") => return Kind::Geographic(Axis::Lat),
        Some("longitude") => return Kind::Geographic(Axis::Lon),
        Some(
            "grid_latitude"
            | "grid_longitude"
            | "projection_x_coordinate"
            | "projection_y_coordinate"
            | "projection_x_angular_coordinate"
            | "projection_y_angular_coordinate",
        ) => return Kind::NotGeographic,
        _ => {}
    }
    let units = attr_text(var, "units").map(|s| s.to_ascii_lowercase().replace(' ', "_"));
    match units.as_deref() {
        Some(
            "degrees_north" | "degree_north" | "degrees_n" | "degree_n" | "degreesn" | "degreen",
        ) => Kind::Geographic(Axis::Lat),
        Some(
            "degrees_east" | "degree_east" | "degrees_e" | "degree_e" | "degreese" | "degreee",
        ) => Kind::Geographic(Axis::Lon),
        None | Some("") => Kind::Unknown,
        // Plain degrees: rotated-pole axes (CORDEX rlat/rlon, also when renamed lat/lon).
        Some("degrees" | "degree" | "deg") => Kind::NotGeographic,
        Some(_) => Kind::Other,
    }
}

/// A geographic coordinate variable for `axis`, found through the data variable's `coordinates`
/// attribute first, then under the usual names. Returns its name and dimensions; also reports
/// whether a non-geographic candidate was seen (for the error message).
fn find_coordinate(
    nc: &netcdf::File,
    data_coordinates: &[String],
    axis: Axis,
    refused: &mut Vec<String>,
) -> Option<(String, Vec<(String, usize)>)> {
    let names = match axis {
        Axis::Lat => LAT_NAMES,
        Axis::Lon => LON_NAMES,
    };
    // Listed auxiliary coordinates first, then every variable named after a dimension or a
    // usual name.
    let mut candidates: Vec<String> = data_coordinates.to_vec();
    candidates.extend(names.iter().map(|s| (*s).to_owned()));
    for name in candidates {
        let Some(var) = nc.variable(&name) else {
            continue;
        };
        let usual = names.contains(&name.as_str());
        match kind(&var) {
            Kind::Geographic(a) if a == axis => return Some((name, dims_of(&var))),
            // A variable only listed in `coordinates` with no units is not trusted as lat/lon.
            Kind::Unknown if usual => return Some((name, dims_of(&var))),
            Kind::NotGeographic
                if (usual || data_coordinates.contains(&name)) && !refused.contains(&name) =>
            {
                refused.push(name);
            }
            _ => {}
        }
    }
    None
}

pub(crate) fn dims_of(var: &netcdf::Variable<'_>) -> Vec<(String, usize)> {
    var.dimensions()
        .iter()
        .map(|d| (d.name(), d.len()))
        .collect()
}

/// Longitude in [-180, 180). Exact for inputs in [-540, 540) (x ± 360 is exact there).
pub fn normalize_lon(lon: f64) -> f64 {
    let mut x = lon;
    while x >= 180.0 {
        x -= 360.0;
    }
    while x < -180.0 {
        x += 360.0;
    }
    x
}

/// The point layout of a data variable with dimensions `dims` (time first).
#[derive(Debug, Clone, PartialEq)]
pub(crate) struct Grid {
    /// (ny, nx) for (time, y, x) data; None for (time, point).
    pub shape: Option<(usize, usize)>,
    /// (lat, lon) of every point, row-major for grids; longitudes in [-180, 180).
    pub points: Vec<(f64, f64)>,
}

/// Finds the geographic coordinates of every point of a variable whose dimensions are `dims`
/// (time first) and whose `coordinates` attribute lists `data_coordinates`. The error is a
/// message for [`super::InputErrorKind::BadGrid`].
pub(crate) fn locate(
    nc: &netcdf::File,
    dims: &[(String, usize)],
    data_coordinates: &[String],
) -> Result<Grid, String> {
    let mut refused = Vec::new();
    // The coordinates attribute, then the coordinate variables of the grid dimensions.
    let mut listed: Vec<String> = data_coordinates.to_vec();
    listed.extend(dims.iter().skip(1).map(|d| d.0.clone()));
    let lat = find_coordinate(nc, &listed, Axis::Lat, &mut refused);
    let lon = find_coordinate(nc, &listed, Axis::Lon, &mut refused);
    let (Some((lat_name, lat_dims)), Some((lon_name, lon_dims))) = (lat, lon) else {
        if refused.is_empty() {
            return Err(
                "no geographic latitude/longitude coordinates (looked for the data \
                        variable's coordinates attribute and lat/latitude, lon/longitude, \
                        XLAT/XLONG)"
                    .into(),
            );
        }
        return Err(not_geographic(&refused, dims));
    };
    let read = |name: &str| -> Result<Vec<f64>, String> {
        let v = nc
            .variable(name)
            .ok_or_else(|| format!("coordinate \"{name}\" disappeared"))?;
        v.get_values::<f64, _>(..)
            .map_err(|e| format!("cannot read coordinate \"{name}\": {e}"))
    };
    let names = |d: &[(String, usize)]| d.iter().map(|x| x.0.clone()).collect::<Vec<_>>();
    let (ld, od) = (names(&lat_dims), names(&lon_dims));
    let space: Vec<String> = dims.iter().skip(1).map(|d| d.0.clone()).collect();
    let time_dim = dims.first().map(|d| d.0.as_str());
    let grid = match space.as_slice() {
        // Regular 1-D axes.
        [y, x] if ld == [y.clone()] && od == [x.clone()] => {
            let lats = read(&lat_name)?;
            let lons = read(&lon_name)?;
            let points = lats
                .iter()
                .flat_map(|&la| lons.iter().map(move |&lo| (la, normalize_lon(lo))))
                .collect();
            Grid {
                shape: Some((dims[1].1, dims[2].1)),
                points,
            }
        }
        // Curvilinear: 2-D lat/lon on (y, x), possibly with a leading time dimension (WRF).
        [y, x] => {
            let strip = |d: &[String]| -> Option<bool> {
                match d {
                    [a, b] if a == y && b == x => Some(false),
                    [t, a, b] if Some(t.as_str()) == time_dim && a == y && b == x => Some(true),
                    _ => None,
                }
            };
            let (Some(lat_t), Some(lon_t)) = (strip(&ld), strip(&od)) else {
                if !refused.is_empty() {
                    return Err(not_geographic(&refused, dims));
                }
                return Err(format!(
                    "latitude \"{lat_name}\"{lat_dims:?} and longitude \"{lon_name}\"{lon_dims:?} \
                     do not match the data's dimensions {dims:?} (expected 1-D lat/lon on the \
                     two grid dimensions, or 2-D lat/lon over them)"
                ));
            };
            let n = dims[1].1 * dims[2].1;
            // XLAT(Time, y, x): the first step (the grid does not move).
            let first = |mut v: Vec<f64>, timed: bool| {
                if timed {
                    v.truncate(n);
                }
                v
            };
            let lats = first(read(&lat_name)?, lat_t);
            let lons = first(read(&lon_name)?, lon_t);
            if lats.len() != n || lons.len() != n {
                return Err(format!(
                    "2-D \"{lat_name}\"/\"{lon_name}\" hold {}/{} values for {n} cells",
                    lats.len(),
                    lons.len()
                ));
            }
            Grid {
                shape: Some((dims[1].1, dims[2].1)),
                points: lats
                    .into_iter()
                    .zip(lons)
                    .map(|(la, lo)| (la, normalize_lon(lo)))
                    .collect(),
            }
        }
        [p] if ld == [p.clone()] && od == [p.clone()] => {
            let lats = read(&lat_name)?;
            let lons = read(&lon_name)?;
            Grid {
                shape: None,
                points: lats
                    .into_iter()
                    .zip(lons)
                    .map(|(la, lo)| (la, normalize_lon(lo)))
                    .collect(),
            }
        }
        _ => {
            return Err(format!(
                "expected (time, lat, lon), (time, y, x) with 2-D latitude/longitude, or \
                 (time, point) with 1-D \"{lat_name}\" and \"{lon_name}\"; dimensions are \
                 {dims:?}, {lat_name}{lat_dims:?}, {lon_name}{lon_dims:?}"
            ));
        }
    };
    for (i, &(la, lo)) in grid.points.iter().enumerate() {
        if !(la.is_finite() && lo.is_finite() && (-90.0..=90.0).contains(&la)) {
            return Err(format!(
                "point {i}: latitude {la} / longitude {lo} from \"{lat_name}\"/\"{lon_name}\" is \
                 not a geographic coordinate (latitude must be within -90..90)"
            ));
        }
    }
    Ok(grid)
}

fn not_geographic(refused: &[String], dims: &[(String, usize)]) -> String {
    format!(
        "coordinates {refused:?} are not geographic (standard_name grid_latitude/grid_longitude \
         or projection_x/y_coordinate, or units plain \"degrees\"); rotated/projected \
         coordinates need 2-D latitude/longitude auxiliary coordinates (standard_name latitude \
         and longitude, listed in the data variable's coordinates attribute); data dimensions \
         are {dims:?}"
    )
}

#[cfg(test)]
mod tests {
    use super::normalize_lon;

    #[test]
    fn longitudes_wrap_exactly() {
        assert_eq!(normalize_lon(0.0), 0.0);
        assert_eq!(normalize_lon(180.0), -180.0);
        assert_eq!(normalize_lon(359.75), -0.25);
        assert_eq!(normalize_lon(-180.0), -180.0);
        assert_eq!(normalize_lon(-190.0), 170.0);
        assert_eq!(normalize_lon(126.123456789), 126.123456789);
        let x = 233.876543211_f64;
        assert_eq!(normalize_lon(x), x - 360.0);
        assert_eq!(normalize_lon(x) + 360.0, x);
    }
}
