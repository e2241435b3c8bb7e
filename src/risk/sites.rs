//! Sites: the business assets whose risk is reported, read from a CSV file
//! validated whole before anything is imported, every bad row reported by
//! its line number (the header is line 1).
//!
//! Columns (header required, any order; names case-insensitive):
//!
//! | column | meaning | rule |
//! |---|---|---|
//! | `site_id` | the operator's identifier | non-empty, unique in the file |
//! | `name` | display name | non-empty |
//! | `lat`, `lon` | WGS84 degrees | −90..90, −180..360 |
//! | `asset_value` | replacement value of the asset | finite, > 0 |
//! | `currency` | ISO 4217 code of `asset_value` | three letters A–Z |
//! | `asset_class` | occupancy, selects the vulnerability curve | one of [`AssetClass`] |
//! | `structure_type` | main structural system | one of [`StructureType`] |
//! | `year_built` | year of construction | 1800..=2100 |
//! | `floors` | storeys above ground | 1..=200 |
//! | `distance_to_river_km` | optional (column or value may be absent) | finite, ≥ 0 |
//! | `distance_to_coast_km` | optional | finite, ≥ 0 |

use std::collections::HashMap;
use std::fmt;

use super::LineError;

/// Occupancy classes; each needs a vulnerability curve per hazard.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum AssetClass {
    Residential,
    Commercial,
    Industrial,
    Infrastructure,
    Agriculture,
}

impl AssetClass {
    pub const ALL: [AssetClass; 5] = [
        AssetClass::Residential,
        AssetClass::Commercial,
        AssetClass::Industrial,
        AssetClass::Infrastructure,
        AssetClass::Agriculture,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            AssetClass::Residential => "residential",
            AssetClass::Commercial => "commercial",
            AssetClass::Industrial => "industrial",
            AssetClass::Infrastructure => "infrastructure",
            AssetClass::Agriculture => "agriculture",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }

    fn known() -> String {
        Self::ALL.map(Self::as_str).join(", ")
    }
}

impl fmt::Display for AssetClass {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Main structural system, used by the vulnerability score.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum StructureType {
    Wood,
    Masonry,
    LightMetal,
    Mixed,
    Steel,
    ReinforcedConcrete,
}

impl StructureType {
    pub const ALL: [StructureType; 6] = [
        StructureType::Wood,
        StructureType::Masonry,
        StructureType::LightMetal,
        StructureType::Mixed,
        StructureType::Steel,
        StructureType::ReinforcedConcrete,
    ];

    pub fn as_str(self) -> &'static str {
        match self {
            StructureType::Wood => "wood",
            StructureType::Masonry => "masonry",
            StructureType::LightMetal => "light_metal",
            StructureType::Mixed => "mixed",
            StructureType::Steel => "steel",
            StructureType::ReinforcedConcrete => "reinforced_concrete",
        }
    }

    pub fn parse(s: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.as_str() == s)
    }
}

/// One site, as imported.
#[derive(Debug, Clone, PartialEq)]
pub struct Site {
    pub site_id: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
    pub asset_value: f64,
    pub currency: String,
    pub asset_class: AssetClass,
    pub structure_type: StructureType,
    pub year_built: i32,
    pub floors: i32,
    pub distance_to_river_km: Option<f64>,
    pub distance_to_coast_km: Option<f64>,
    /// Line of the file it came from (for messages naming the line later).
    pub line: u64,
}

/// The required columns, in the order of the documented header.
pub const REQUIRED_COLUMNS: [&str; 10] = [
    "site_id",
    "name",
    "lat",
    "lon",
    "asset_value",
    "currency",
    "asset_class",
    "structure_type",
    "year_built",
    "floors",
];
pub const OPTIONAL_COLUMNS: [&str; 2] = ["distance_to_river_km", "distance_to_coast_km"];

