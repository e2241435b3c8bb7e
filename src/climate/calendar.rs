//! CF calendars and time-axis decoding.
//!
//! Written by hand (instead of pulling in a date crate) because chrono and friends only know the
//! proleptic Gregorian calendar, while climate models use `noleap`, `all_leap` and `360_day` too,
//! and CF's `standard` calendar is the mixed Julian/Gregorian one.

use std::fmt;

/// A calendar date in some CF calendar (no time of day: the data are daily).
#[derive(Debug, Clone, Copy, PartialEq, Eq, PartialOrd, Ord, Hash)]
pub struct CfDate {
    pub year: i32,
    pub month: u8,
    pub day: u8,
}

impl CfDate {
    pub const fn new(year: i32, month: u8, day: u8) -> Self {
        Self { year, month, day }
    }
}

impl fmt::Display for CfDate {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "{:04}-{:02}-{:02}", self.year, self.month, self.day)
    }
}

/// The CF calendars this reader supports.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Calendar {
    /// `standard` / `gregorian`: Julian before 1582-10-15, Gregorian from then on (as cftime).
    Standard,
    ProlepticGregorian,
    /// `noleap` / `365_day`
    NoLeap,
    /// `all_leap` / `366_day`
    AllLeap,
    /// `360_day`: twelve 30-day months.
    Day360,
    /// `julian`: a leap year every fourth year, at every date (as cftime's `DatetimeJulian`).
    Julian,
}

const CUM_NOLEAP: [u32; 13] = [0, 31, 59, 90, 120, 151, 181, 212, 243, 273, 304, 334, 365];
const CUM_LEAP: [u32; 13] = [0, 31, 60, 91, 121, 152, 182, 213, 244, 274, 305, 335, 366];

/// Julian day number of 1582-10-15 (Gregorian), the first day of the Gregorian calendar in
/// CF's mixed `standard` calendar.
const GREGORIAN_START_JDN: i64 = 2_299_161;

impl Calendar {
    /// Parses a CF `calendar` attribute value (case-insensitive). `None` if unsupported.
    pub fn parse(s: &str) -> Option<Calendar> {
        match s.trim().to_ascii_lowercase().as_str() {
            "standard" | "gregorian" => Some(Calendar::Standard),
            "proleptic_gregorian" => Some(Calendar::ProlepticGregorian),
            "noleap" | "365_day" => Some(Calendar::NoLeap),
            "all_leap" | "366_day" => Some(Calendar::AllLeap),
            "360_day" => Some(Calendar::Day360),
            "julian" => Some(Calendar::Julian),
            _ => None,
        }
    }

