//! Scope flags for manual runs: which years and which grid points.

use std::fmt;
use std::ops::Range;
use std::str::FromStr;

use serde::{Deserialize, Serialize};

/// Calendar years `first..=last`, written `2021..2040` (both ends
/// included) or a single year `2030`.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Serialize, Deserialize)]
pub struct YearRange {
    pub first: i32,
    pub last: i32,
}

impl YearRange {
    pub fn contains(&self, year: i32) -> bool {
        (self.first..=self.last).contains(&year)
    }

    /// The overlap with `other`, if any.
    pub fn intersect(&self, other: &YearRange) -> Option<YearRange> {
        let first = self.first.max(other.first);
        let last = self.last.min(other.last);
        (first <= last).then_some(YearRange { first, last })
    }

    pub fn len(&self) -> usize {
        (self.last - self.first + 1) as usize
    }

    pub fn is_empty(&self) -> bool {
        self.last < self.first
    }
}

impl fmt::Display for YearRange {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{}..{}", self.first, self.last)
    }
}

impl FromStr for YearRange {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let year = |t: &str| {
            t.trim()
                .parse::<i32>()
                .ok()
                .filter(|y| (1..=9999).contains(y))
                .ok_or_else(|| format!("{t:?} is not a year: write years as 2021..2040 or 2030"))
        };
        let (first, last) = match s.split_once("..") {
            Some((a, b)) => (year(a)?, year(b.trim_start_matches('='))?),
            None => {
                let y = year(s)?;
                (y, y)
            }
        };
        if first > last {
            return Err(format!("{s}: the first year is after the last"));
        }
        Ok(YearRange { first, last })
    }
}

/// Which grid points of a file: all, a range of point indices in file
/// order (`0..499`, both ends included), or a bounding box
/// (`bbox:LAT_MIN,LON_MIN,LAT_MAX,LON_MAX`).
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize, Default)]
pub enum PointSelection {
    #[default]
    All,
    Indices {
        first: usize,
        last: usize,
    },
    BoundingBox {
        lat_min: f64,
        lon_min: f64,
        lat_max: f64,
        lon_max: f64,
    },
}

impl PointSelection {
    /// Whether a point (by index and coordinates) is selected.
    pub fn selects(&self, index: usize, lat: f64, lon: f64) -> bool {
        match *self {
            PointSelection::All => true,
            PointSelection::Indices { first, last } => (first..=last).contains(&index),
            PointSelection::BoundingBox {
                lat_min,
                lon_min,
                lat_max,
                lon_max,
            } => (lat_min..=lat_max).contains(&lat) && (lon_min..=lon_max).contains(&lon),
        }
    }

    /// The smallest index range covering every selected point of `points`,
    /// or None when nothing is selected.
    pub fn covering_range(&self, points: &[(f64, f64)]) -> Option<Range<usize>> {
        let mut selected = points
            .iter()
            .enumerate()
            .filter(|(i, (lat, lon))| self.selects(*i, *lat, *lon))
            .map(|(i, _)| i);
        let first = selected.next()?;
        let last = selected.next_back().unwrap_or(first);
        Some(first..last + 1)
    }
}

impl fmt::Display for PointSelection {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            PointSelection::All => f.write_str("all"),
            PointSelection::Indices { first, last } => write!(f, "{first}..{last}"),
            PointSelection::BoundingBox {
                lat_min,
                lon_min,
                lat_max,
                lon_max,
            } => {
                write!(f, "bbox:{lat_min},{lon_min},{lat_max},{lon_max}")
            }
        }
    }
}

impl FromStr for PointSelection {
    type Err = String;

    fn from_str(s: &str) -> Result<Self, String> {
        let s = s.trim();
        if s == "all" {
            return Ok(PointSelection::All);
        }
        if let Some(rest) = s.strip_prefix("bbox:") {
            let v: Vec<f64> = rest
                .split(',')
                .map(|t| t.trim().parse::<f64>())
                .collect::<Result<_, _>>()
                .map_err(|_| {
                    format!("{s}: write a bounding box as bbox:LAT_MIN,LON_MIN,LAT_MAX,LON_MAX")
                })?;
            let [lat_min, lon_min, lat_max, lon_max] = v[..] else {
                return Err(format!(
                    "{s}: a bounding box has four numbers: bbox:LAT_MIN,LON_MIN,LAT_MAX,LON_MAX"
                ));
            };
            if lat_min > lat_max || lon_min > lon_max {
                return Err(format!("{s}: minimum above maximum"));
            }
            return Ok(PointSelection::BoundingBox {
                lat_min,
                lon_min,
                lat_max,
                lon_max,
            });
        }
        let (a, b) = s
            .split_once("..")
            .ok_or_else(|| format!("{s:?}: write points as all, an index range 0..499, or bbox:LAT_MIN,LON_MIN,LAT_MAX,LON_MAX"))?;
        let index = |t: &str| {
            t.trim()
                .trim_start_matches('=')
                .parse::<usize>()
                .map_err(|_| format!("{t:?} is not a point index"))
        };
        let (first, last) = (index(a)?, index(b)?);
        if first > last {
            return Err(format!("{s}: the first index is after the last"));
        }
        Ok(PointSelection::Indices { first, last })
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn year_ranges_include_both_ends() {
        let r: YearRange = "2021..2040".parse().unwrap();
        assert_eq!((r.first, r.last, r.len()), (2021, 2040, 20));
        assert_eq!(
            "2030".parse::<YearRange>().unwrap(),
            YearRange {
                first: 2030,
                last: 2030
            }
        );
        assert!("2040..2021".parse::<YearRange>().is_err());
        assert!(
            "twenty"
                .parse::<YearRange>()
                .unwrap_err()
                .contains("twenty")
        );
    }

    #[test]
    fn point_selections_parse_and_cover() {
        let pts = [(33.0, 125.0), (34.0, 126.0), (35.0, 127.0), (36.0, 128.0)];
        let bbox: PointSelection = "bbox:33.5,125.5,35.5,127.5".parse().unwrap();
        assert_eq!(bbox.covering_range(&pts), Some(1..3));
        let ids: PointSelection = "2..3".parse().unwrap();
        assert_eq!(ids.covering_range(&pts), Some(2..4));
        assert_eq!(PointSelection::All.covering_range(&pts), Some(0..4));
        let none: PointSelection = "bbox:0,0,1,1".parse().unwrap();
        assert_eq!(none.covering_range(&pts), None);
        assert!("bbox:1,2,3".parse::<PointSelection>().is_err());
    }
}