/// Parses the whole file; returns every problem, not just the first.
pub fn parse_sites_csv(text: &str) -> Result<Vec<Site>, Vec<LineError>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let header: Vec<String> = match reader.headers() {
        Ok(h) => h.iter().map(|c| c.to_ascii_lowercase()).collect(),
        Err(e) => return Err(vec![LineError::new(1, format!("unreadable header: {e}"))]),
    };
    let mut col: HashMap<&str, usize> = HashMap::new();
    let mut header_errors = Vec::new();
    for (i, name) in header.iter().enumerate() {
        match REQUIRED_COLUMNS
            .iter()
            .chain(OPTIONAL_COLUMNS.iter())
            .find(|c| **c == name)
        {
            Some(c) => {
                if col.insert(c, i).is_some() {
                    header_errors.push(LineError::new(1, format!("column {name:?} appears twice")));
                }
            }
            None => header_errors.push(LineError::new(
                1,
                format!(
                    "unknown column {name:?} (columns: {}, optional {})",
                    REQUIRED_COLUMNS.join(","),
                    OPTIONAL_COLUMNS.join(",")
                ),
            )),
        }
    }
    for c in REQUIRED_COLUMNS {
        if !col.contains_key(c) {
            header_errors.push(LineError::new(1, format!("missing column {c:?}")));
        }
    }
    if !header_errors.is_empty() {
        return Err(header_errors);
    }
    let mut errors = Vec::new();
    let mut sites = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
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
        if record.len() != header.len() {
            errors.push(LineError::new(
                line,
                format!("{} field(s); the header has {}", record.len(), header.len()),
            ));
            continue;
        }
        let before = errors.len();
        let mut bad = |message: String| errors.push(LineError::new(line, message));
        let field = |name: &str| col.get(name).map(|&i| &record[i]).unwrap_or("");
        let text = |name: &str, bad: &mut dyn FnMut(String)| {
            let v = field(name);
            if v.is_empty() {
                bad(format!("{name} is empty"));
            }
            v.to_string()
        };
        let number =
            |name: &str, bad: &mut dyn FnMut(String), ok: &dyn Fn(f64) -> bool, rule: &str| {
                let raw = field(name);
                match raw.parse::<f64>() {
                    Ok(v) if v.is_finite() && ok(v) => Some(v),
                    Ok(v) => {
                        bad(format!("{name} {v} is outside {rule}"));
                        None
                    }
                    Err(_) => {
                        bad(format!("{name} {raw:?} is not a number"));
                        None
                    }
                }
            };
        let optional = |name: &str, bad: &mut dyn FnMut(String)| {
            let raw = field(name);
            if raw.is_empty() {
                return None;
            }
            match raw.parse::<f64>() {
                Ok(v) if v.is_finite() && v >= 0.0 => Some(v),
                _ => {
                    bad(format!("{name} {raw:?} is not a distance ≥ 0 in km"));
                    None
                }
            }
        };
        let integer = |name: &str, bad: &mut dyn FnMut(String), lo: i32, hi: i32| {
            let raw = field(name);
            match raw.parse::<i32>() {
                Ok(v) if (lo..=hi).contains(&v) => Some(v),
                Ok(v) => {
                    bad(format!("{name} {v} is outside {lo}..{hi}"));
                    None
                }
                Err(_) => {
                    bad(format!("{name} {raw:?} is not a whole number"));
                    None
                }
            }
        };
        let site_id = text("site_id", &mut bad);
        let name = text("name", &mut bad);
        let lat = number("lat", &mut bad, &|v| (-90.0..=90.0).contains(&v), "-90..90");
        let lon = number(
            "lon",
            &mut bad,
            &|v| (-180.0..=360.0).contains(&v),
            "-180..360",
        );
        let asset_value = number("asset_value", &mut bad, &|v| v > 0.0, "(0, ∞)");
        let currency = field("currency").to_string();
        if !(currency.len() == 3 && currency.bytes().all(|b| b.is_ascii_uppercase())) {
            bad(format!(
                "currency {currency:?} is not an ISO 4217 code (three capital letters, e.g. KRW)"
            ));
        }
        let asset_class = AssetClass::parse(field("asset_class"));
        if asset_class.is_none() {
            bad(format!(
                "asset_class {:?} is unknown (known: {})",
                field("asset_class"),
                AssetClass::known()
            ));
        }
        let structure_type = StructureType::parse(field("structure_type"));
        if structure_type.is_none() {
            bad(format!(
                "structure_type {:?} is unknown (known: {})",
                field("structure_type"),
                StructureType::ALL.map(StructureType::as_str).join(", ")
            ));
        }
        let year_built = integer("year_built", &mut bad, 1800, 2100);
        let floors = integer("floors", &mut bad, 1, 200);
        let distance_to_river_km = optional("distance_to_river_km", &mut bad);
        let distance_to_coast_km = optional("distance_to_coast_km", &mut bad);
        if !site_id.is_empty()
            && let Some(first) = seen.insert(site_id.clone(), line)
        {
            bad(format!("site_id {site_id:?} already used on line {first}"));
        }
        if errors.len() > before {
            continue;
        }
        if let (
            Some(lat),
            Some(lon),
            Some(asset_value),
            Some(asset_class),
            Some(structure_type),
            Some(year_built),
            Some(floors),
        ) = (
            lat,
            lon,
            asset_value,
            asset_class,
            structure_type,
            year_built,
            floors,
        ) {
            sites.push(Site {
                site_id,
                name,
                lat,
                lon,
                asset_value,
                currency,
                asset_class,
                structure_type,
                year_built,
                floors,
                distance_to_river_km,
                distance_to_coast_km,
                line,
            });
        }
    }
    if sites.is_empty() && errors.is_empty() {
        errors.push(LineError::new(1, "no sites in the file".into()));
    }
    if errors.is_empty() {
        Ok(sites)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    const HEADER: &str = "site_id,name,lat,lon,asset_value,currency,asset_class,structure_type,year_built,floors,distance_to_river_km,distance_to_coast_km";

    #[test]
    fn parses_a_valid_file_with_optional_values() {
        let text = format!(
            "{HEADER}\nS1,Plant,37.5,127.0,1e7,KRW,industrial,steel,1995,2,0.8,\nS2,\"Shop, Busan\",35.1,129.0,250000,USD,commercial,reinforced_concrete,2010,12,,3\n"
        );
        let sites = parse_sites_csv(&text).unwrap();
        assert_eq!(sites.len(), 2);
        assert_eq!(sites[0].asset_class, AssetClass::Industrial);
        assert_eq!(sites[0].distance_to_river_km, Some(0.8));
        assert_eq!(sites[0].distance_to_coast_km, None);
        assert_eq!(sites[1].name, "Shop, Busan");
        assert_eq!(sites[1].line, 3);
    }

    #[test]
    fn optional_columns_may_be_absent() {
        let text = "site_id,name,lat,lon,asset_value,currency,asset_class,structure_type,year_built,floors\nA,a,1,2,10,EUR,residential,wood,1960,1\n";
        let sites = parse_sites_csv(text).unwrap();
        assert_eq!(sites[0].distance_to_river_km, None);
    }

    #[test]
    fn reports_every_bad_row_with_its_line() {
        let text = format!(
            "{HEADER}\nA,ok,1,2,10,EUR,residential,wood,1960,1,,\nB,lat,95,2,10,EUR,residential,wood,1960,1,,\nC,class,1,2,10,EUR,castle,wood,1960,1,,\nA,dup,1,2,10,eur,residential,wood,1960,0,-1,\n"
        );
        let errs: Vec<String> = parse_sites_csv(&text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            [
                "line 3: lat 95 is outside -90..90",
                "line 4: asset_class \"castle\" is unknown (known: residential, commercial, industrial, infrastructure, agriculture)",
                "line 5: currency \"eur\" is not an ISO 4217 code (three capital letters, e.g. KRW)",
                "line 5: floors 0 is outside 1..200",
                "line 5: distance_to_river_km \"-1\" is not a distance ≥ 0 in km",
                "line 5: site_id \"A\" already used on line 2",
            ]
        );
    }

    #[test]
    fn a_bad_header_is_rejected() {
        let errs = parse_sites_csv("site_id,name,lat,lon,colour\n").unwrap_err();
        assert!(errs.iter().all(|e| e.line == 1));
        assert!(
            errs.iter()
                .any(|e| e.message.contains("unknown column \"colour\""))
        );
        assert!(
            errs.iter()
                .any(|e| e.message.contains("missing column \"floors\""))
        );
    }
}
