//! Parsing of CF/UDUNITS `units` strings into the few units the hazards understand.
//!
//! A small tokenizer instead of a full UDUNITS grammar: data providers spell the same unit many
//! ways (`kg m-2 s-1`, `kg/m2/s`, `kg m**-2 s**-1`), and anything we do not recognise must be a
//! clear error rather than a silent wrong conversion.

use crate::hazard::Unit;
use std::collections::BTreeMap;

/// Temperature units: `K`, `Kelvin`, `degK` … or `degC`, `°C`, `C`, `celsius` …
pub fn parse_temperature(s: &str) -> Option<Unit> {
    let norm: String = s
        .trim()
        .replace(['°', 'º'], "deg")
        .to_ascii_lowercase()
        .chars()
        .filter(|c| !matches!(c, ' ' | '_'))
        .collect();
    match norm.as_str() {
        "k" | "kelvin" | "kelvins" | "degk" | "degreek" | "degreesk" => Some(Unit::Kelvin),
        "c" | "degc" | "degreec" | "degreesc" | "celsius" | "degcelsius" | "degreecelsius"
        | "degreescelsius" => Some(Unit::Celsius),
        _ => None,
    }
}

/// Precipitation units: a flux (`kg m-2 s-1`, `mm/s`), a daily rate (`mm/day`, `kg m-2 d-1`), or
/// metres of water per day (`m/day`, `m d-1`, and `m`: ERA5 daily totals, one amount per daily step).
pub fn parse_precipitation(s: &str) -> Option<Unit> {
    let f = factors(s)?;
    let is = |want: &[(&str, i32)]| {
        f.len() == want.len() && want.iter().all(|(k, e)| f.get(*k) == Some(e))
    };
    if is(&[("kg", 1), ("m", -2), ("s", -1)]) || is(&[("mm", 1), ("s", -1)]) {
        Some(Unit::KgPerM2PerS)
    } else if is(&[("mm", 1), ("day", -1)]) || is(&[("kg", 1), ("m", -2), ("day", -1)]) {
        Some(Unit::MmPerDay)
    } else if is(&[("m", 1), ("day", -1)]) || is(&[("m", 1)]) {
        Some(Unit::MPerDay)
    } else {
        None
    }
}

/// Splits a product of powers (`kg m**-2 s^-1`, `kg/m2/s`, `kg.m-2.s-1`) into symbol → exponent.
fn factors(s: &str) -> Option<BTreeMap<&'static str, i32>> {
    let lower = s.trim().to_ascii_lowercase().replace("**", "^");
    let mut out: BTreeMap<&'static str, i32> = BTreeMap::new();
    let mut divide = false;
    let mut token = String::new();
    let mut flush = |token: &mut String, divide: bool| -> Option<()> {
        if token.is_empty() {
            return Some(());
        }
        let split = token
            .find(|c: char| !c.is_ascii_alphabetic())
            .unwrap_or(token.len());
        let (sym, exp) = token.split_at(split);
        let exp = exp.trim_start_matches('^');
        let exp: i32 = if exp.is_empty() { 1 } else { exp.parse().ok()? };
        let sym: &'static str = match sym {
            "kg" => "kg",
            "m" => "m",
            "mm" => "mm",
            "s" | "sec" | "second" | "seconds" => "s",
            "d" | "day" | "days" => "day",
            _ => return None,
        };
        *out.entry(sym).or_insert(0) += if divide { -exp } else { exp };
        token.clear();
        Some(())
    };
    for c in lower.chars() {
        match c {
            ' ' | '.' | '*' | '·' => {
                flush(&mut token, divide)?;
                divide = false;
            }
            '/' => {
                flush(&mut token, divide)?;
                divide = true;
            }
            _ => token.push(c),
        }
    }
    flush(&mut token, divide)?;
    out.retain(|_, e| *e != 0);
    if out.is_empty() { None } else { Some(out) }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temperature_spellings() {
        for s in ["K", "Kelvin", "degK", "degrees_K", "kelvin"] {
            assert_eq!(parse_temperature(s), Some(Unit::Kelvin), "{s}");
        }
        for s in [
            "degC",
            "°C",
            "C",
            "celsius",
            "Celsius",
            "deg_C",
            "degrees_Celsius",
            "degree_C",
        ] {
            assert_eq!(parse_temperature(s), Some(Unit::Celsius), "{s}");
        }
        for s in ["F", "degF", "", "kg m-2 s-1", "K2"] {
            assert_eq!(parse_temperature(s), None, "{s}");
        }
    }

    #[test]
    fn precipitation_spellings() {
        for s in [
            "kg m-2 s-1",
            "kg/m2/s",
            "kg m**-2 s**-1",
            "kg m^-2 s^-1",
            "kg.m-2.s-1",
            "kg/m^2/s",
            "kg m-2 s-1 ",
            "mm/s",
            "mm s-1",
        ] {
            assert_eq!(parse_precipitation(s), Some(Unit::KgPerM2PerS), "{s}");
        }
        for s in [
            "mm/day",
            "mm d-1",
            "mm/d",
            "mm day-1",
            "mm day^-1",
            "kg m-2 d-1",
        ] {
            assert_eq!(parse_precipitation(s), Some(Unit::MmPerDay), "{s}");
        }
        for s in ["m", "m/day", "m d-1", "m day-1", "m/d", "m day**-1"] {
            assert_eq!(parse_precipitation(s), Some(Unit::MPerDay), "{s}");
        }
        for s in [
            "furlongs/fortnight",
            "mm",
            "m/s",
            "m2",
            "kg m-2",
            "",
            "mm/hr",
            "K",
            "kg m-2 s-x",
        ] {
            assert_eq!(parse_precipitation(s), None, "{s}");
        }
    }
}