    /// Canonical CF name.
    pub fn name(self) -> &'static str {
        match self {
            Calendar::Standard => "standard",
            Calendar::ProlepticGregorian => "proleptic_gregorian",
            Calendar::NoLeap => "noleap",
            Calendar::AllLeap => "all_leap",
            Calendar::Day360 => "360_day",
            Calendar::Julian => "julian",
        }
    }

    pub fn is_leap(self, year: i32) -> bool {
        match self {
            Calendar::Standard if year < 1583 => year.rem_euclid(4) == 0,
            Calendar::Julian => year.rem_euclid(4) == 0,
            Calendar::Standard | Calendar::ProlepticGregorian => {
                (year.rem_euclid(4) == 0 && year.rem_euclid(100) != 0) || year.rem_euclid(400) == 0
            }
            Calendar::NoLeap | Calendar::Day360 => false,
            Calendar::AllLeap => true,
        }
    }

    /// Number of days the calendar year has (a complete year of daily data has this many steps).
    pub fn days_in_year(self, year: i32) -> u32 {
        match self {
            Calendar::Day360 => 360,
            // 1582 lost ten days in the switch to the Gregorian calendar.
            Calendar::Standard if year == 1582 => 355,
            _ if self.is_leap(year) => 366,
            _ => 365,
        }
    }

    pub fn days_in_month(self, year: i32, month: u8) -> u32 {
        if self == Calendar::Day360 {
            return 30;
        }
        let cum = if self.is_leap(year) {
            &CUM_LEAP
        } else {
            &CUM_NOLEAP
        };
        let m = usize::from(month.clamp(1, 12));
        cum[m] - cum[m - 1]
    }

    fn is_valid(self, d: CfDate) -> bool {
        if !(1..=12).contains(&d.month) || d.day == 0 {
            return false;
        }
        if u32::from(d.day) > self.days_in_month(d.year, d.month) {
            return false;
        }
        // The ten days dropped in October 1582 do not exist in the mixed calendar.
        !(self == Calendar::Standard
            && d.year == 1582
            && d.month == 10
            && (5..=14).contains(&d.day))
    }

    /// Consecutive day number of a date in this calendar (an arbitrary but fixed epoch per
    /// calendar; differences are day counts). `None` for a date that does not exist.
    pub fn day_number(self, d: CfDate) -> Option<i64> {
        if !self.is_valid(d) {
            return None;
        }
        let (y, m, day) = (i64::from(d.year), u32::from(d.month), i64::from(d.day));
        let n = match self {
            Calendar::ProlepticGregorian => gregorian_to_jdn(y, m, day),
            Calendar::Julian => julian_to_jdn(y, m, day),
            Calendar::Standard => {
                let g = gregorian_to_jdn(y, m, day);
                if g >= GREGORIAN_START_JDN {
                    g
                } else {
                    julian_to_jdn(y, m, day)
                }
            }
            Calendar::NoLeap => 365 * y + i64::from(CUM_NOLEAP[m as usize - 1]) + day - 1,
            Calendar::AllLeap => 366 * y + i64::from(CUM_LEAP[m as usize - 1]) + day - 1,
            Calendar::Day360 => 360 * y + 30 * (i64::from(m) - 1) + day - 1,
        };
        Some(n)
    }

    /// Inverse of [`Calendar::day_number`].
    pub fn date(self, n: i64) -> CfDate {
        match self {
            Calendar::ProlepticGregorian => jdn_to_date(n, true),
            Calendar::Standard => jdn_to_date(n, n >= GREGORIAN_START_JDN),
            Calendar::Julian => jdn_to_date(n, false),
            Calendar::NoLeap => fixed_year_date(n, 365, &CUM_NOLEAP),
            Calendar::AllLeap => fixed_year_date(n, 366, &CUM_LEAP),
            Calendar::Day360 => {
                let y = n.div_euclid(360);
                let r = n.rem_euclid(360);
                CfDate::new(y as i32, (r / 30 + 1) as u8, (r % 30 + 1) as u8)
            }
        }
    }
}

impl fmt::Display for Calendar {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.name())
    }
}

fn fixed_year_date(n: i64, len: i64, cum: &[u32; 13]) -> CfDate {
    let y = n.div_euclid(len);
    let r = n.rem_euclid(len) as u32;
    let m = cum.iter().rposition(|&c| c <= r).unwrap_or(0).min(11);
    CfDate::new(y as i32, (m + 1) as u8, (r - cum[m] + 1) as u8)
}

// Julian day number conversions (Fliegel & Van Flandern / Richards), valid for years > -4700.
fn gregorian_to_jdn(y: i64, m: u32, d: i64) -> i64 {
    let a = (14 - i64::from(m)) / 12;
    let y2 = y + 4800 - a;
    let m2 = i64::from(m) + 12 * a - 3;
    d + (153 * m2 + 2) / 5 + 365 * y2 + y2.div_euclid(4) - y2.div_euclid(100) + y2.div_euclid(400)
        - 32045
}

fn julian_to_jdn(y: i64, m: u32, d: i64) -> i64 {
    let a = (14 - i64::from(m)) / 12;
    let y2 = y + 4800 - a;
    let m2 = i64::from(m) + 12 * a - 3;
    d + (153 * m2 + 2) / 5 + 365 * y2 + y2.div_euclid(4) - 32083
}

