//! Vulnerability curves: per hazard and asset class, a piecewise-linear map
//! from the hazard's index value (intensity) to the mean damage ratio, the
//! expected loss as a share of the asset's value. Data, not code: the
//! repository's `data/vulnerability/curves.csv` is built into the binaries
//! ([`DEFAULT_CURVES`]) and a file given with `--curves` replaces it.
//!
//! One point per line, a curve's points on consecutive lines:
//!
//! ```text
//! hazard,asset_class,intensity,damage_ratio,unit,proxy,source
//! river_flood,residential,0,0,mm,true,"Rx5day proxy for …"
//! ```
//!
//! * `hazard`: a `risk_type` of [`crate::hazard::default_hazards`];
//!   `asset_class`: one of [`AssetClass`];
//! * `intensity` strictly increasing along the curve, in `unit`, which must
//!   be the hazard's index unit (`days` or `mm`);
//! * `damage_ratio` in [0, 1], non-decreasing along the curve (monotone: more
//!   intensity never means less damage);
//! * `proxy`: `true` when the index stands in for the physical driver of the
//!   damage. Floods from Rx1day/Rx5day (rain, not water depth) and heat from
//!   hot-day counts must say `true`;
//! * `source`: where the curve comes from; the same on every line of a curve.
//!
//! Between points the curve is linear; below the first and above the last
//! point it is flat — `numpy.interp`'s rule, which CLIMADA's impact
//! functions use, so the two agree on every intensity.

use crate::fingerprint::Fnv64;
use std::collections::BTreeMap;

use super::LineError;
use super::sites::AssetClass;
use crate::hazard::default_hazards;

/// The repository's curves, built into every binary.
pub const DEFAULT_CURVES: &str = include_str!("../../data/vulnerability/curves.csv");
/// Where [`DEFAULT_CURVES`] lives in the repository, for messages.
pub const DEFAULT_CURVES_PATH: &str = "data/vulnerability/curves.csv";

/// Hazards whose index is a proxy for the damage driver: their curves must be
/// labelled `proxy=true`.
pub const PROXY_HAZARDS: [&str; 3] = ["urban_flood", "river_flood", "extreme_heat"];

/// One curve.
#[derive(Debug, Clone, PartialEq)]
pub struct Curve {
    pub risk_type: String,
    pub asset_class: AssetClass,
    /// (intensity, mean damage ratio), intensity strictly increasing,
    /// ratio non-decreasing in [0, 1]; at least two points.
    pub points: Vec<(f64, f64)>,
    pub unit: String,
    pub proxy: bool,
    pub source: String,
    /// Lines of the file the points came from.
    pub first_line: u64,
    pub last_line: u64,
}

impl Curve {
    /// Mean damage ratio at `x`: `numpy.interp(x, intensities, ratios)`
    /// formula for formula (flat outside the points).
    pub fn damage_ratio(&self, x: f64) -> f64 {
        let p = &self.points;
        let (first, last) = (p[0], p[p.len() - 1]);
        if x.is_nan() {
            return f64::NAN;
        }
        if x <= first.0 {
            return first.1;
        }
        if x >= last.0 {
            return last.1;
        }
        // The segment with p[j].0 <= x < p[j + 1].0.
        let j = p.partition_point(|q| q.0 <= x) - 1;
        if x == p[j].0 {
            return p[j].1;
        }
        let slope = (p[j + 1].1 - p[j].1) / (p[j + 1].0 - p[j].0);
        slope * (x - p[j].0) + p[j].1
    }

    /// A stable fingerprint of everything that shapes the curve's results,
    /// so a run can tell which curves changed since the last one.
    pub fn fingerprint(&self) -> String {
        let mut h = Fnv64::default();
        h.write_field(self.risk_type.as_bytes());
        h.write_field(self.asset_class.as_str().as_bytes());
        for (x, y) in &self.points {
            h.write_field(&x.to_bits().to_le_bytes());
            h.write_field(&y.to_bits().to_le_bytes());
        }
        h.write_field(self.unit.as_bytes());
        h.write_field(&[u8::from(self.proxy)]);
        h.write_field(self.source.as_bytes());
        format!("{:016x}", h.finish())
    }
}

/// Every curve of a file, by (hazard, asset class).
#[derive(Debug, Clone, PartialEq, Default)]
pub struct CurveSet {
    pub curves: BTreeMap<(String, AssetClass), Curve>,
}

impl CurveSet {
    pub fn get(&self, risk_type: &str, class: AssetClass) -> Option<&Curve> {
        self.curves.get(&(risk_type.to_string(), class))
    }

    /// (hazard, class) pairs among `hazards` × `classes` with no curve.
    pub fn missing(&self, hazards: &[String], classes: &[AssetClass]) -> Vec<(String, AssetClass)> {
        let mut out = Vec::new();
        for h in hazards {
            for &c in classes {
                if self.get(h, c).is_none() {
                    out.push((h.clone(), c));
                }
            }
        }
        out
    }

