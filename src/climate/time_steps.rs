//! Decoding a daily time axis into calendar day numbers, one per step.
//!
//! A gap (a day no step covers) is allowed here: the reader of a dataset treats it as a missing
//! day, as xclim does with `missing="any"`. What is refused is an axis that goes backwards or
//! repeats a day, because then "the value of day d" has no single meaning within one file.

use super::calendar::{Calendar, parse_time_units};

/// Day number (see [`Calendar::day_number`]) of every step of the axis; strictly increasing.
pub fn decode_day_numbers(
    values: &[f64],
    units: &str,
    calendar: Calendar,
) -> Result<Vec<i64>, String> {
    let (unit_seconds, ref_date, ref_seconds) = parse_time_units(units)?;
    let ref_day = calendar.day_number(ref_date).ok_or_else(|| {
        format!("reference date {ref_date} of \"{units}\" does not exist in calendar {calendar}")
    })?;
    let mut days = Vec::with_capacity(values.len());
    for (i, &v) in values.iter().enumerate() {
        if !v.is_finite() || v.abs() > 1e12 {
            return Err(format!("time value {v} at step {i} is not a usable number"));
        }
        // Round to whole seconds first so 0.99999999 days lands on the day it means.
        let secs = (ref_seconds + v * unit_seconds).round() as i64;
        let n = ref_day + secs.div_euclid(86_400);
        if let Some(&p) = days.last() {
            if n == p {
                return Err(format!(
                    "time axis is not daily: step {i} is on the same day as step {} ({}): \
                     duplicated day, or sub-daily data",
                    i - 1,
                    calendar.date(n)
                ));
            }
            if n < p {
                return Err(format!(
                    "time axis is not sorted: step {i} ({}) comes before step {} ({})",
                    calendar.date(n),
                    i - 1,
                    calendar.date(p)
                ));
            }
        }
        days.push(n);
    }
    Ok(days)
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::climate::CfDate;

    #[test]
    fn gaps_are_kept_as_day_numbers() {
        let cal = Calendar::NoLeap;
        let d = decode_day_numbers(&[0.5, 1.5, 3.5], "days since 2001-12-30", cal).unwrap();
        assert_eq!(d[1] - d[0], 1);
        assert_eq!(d[2] - d[1], 2, "one missing day");
        assert_eq!(cal.date(d[2]), CfDate::new(2002, 1, 2));
    }

    #[test]
    fn backwards_or_repeated_days_are_refused() {
        let cal = Calendar::Standard;
        let e = decode_day_numbers(&[1.0, 0.0], "days since 2000-01-01", cal).unwrap_err();
        assert!(e.contains("not sorted"), "{e}");
        let e = decode_day_numbers(&[0.0, 0.5], "days since 2000-01-01", cal).unwrap_err();
        assert!(e.contains("duplicated"), "{e}");
        assert!(decode_day_numbers(&[f64::NAN], "days since 2000-01-01", cal).is_err());
    }
}