fn jdn_to_date(j: i64, gregorian: bool) -> CfDate {
    let mut f = j + 1401;
    if gregorian {
        f += ((4 * j + 274_277).div_euclid(146_097) * 3).div_euclid(4) - 38;
    }
    let e = 4 * f + 3;
    let g = e.rem_euclid(1461) / 4;
    let h = 5 * g + 2;
    let day = h.rem_euclid(153) / 5 + 1;
    let month = (h / 153 + 2).rem_euclid(12) + 1;
    let year = e.div_euclid(1461) - 4716 + (12 + 2 - month) / 12;
    CfDate::new(year as i32, month as u8, day as u8)
}

/// Decodes CF time values (`<unit> since <reference>`) into one date per step and checks that
/// the steps are consecutive days, because every index downstream counts days.
pub fn decode_time(values: &[f64], units: &str, calendar: Calendar) -> Result<Vec<CfDate>, String> {
    let (unit_seconds, ref_date, ref_seconds) = parse_time_units(units)?;
    let ref_day = calendar.day_number(ref_date).ok_or_else(|| {
        format!("reference date {ref_date} of \"{units}\" does not exist in calendar {calendar}")
    })?;
    let mut dates = Vec::with_capacity(values.len());
    let mut prev: Option<i64> = None;
    for (i, &v) in values.iter().enumerate() {
        if !v.is_finite() || v.abs() > 1e12 {
            return Err(format!("time value {v} at step {i} is not a usable number"));
        }
        // Round to whole seconds first so 0.99999999 days lands on the day it means.
        let secs = (ref_seconds + v * unit_seconds).round() as i64;
        let n = ref_day + secs.div_euclid(86_400);
        if let Some(p) = prev
            && n != p + 1
        {
            return Err(format!(
                "time axis is not daily: step {i} is {} day(s) after step {} ({} -> {})",
                n - p,
                i - 1,
                calendar.date(p),
                calendar.date(n)
            ));
        }
        prev = Some(n);
        dates.push(calendar.date(n));
    }
    Ok(dates)
}

/// Checks that time values increase step by step, day by day: a step on the same day as the one
/// before is "duplicated", one before it "not sorted". Runs before [`decode_time`] so such axes get
/// that message rather than one about gaps.
pub fn check_time_order(values: &[f64], units: &str, calendar: Calendar) -> Result<(), String> {
    let (unit_seconds, _, ref_seconds) = parse_time_units(units)?;
    let mut prev: Option<(i64, f64)> = None;
    for (i, &v) in values.iter().enumerate() {
        if !v.is_finite() || v.abs() > 1e12 {
            return Err(format!("time value {v} at step {i} is not a usable number"));
        }
        let day = ((ref_seconds + v * unit_seconds).round() as i64).div_euclid(86_400);
        if let Some((p, pv)) = prev {
            if day == p {
                return Err(format!(
                    "time axis is duplicated: step {i} ({v}) falls on the same day as step {} \
                     ({pv}) in calendar {calendar}",
                    i - 1
                ));
            }
            if day < p {
                return Err(format!(
                    "time axis is not sorted: step {i} ({v}) comes before step {} ({pv})",
                    i - 1
                ));
            }
        }
        prev = Some((day, v));
    }
    Ok(())
}

/// Parses `days since 1850-01-01 00:00:00` into (seconds per unit, reference date, seconds into
/// the reference day).
pub fn parse_time_units(units: &str) -> Result<(f64, CfDate, f64), String> {
    let bad = |why: &str| format!("time units \"{units}\": {why}");
    let lower = units.trim().to_ascii_lowercase();
    let (unit, reference) = lower
        .split_once(" since ")
        .ok_or_else(|| bad("expected \"<days|hours> since <date>\""))?;
    let unit_seconds = match unit.trim() {
        "days" | "day" | "d" => 86_400.0,
        "hours" | "hour" | "hrs" | "hr" | "h" => 3_600.0,
        "minutes" | "minute" | "mins" | "min" => 60.0,
        "seconds" | "second" | "secs" | "sec" | "s" => 1.0,
        other => return Err(bad(&format!("unsupported time unit \"{other}\""))),
    };
    let reference = reference.trim();
    let (date_part, rest) = match reference.find([' ', 't']) {
        Some(i) => (&reference[..i], reference[i + 1..].trim()),
        None => (reference, ""),
    };
    let date = parse_ymd(date_part).ok_or_else(|| bad("cannot parse the reference date"))?;
    let seconds = parse_time_of_day(rest).ok_or_else(|| {
        bad("cannot parse the reference time (or it has a non-UTC offset, which is not supported)")
    })?;
    Ok((unit_seconds, date, seconds))
}