    /// Every platform hazard × every asset class has a curve, or the
    /// missing pairs as errors (line 1: the file as a whole).
    pub fn check_coverage(&self) -> Result<(), Vec<LineError>> {
        let hazards: Vec<String> = default_hazards()
            .iter()
            .map(|h| h.risk_type.to_string())
            .collect();
        let missing = self.missing(&hazards, &AssetClass::ALL);
        if missing.is_empty() {
            return Ok(());
        }
        Err(missing
            .into_iter()
            .map(|(h, c)| LineError::new(1, format!("no curve for hazard {h}, asset class {c}")))
            .collect())
    }
}

const HEADER: [&str; 7] = [
    "hazard",
    "asset_class",
    "intensity",
    "damage_ratio",
    "unit",
    "proxy",
    "source",
];

/// Parses and validates a curve file; returns every problem, not just the
/// first. Coverage (every class) is a separate check, [`CurveSet::check_coverage`].
pub fn parse_curves_csv(text: &str) -> Result<CurveSet, Vec<LineError>> {
    let units: BTreeMap<String, &'static str> = default_hazards()
        .iter()
        .map(|h| (h.risk_type.to_string(), h.value_units()))
        .collect();
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    match reader.headers() {
        Ok(h)
            if h.iter()
                .map(|c| c.to_ascii_lowercase())
                .eq(HEADER.iter().map(|c| c.to_string())) => {}
        Ok(h) => {
            return Err(vec![LineError::new(
                1,
                format!(
                    "header is {:?}; expected {}",
                    h.iter().collect::<Vec<_>>().join(","),
                    HEADER.join(",")
                ),
            )]);
        }
        Err(e) => return Err(vec![LineError::new(1, format!("unreadable header: {e}"))]),
    }
    let mut errors = Vec::new();
    let mut set = CurveSet::default();
    // The curve being read (its key), so a curve split across the file is caught.
    let mut current: Option<(String, AssetClass)> = None;
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(LineError::new(line, format!("unreadable row: {e}")));
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let mut bad = |m: String| errors.push(LineError::new(line, m));
        if record.len() != HEADER.len() {
            bad(format!(
                "{} field(s); expected {} ({})",
                record.len(),
                HEADER.len(),
                HEADER.join(",")
            ));
            continue;
        }
        let hazard = &record[0];
        let Some(&unit_expected) = units.get(hazard) else {
            bad(format!(
                "hazard {hazard:?} is unknown (known: {})",
                units.keys().cloned().collect::<Vec<_>>().join(", ")
            ));
            continue;
        };
        let Some(class) = AssetClass::parse(&record[1]) else {
            bad(format!(
                "asset_class {:?} is unknown (known: {})",
                &record[1],
                AssetClass::ALL.map(AssetClass::as_str).join(", ")
            ));
            continue;
        };
        let intensity = match record[2].parse::<f64>() {
            Ok(v) if v.is_finite() => Some(v),
            _ => {
                bad(format!("intensity {:?} is not a finite number", &record[2]));
                None
            }
        };
        let ratio = match record[3].parse::<f64>() {
            Ok(v) if (0.0..=1.0).contains(&v) => Some(v),
            Ok(v) => {
                bad(format!("damage_ratio {v} is outside [0, 1]"));
                None
            }
            Err(_) => {
                bad(format!("damage_ratio {:?} is not a number", &record[3]));
                None
            }
        };
        let unit = record[4].to_string();
        if unit != unit_expected {
            bad(format!(
                "unit {unit:?} does not match hazard {hazard}'s index, which is in {unit_expected:?}"
            ));
        }
        let proxy = match &record[5] {
            "true" => Some(true),
            "false" => Some(false),
            other => {
                bad(format!("proxy {other:?} must be true or false"));
                None
            }
        };
        if proxy == Some(false) && PROXY_HAZARDS.contains(&hazard) {
            bad(format!(
                "hazard {hazard}'s index is a proxy for the damage driver; its curve must say proxy=true"
            ));
        }
        let source = record[6].to_string();
        if source.is_empty() {
            bad("source is empty: say where the curve comes from".into());
        }
        let key = (hazard.to_string(), class);
        let continuing = current.as_ref() == Some(&key);
        if !continuing && let Some(existing) = set.curves.get(&key) {
            bad(format!(
                "curve {hazard}/{class} already defined on lines {}-{}; a curve's points must be on consecutive lines",
                existing.first_line, existing.last_line
            ));
            continue;
        }
        current = Some(key.clone());
        let (Some(x), Some(y), Some(proxy)) = (intensity, ratio, proxy) else {
            continue;
        };
        let curve = set.curves.entry(key).or_insert_with(|| Curve {
            risk_type: hazard.to_string(),
            asset_class: class,
            points: Vec::new(),
            unit: unit.clone(),
            proxy,
            source: source.clone(),
            first_line: line,
            last_line: line,
        });
        if let Some(&(px, py)) = curve.points.last() {
            if x <= px {
                bad(format!(
                    "intensity {x} is not above the previous point's {px} (line {}): intensities must increase along a curve",
                    curve.last_line
                ));
            }
            if y < py {
                bad(format!(
                    "damage_ratio {y} is below the previous point's {py} (line {}): the curve {hazard}/{class} is not monotone",
                    curve.last_line
                ));
            }
            if curve.unit != unit || curve.proxy != proxy || curve.source != source {
                bad(format!(
                    "unit, proxy and source must be the same on every line of curve {hazard}/{class} (line {} differs)",
                    curve.first_line
                ));
            }
        }
        curve.points.push((x, y));
        curve.last_line = line;
    }
    for c in set.curves.values() {
        if c.points.len() < 2 {
            errors.push(LineError::new(
                c.first_line,
                format!(
                    "curve {}/{} has {} point(s); it needs at least 2",
                    c.risk_type,
                    c.asset_class,
                    c.points.len()
                ),
            ));
        }
    }
    if set.curves.is_empty() && errors.is_empty() {
        errors.push(LineError::new(1, "no curves in the file".into()));
    }
    errors.sort_by_key(|e| e.line);
    if errors.is_empty() {
        Ok(set)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const H: &str = "hazard,asset_class,intensity,damage_ratio,unit,proxy,source\n";

    #[test]
    fn the_repository_curves_are_valid_and_complete() {
        let set = parse_curves_csv(DEFAULT_CURVES).unwrap();
        set.check_coverage().unwrap();
        for c in set.curves.values() {
            if PROXY_HAZARDS.contains(&c.risk_type.as_str()) {
                assert!(c.proxy);
            }
        }
    }

    #[test]
    fn interpolates_like_numpy_interp() {
        let text = format!(
            "{H}urban_flood,residential,50,0,mm,true,s\nurban_flood,residential,100,0.2,mm,true,s\nurban_flood,residential,200,0.4,mm,true,s\n"
        );
        let set = parse_curves_csv(&text).unwrap();
        let c = set.get("urban_flood", AssetClass::Residential).unwrap();
        assert_eq!(c.damage_ratio(0.0), 0.0);
        assert_eq!(c.damage_ratio(50.0), 0.0);
        assert_eq!(c.damage_ratio(75.0), 0.1);
        assert_eq!(c.damage_ratio(100.0), 0.2);
        assert!((c.damage_ratio(150.0) - 0.3).abs() < 1e-15);
        assert_eq!(c.damage_ratio(1e9), 0.4);
    }

    #[test]
    fn bad_curves_are_named_by_line() {
        let text = format!(
            "{H}drought,residential,0,0,days,false,s\ndrought,residential,30,0.5,days,false,s\ndrought,residential,60,0.2,days,false,s\nriver_flood,commercial,0,0,days,true,s\nurban_flood,industrial,0,0,mm,false,s\nurban_flood,industrial,0,1.5,mm,true,\n"
        );
        let errs: Vec<String> = parse_curves_csv(&text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs[0],
            "line 4: damage_ratio 0.2 is below the previous point's 0.5 (line 3): the curve drought/residential is not monotone"
        );
        assert!(errs.contains(&"line 5: unit \"days\" does not match hazard river_flood's index, which is in \"mm\"".to_string()));
        assert!(errs.contains(&"line 6: hazard urban_flood's index is a proxy for the damage driver; its curve must say proxy=true".to_string()));
        assert!(errs.contains(&"line 7: damage_ratio 1.5 is outside [0, 1]".to_string()));
        assert!(
            errs.contains(&"line 7: source is empty: say where the curve comes from".to_string())
        );
    }

    #[test]
    fn coverage_names_the_missing_pairs() {
        let text = format!(
            "{H}drought,residential,0,0,days,false,s\ndrought,residential,30,0.5,days,false,s\n"
        );
        let errs = parse_curves_csv(&text)
            .unwrap()
            .check_coverage()
            .unwrap_err();
        assert_eq!(errs.len(), 5 * 5 - 1);
        assert!(
            errs.iter()
                .any(|e| e.message == "no curve for hazard river_flood, asset class agriculture")
        );
    }

    #[test]
    fn fingerprints_change_with_a_point() {
        let a = parse_curves_csv(DEFAULT_CURVES).unwrap();
        let b = parse_curves_csv(&DEFAULT_CURVES.replacen(
            "river_flood,residential,600,0.5",
            "river_flood,residential,600,0.6",
            1,
        ))
        .unwrap();
        let changed: Vec<_> = a
            .curves
            .iter()
            .filter(|(k, c)| b.curves[*k].fingerprint() != c.fingerprint())
            .map(|(k, _)| k.clone())
            .collect();
        assert_eq!(
            changed,
            [("river_flood".to_string(), AssetClass::Residential)]
        );
    }
}
