//! Regions: `code,name,lat,lon` CSV, validated whole before anything is
//! imported, with every bad row reported by its line number.

use std::collections::HashMap;
use std::fmt;

#[derive(Debug, Clone, PartialEq)]
pub struct Region {
    pub code: String,
    pub name: String,
    pub lat: f64,
    pub lon: f64,
}

/// A rejected row (line numbers count the header as line 1).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct RegionError {
    pub line: u64,
    pub message: String,
}

impl fmt::Display for RegionError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

const HEADER: [&str; 4] = ["code", "name", "lat", "lon"];

/// Parses the whole file; returns every problem, not just the first.
pub fn parse_regions_csv(text: &str) -> Result<Vec<Region>, Vec<RegionError>> {
    let mut reader = csv::ReaderBuilder::new()
        .has_headers(true)
        .trim(csv::Trim::All)
        .flexible(true)
        .from_reader(text.as_bytes());
    let mut errors = Vec::new();
    match reader.headers() {
        Ok(h)
            if h.iter()
                .map(|c| c.to_ascii_lowercase())
                .eq(HEADER.iter().map(|c| c.to_string())) => {}
        Ok(h) => {
            return Err(vec![RegionError {
                line: 1,
                message: format!(
                    "header is {:?}; expected code,name,lat,lon",
                    h.iter().collect::<Vec<_>>().join(",")
                ),
            }]);
        }
        Err(e) => {
            return Err(vec![RegionError {
                line: 1,
                message: format!("unreadable header: {e}"),
            }]);
        }
    }
    let mut regions = Vec::new();
    let mut seen: HashMap<String, u64> = HashMap::new();
    for record in reader.records() {
        let record = match record {
            Ok(r) => r,
            Err(e) => {
                let line = e.position().map(|p| p.line()).unwrap_or(0);
                errors.push(RegionError {
                    line,
                    message: format!("unreadable row: {e}"),
                });
                continue;
            }
        };
        let line = record.position().map(|p| p.line()).unwrap_or(0);
        let mut bad = |message: String| errors.push(RegionError { line, message });
        if record.len() != 4 {
            bad(format!(
                "{} field(s); expected 4 (code,name,lat,lon)",
                record.len()
            ));
            continue;
        }
        let (code, name) = (record[0].to_string(), record[1].to_string());
        if code.is_empty() {
            bad("code is empty".into());
        }
        if name.is_empty() {
            bad("name is empty".into());
        }
        let lat = match record[2].parse::<f64>() {
            Ok(v) if (-90.0..=90.0).contains(&v) => Some(v),
            Ok(v) => {
                bad(format!("lat {v} is outside -90..90"));
                None
            }
            Err(_) => {
                bad(format!("lat {:?} is not a number", &record[2]));
                None
            }
        };
        let lon = match record[3].parse::<f64>() {
            Ok(v) if (-180.0..=360.0).contains(&v) => Some(v),
            Ok(v) => {
                bad(format!("lon {v} is outside -180..360"));
                None
            }
            Err(_) => {
                bad(format!("lon {:?} is not a number", &record[3]));
                None
            }
        };
        if !code.is_empty()
            && let Some(first) = seen.insert(code.clone(), line)
        {
            bad(format!("code {code:?} already used on line {first}"));
        }
        if let (Some(lat), Some(lon)) = (lat, lon)
            && !code.is_empty()
            && !name.is_empty()
        {
            regions.push(Region {
                code,
                name,
                lat,
                lon,
            });
        }
    }
    if regions.is_empty() && errors.is_empty() {
        errors.push(RegionError {
            line: 1,
            message: "no regions in the file".into(),
        });
    }
    if errors.is_empty() {
        Ok(regions)
    } else {
        Err(errors)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_a_valid_file() {
        let r = parse_regions_csv(
            "code,name,lat,lon\nKR-11,Seoul,37.56,126.97\nKR-26,\"Busan, city\",35.18,129.07\n",
        )
        .unwrap();
        assert_eq!(r.len(), 2);
        assert_eq!(r[1].name, "Busan, city");
    }

    #[test]
    fn reports_every_bad_row_with_its_line() {
        let text = "code,name,lat,lon\nA,ok,1,2\nB,,1,2\nC,bad lat,95,2\nA,dup,1,2\nD,short,1\n";
        let errs: Vec<String> = parse_regions_csv(text)
            .unwrap_err()
            .iter()
            .map(ToString::to_string)
            .collect();
        assert_eq!(
            errs,
            [
                "line 3: name is empty",
                "line 4: lat 95 is outside -90..90",
                "line 5: code \"A\" already used on line 2",
                "line 6: 3 field(s); expected 4 (code,name,lat,lon)",
            ]
        );
    }

    #[test]
    fn a_wrong_header_is_rejected() {
        let errs = parse_regions_csv("id,name,lat,lon\nA,a,1,2\n").unwrap_err();
        assert_eq!(errs[0].line, 1);
    }
}