fn parse_ymd(s: &str) -> Option<CfDate> {
    let (neg, s) = match s.strip_prefix('-') {
        Some(rest) => (true, rest),
        None => (false, s),
    };
    let mut it = s.split('-');
    let y: i32 = it.next()?.parse().ok()?;
    let m: u8 = it.next()?.parse().ok()?;
    let d: u8 = it.next().unwrap_or("1").parse().ok()?;
    if it.next().is_some() {
        return None;
    }
    Some(CfDate::new(if neg { -y } else { y }, m, d))
}

/// `HH:MM[:SS[.fff]]` optionally followed by `Z`, `UTC` or a zero offset; empty is midnight.
fn parse_time_of_day(s: &str) -> Option<f64> {
    let s = s.trim();
    if s.is_empty() {
        return Some(0.0);
    }
    let end = s
        .find(|c: char| !(c.is_ascii_digit() || c == ':' || c == '.'))
        .unwrap_or(s.len());
    let (clock, tz) = (&s[..end], s[end..].trim());
    let tz_ok = tz.is_empty()
        || matches!(tz, "z" | "utc" | "gmt")
        || (tz.starts_with(['+', '-']) && tz[1..].chars().all(|c| c == '0' || c == ':'));
    if !tz_ok {
        return None;
    }
    let mut parts = clock.split(':');
    let h: f64 = parts.next()?.parse().ok()?;
    let m: f64 = match parts.next() {
        Some(p) => p.parse().ok()?,
        None => 0.0,
    };
    let sec: f64 = match parts.next() {
        Some(p) => p.parse().ok()?,
        None => 0.0,
    };
    if parts.next().is_some() || !(0.0..24.0).contains(&h) || !(0.0..60.0).contains(&m) {
        return None;
    }
    Some(h * 3600.0 + m * 60.0 + sec)
}

#[cfg(test)]
mod tests {
    use super::*;

    const ALL: [Calendar; 6] = [
        Calendar::Julian,
        Calendar::Standard,
        Calendar::ProlepticGregorian,
        Calendar::NoLeap,
        Calendar::AllLeap,
        Calendar::Day360,
    ];

    #[test]
    fn parses_calendar_names() {
        assert_eq!(Calendar::parse("gregorian"), Some(Calendar::Standard));
        assert_eq!(Calendar::parse(" Standard "), Some(Calendar::Standard));
        assert_eq!(
            Calendar::parse("proleptic_gregorian"),
            Some(Calendar::ProlepticGregorian)
        );
        assert_eq!(Calendar::parse("365_day"), Some(Calendar::NoLeap));
        assert_eq!(Calendar::parse("noleap"), Some(Calendar::NoLeap));
        assert_eq!(Calendar::parse("366_day"), Some(Calendar::AllLeap));
        assert_eq!(Calendar::parse("all_leap"), Some(Calendar::AllLeap));
        assert_eq!(Calendar::parse("360_day"), Some(Calendar::Day360));
        assert_eq!(Calendar::parse("julian"), Some(Calendar::Julian));
        assert_eq!(Calendar::parse("lunar"), None);
        assert_eq!(Calendar::parse("none"), None);
    }

