//! Wall-clock helpers: the time as UNIX seconds, and a human-readable UTC rendering (without a
//! calendar crate: the civil-from-days algorithm is a few lines).

use std::time::{SystemTime, UNIX_EPOCH};

pub fn unix_now() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_secs())
}

pub fn unix_now_ms() -> u64 {
    SystemTime::now().duration_since(UNIX_EPOCH).map_or(0, |d| d.as_millis() as u64)
}

/// (year, month 1-12, day 1-31) of a day count since 1970-01-01 (Howard Hinnant's algorithm).
fn civil_from_days(z: i64) -> (i64, u32, u32) {
    let z = z + 719_468;
    let era = z.div_euclid(146_097);
    let doe = z.rem_euclid(146_097);
    let yoe = (doe - doe / 1460 + doe / 36_524 - doe / 146_096) / 365;
    let y = yoe + era * 400;
    let doy = doe - (365 * yoe + yoe / 4 - yoe / 100);
    let mp = (5 * doy + 2) / 153;
    let d = (doy - (153 * mp + 2) / 5 + 1) as u32;
    let m = if mp < 10 { mp + 3 } else { mp - 9 } as u32;
    (if m <= 2 { y + 1 } else { y }, m, d)
}

const DAYS: [&str; 7] = ["Thursday", "Friday", "Saturday", "Sunday", "Monday", "Tuesday", "Wednesday"];
const MONTHS: [&str; 12] = [
    "January",
    "February",
    "March",
    "April",
    "May",
    "June",
    "July",
    "August",
    "September",
    "October",
    "November",
    "December",
];

/// `Friday November 27 2026 -- 14:11:58 +00:00`, the style ircd-hybrid uses.
pub fn format_utc(secs: u64) -> String {
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    let wd = DAYS[(days.rem_euclid(7)) as usize];
    format!("{wd} {} {d} {y} -- {:02}:{:02}:{:02} +00:00", MONTHS[m as usize - 1], rem / 3600, rem / 60 % 60, rem % 60)
}

/// `2026-11-27T14:11:58.123Z`, the IRCv3 server-time format.
pub fn format_iso_ms(ms: u64) -> String {
    let secs = ms / 1000;
    let days = (secs / 86_400) as i64;
    let rem = secs % 86_400;
    let (y, m, d) = civil_from_days(days);
    format!("{y:04}-{m:02}-{d:02}T{:02}:{:02}:{:02}.{:03}Z", rem / 3600, rem / 60 % 60, rem % 60, ms % 1000)
}

/// Days since 1970-01-01 of a civil date (the inverse of `civil_from_days`).
fn days_from_civil(y: i64, m: u32, d: u32) -> i64 {
    let y = if m <= 2 { y - 1 } else { y };
    let era = y.div_euclid(400);
    let yoe = y.rem_euclid(400);
    let mp = if m > 2 { m - 3 } else { m + 9 } as i64;
    let doy = (153 * mp + 2) / 5 + d as i64 - 1;
    let doe = yoe * 365 + yoe / 4 - yoe / 100 + doy;
    era * 146_097 + doe - 719_468
}

/// Reads the server-time format back (`2026-11-27T14:11:58.123Z`; the fraction may have 0 to
/// 9 digits, kept to milliseconds): milliseconds since the epoch. None unless well-formed.
pub fn parse_iso_ms(s: &str) -> Option<u64> {
    let s = s.strip_suffix('Z')?;
    let (date, time) = s.split_once('T')?;
    let mut d = date.splitn(3, '-').map(|p| p.parse::<u32>().ok());
    let (y, mo, da) = (d.next()??, d.next()??, d.next()??);
    let (hms, frac) = time.split_once('.').unwrap_or((time, ""));
    let mut t = hms.splitn(3, ':').map(|p| p.parse::<u64>().ok());
    let (h, mi, se) = (t.next()??, t.next()??, t.next()??);
    if !(1..=12).contains(&mo) || !(1..=31).contains(&da) || h > 23 || mi > 59 || se > 60 || frac.len() > 9 {
        return None;
    }
    if !frac.bytes().all(|b| b.is_ascii_digit()) || date.len() != 10 || hms.len() != 8 {
        return None;
    }
    let ms = format!("{frac:0<3}")[..3].parse::<u64>().ok()?;
    let days = days_from_civil(y as i64, mo, da);
    // Checked: a year of nine digits must not overflow (the parser is fed clients' input).
    let secs = u64::try_from(days).ok()?.checked_mul(86_400)? + h * 3600 + mi * 60 + se;
    secs.checked_mul(1000)?.checked_add(ms)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn known_dates() {
        assert_eq!(format_utc(0), "Thursday January 1 1970 -- 00:00:00 +00:00");
        assert_eq!(format_utc(1_795_784_873), "Friday November 27 2026 -- 13:07:53 +00:00");
        assert_eq!(format_iso_ms(951_782_400_123), "2000-02-29T00:00:00.123Z");
    }

    #[test]
    fn iso_times_read_back() {
        for ms in [0, 951_782_400_123, 1_795_784_873_999, 9_214_646_400_000] {
            assert_eq!(parse_iso_ms(&format_iso_ms(ms)), Some(ms));
        }
        assert_eq!(parse_iso_ms("2020-01-01T00:00:00Z"), Some(1_577_836_800_000));
        assert_eq!(parse_iso_ms("2020-01-01T00:00:00.5Z"), Some(1_577_836_800_500));
        for bad in [
            "",
            "2020-01-01",
            "2020-13-01T00:00:00Z",
            "2020-01-01T00:00:00",
            "x020-01-01T00:00:00Z",
            "4294967295-12-31T23:59:59.999Z",
        ] {
            assert_eq!(parse_iso_ms(bad), None, "{bad}");
        }
    }
}