    #[test]
    fn known_julian_day_numbers() {
        let g = Calendar::ProlepticGregorian;
        assert_eq!(g.day_number(CfDate::new(1970, 1, 1)), Some(2_440_588));
        assert_eq!(g.day_number(CfDate::new(2000, 1, 1)), Some(2_451_545));
        assert_eq!(g.day_number(CfDate::new(1582, 10, 15)), Some(2_299_161));
        let s = Calendar::Standard;
        // The day before the Gregorian reform is Julian 1582-10-04.
        assert_eq!(s.day_number(CfDate::new(1582, 10, 4)), Some(2_299_160));
        assert_eq!(s.date(2_299_160), CfDate::new(1582, 10, 4));
        assert_eq!(s.day_number(CfDate::new(1582, 10, 10)), None);
        // Julian 0001-01-01 (mixed calendar) is two days before proleptic Gregorian 0001-01-01.
        let mixed = s.day_number(CfDate::new(1, 1, 1)).unwrap();
        let prolep = g.day_number(CfDate::new(1, 1, 1)).unwrap();
        assert_eq!(mixed - prolep, -2);
        assert_eq!(s.date(mixed), CfDate::new(1, 1, 1));
        // Julian 1500 is a leap year, Gregorian 1500 is not.
        assert!(s.is_leap(1500));
        assert!(!g.is_leap(1500));
        assert!(!g.is_leap(1900) && g.is_leap(2000) && g.is_leap(2024));
    }

    #[test]
    fn day_numbers_round_trip_and_are_consecutive() {
        for cal in ALL {
            let mut prev = cal.day_number(CfDate::new(1500, 1, 1)).unwrap() - 1;
            for year in 1500..2200 {
                let mut days = 0;
                for month in 1..=12u8 {
                    for day in 1..=cal.days_in_month(year, month) as u8 {
                        let d = CfDate::new(year, month, day);
                        let Some(n) = cal.day_number(d) else {
                            continue; // October 1582 gap in the standard calendar
                        };
                        assert_eq!(n, prev + 1, "{cal} {d}");
                        assert_eq!(cal.date(n), d, "{cal} {n}");
                        prev = n;
                        days += 1;
                    }
                }
                assert_eq!(days, cal.days_in_year(year), "{cal} {year}");
            }
        }
    }

    #[test]
    fn julian_leap_years_every_fourth_year() {
        // cftime: DatetimeJulian(1900, 2, 29) exists; 59 days after 1900-01-01 is 29 Feb.
        let c = Calendar::Julian;
        assert!(c.is_leap(1900) && c.is_leap(2100) && !c.is_leap(2001));
        let d = decode_time(&[59.0, 60.0], "days since 1900-01-01", c).unwrap();
        assert_eq!(d, vec![CfDate::new(1900, 2, 29), CfDate::new(1900, 3, 1)]);
        assert_eq!(c.days_in_year(2100), 366);
    }

    #[test]
    fn order_check_names_duplicates_and_unsorted_steps() {
        let c = Calendar::Standard;
        let u = "days since 2000-01-01";
        assert!(check_time_order(&[0.0, 1.0, 3.0], u, c).is_ok());
        let e = check_time_order(&[0.0, 1.0, 1.0], u, c).unwrap_err();
        assert!(e.contains("duplicated") && e.contains("step 2"), "{e}");
        let e = check_time_order(&[0.0, 2.0, 1.0], u, c).unwrap_err();
        assert!(e.contains("not sorted") && e.contains("step 2"), "{e}");
        let e = check_time_order(&[0.0, 0.25], u, c).unwrap_err();
        assert!(e.contains("duplicated"), "{e}");
    }

    #[test]
    fn days_in_year_per_calendar() {
        assert_eq!(Calendar::Standard.days_in_year(2000), 366);
        assert_eq!(Calendar::Standard.days_in_year(2100), 365);
        assert_eq!(Calendar::NoLeap.days_in_year(2000), 365);
        assert_eq!(Calendar::AllLeap.days_in_year(2001), 366);
        assert_eq!(Calendar::Day360.days_in_year(2000), 360);
        assert_eq!(Calendar::Day360.days_in_month(2000, 2), 30);
        assert_eq!(Calendar::NoLeap.days_in_month(2000, 2), 28);
        assert_eq!(Calendar::AllLeap.days_in_month(2001, 2), 29);
    }

    #[test]
    fn parses_time_units() {
        let (u, d, s) = parse_time_units("days since 1850-01-01").unwrap();
        assert_eq!((u, d, s), (86_400.0, CfDate::new(1850, 1, 1), 0.0));
        let (u, d, s) = parse_time_units("hours since 1950-1-1 12:00:00").unwrap();
        assert_eq!((u, d, s), (3_600.0, CfDate::new(1950, 1, 1), 43_200.0));
        let (_, d, s) = parse_time_units("days since 2000-01-01T06:30:00Z").unwrap();
        assert_eq!((d, s), (CfDate::new(2000, 1, 1), 23_400.0));
        let (_, _, s) = parse_time_units("Days since 2000-01-01 00:00:00.0 +00:00").unwrap();
        assert_eq!(s, 0.0);
        assert!(parse_time_units("days since 2000-01-01 00:00 +05:00").is_err());
        assert!(parse_time_units("months since 2000-01-01").is_err());
        assert!(parse_time_units("days").is_err());
        assert!(parse_time_units("days since yesterday").is_err());
    }

    #[test]
    fn decodes_daily_axes() {
        let v: Vec<f64> = (0..4).map(|i| f64::from(i) + 0.5).collect();
        let d = decode_time(&v, "days since 2000-02-27", Calendar::Standard).unwrap();
        assert_eq!(
            d,
            [
                CfDate::new(2000, 2, 27),
                CfDate::new(2000, 2, 28),
                CfDate::new(2000, 2, 29),
                CfDate::new(2000, 3, 1)
            ]
        );
        let d = decode_time(&v, "days since 2001-02-27", Calendar::NoLeap).unwrap();
        assert_eq!(d[2], CfDate::new(2001, 3, 1));
        let d = decode_time(&v, "days since 2001-02-27", Calendar::AllLeap).unwrap();
        assert_eq!(d[2], CfDate::new(2001, 2, 29));
        let d = decode_time(&v, "days since 2001-02-29", Calendar::Day360).unwrap();
        assert_eq!(d[1], CfDate::new(2001, 2, 30));
        assert_eq!(d[2], CfDate::new(2001, 3, 1));
        // Hours at noon, and a reference time that pushes day 0 to the next date.
        let h: Vec<f64> = (0..3).map(|i| f64::from(i) * 24.0 + 12.0).collect();
        let d = decode_time(&h, "hours since 1999-12-31 00:00:00", Calendar::Standard).unwrap();
        assert_eq!(d[1], CfDate::new(2000, 1, 1));
        let d = decode_time(
            &[0.0, 1.0],
            "days since 1999-12-31 18:00",
            Calendar::Standard,
        )
        .unwrap();
        assert_eq!(d[0], CfDate::new(1999, 12, 31));
        // Float noise just below a whole day still lands on that day.
        let d = decode_time(
            &[0.999_999_999_9, 2.0],
            "days since 2000-1-1",
            Calendar::Standard,
        );
        assert_eq!(d.unwrap()[0], CfDate::new(2000, 1, 2));
        // Reference before 1582 in the mixed calendar (cftime behaviour).
        let n = 730_121.0; // days from Julian 0001-01-01 to 2000-01-01
        let d = decode_time(&[n], "days since 0001-01-01", Calendar::Standard).unwrap();
        assert_eq!(d[0], CfDate::new(2000, 1, 1));
    }

    #[test]
    fn rejects_non_daily_axes() {
        assert!(decode_time(&[0.0, 2.0], "days since 2000-01-01", Calendar::Standard).is_err());
        assert!(decode_time(&[0.0, 12.0], "hours since 2000-01-01", Calendar::Standard).is_err());
        assert!(decode_time(&[1.0, 0.0], "days since 2000-01-01", Calendar::Standard).is_err());
        assert!(decode_time(&[f64::NAN], "days since 2000-01-01", Calendar::Standard).is_err());
        assert!(decode_time(&[0.0], "days since 2001-02-29", Calendar::Standard).is_err());
    }
}
