//! Times as people type and read them: `--at "2026-12-01 09:00"` in the configured time zone,
//! `--in 2h`, and a moment shown back in that zone. A leaf: it imports nothing of the bot.

use jiff::{civil, tz::TimeZone, Span, Timestamp, Zoned};

/// The formats `--at` and `--in` accept, for refusals.
pub const FORMATS: &str =
    "`--at \"YYYY-MM-DD HH:MM\"` (or just `HH:MM` for today), or `--in` a duration like `30m`, `2h`, `1d`";

/// The time zone named in the config (an IANA name such as `Europe/Berlin`, or `UTC`).
pub fn zone(name: &str) -> Result<TimeZone, String> {
    TimeZone::get(name)
        .map_err(|_| format!("`{name}` is not a time zone (use an IANA name like Europe/Berlin)"))
}

/// The moment `--at text` names in zone `tz`, in Unix milliseconds; it must be after `now_ms`.
pub fn parse_at(text: &str, tz: &TimeZone, now_ms: i64) -> Result<i64, String> {
    let now = zoned(now_ms, tz);
    let text = text.trim();
    let civil = text
        .parse::<civil::DateTime>()
        .ok()
        .or_else(|| text.parse::<civil::Time>().ok().map(|time| now.date().to_datetime(time)))
        .ok_or_else(|| format!("I cannot read the time `{text}`. Write {FORMATS}."))?;
    let at = civil.to_zoned(tz.clone()).map_err(|error| format!("`{text}`: {error}"))?;
    future(at.timestamp().as_millisecond(), now_ms, tz)
}

/// The moment `--in text` names, counted from `now_ms`, in Unix milliseconds.
pub fn parse_in(text: &str, tz: &TimeZone, now_ms: i64) -> Result<i64, String> {
    let unreadable = || format!("I cannot read the duration `{text}`. Write {FORMATS}.");
    let span: Span = text.trim().parse().map_err(|_| unreadable())?;
    let at = zoned(now_ms, tz).checked_add(span).map_err(|_| unreadable())?;
    future(at.timestamp().as_millisecond(), now_ms, tz)
}

/// `at` when it is later than `now_ms`; otherwise the refusal.
fn future(at: i64, now_ms: i64, tz: &TimeZone) -> Result<i64, String> {
    if at <= now_ms {
        return Err(format!(
            "{} is not in the future (it is {} now). Write {FORMATS}.",
            show(at, tz),
            show(now_ms, tz)
        ));
    }
    Ok(at)
}

/// `ms` in zone `tz`, to the minute, with the zone's name: `2026-12-01 09:00 Europe/Berlin`.
pub fn show(ms: i64, tz: &TimeZone) -> String {
    let name = tz.iana_name().unwrap_or("UTC");
    format!("{} {name}", zoned(ms, tz).strftime("%Y-%m-%d %H:%M"))
}

/// A length of time to the minute, as people say it: `45 s`, `12 min`, `3 h 5 min`, `2 d 4 h`.
pub fn show_length(ms: i64) -> String {
    let seconds = ms.max(0) / 1000;
    let (days, hours, minutes) = (seconds / 86_400, seconds % 86_400 / 3600, seconds % 3600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => format!("{seconds} s"),
        (0, 0, minutes) => format!("{minutes} min"),
        (0, hours, 0) => format!("{hours} h"),
        (0, hours, minutes) => format!("{hours} h {minutes} min"),
        (days, 0, _) => format!("{days} d"),
        (days, hours, _) => format!("{days} d {hours} h"),
    }
}

fn zoned(ms: i64, tz: &TimeZone) -> Zoned {
    Timestamp::from_millisecond(ms).unwrap_or(Timestamp::UNIX_EPOCH).to_zoned(tz.clone())
}

#[cfg(test)]
mod tests {
    use super::*;

    /// 2026-11-26 10:00 UTC.
    const NOW: i64 = 1_795_687_200_000;

    #[test]
    fn at_reads_a_date_and_time_in_the_configured_zone() {
        let utc = zone("UTC").unwrap();
        let berlin = zone("Europe/Berlin").unwrap();
        let at = parse_at("2026-12-01 09:00", &utc, NOW).unwrap();
        assert_eq!(show(at, &utc), "2026-12-01 09:00 UTC");
        let in_berlin = parse_at("2026-12-01 09:00", &berlin, NOW).unwrap();
        assert_eq!(at - in_berlin, 3_600_000, "09:00 in Berlin is 08:00 UTC in winter");
        assert_eq!(show(in_berlin, &berlin), "2026-12-01 09:00 Europe/Berlin");
        assert_eq!(parse_at("2026-12-01T09:00", &utc, NOW).unwrap(), at);
        assert_eq!(show(parse_at("11:30", &utc, NOW).unwrap(), &utc), "2026-11-26 11:30 UTC", "today");
    }

    #[test]
    fn in_counts_from_now() {
        let utc = zone("UTC").unwrap();
        assert_eq!(parse_in("2h", &utc, NOW).unwrap(), NOW + 7_200_000);
        assert_eq!(parse_in("1h30m", &utc, NOW).unwrap(), NOW + 5_400_000);
        assert_eq!(parse_in("1d", &utc, NOW).unwrap(), NOW + 86_400_000);
        assert_eq!(parse_in("10s", &utc, NOW).unwrap(), NOW + 10_000);
    }

    #[test]
    fn past_and_unreadable_times_are_refused_with_the_formats_that_work() {
        let utc = zone("UTC").unwrap();
        let past = parse_at("2026-11-01 09:00", &utc, NOW).unwrap_err();
        assert!(
            past.starts_with("2026-11-01 09:00 UTC is not in the future (it is 2026-11-26 10:00 UTC now)")
        );
        assert!(past.contains("YYYY-MM-DD HH:MM"), "{past}");
        assert!(parse_at("09:00", &utc, NOW).unwrap_err().contains("not in the future"));
        let unreadable = parse_at("tomorrow-ish", &utc, NOW).unwrap_err();
        assert!(unreadable.starts_with("I cannot read the time `tomorrow-ish`"), "{unreadable}");
        assert!(parse_in("soon", &utc, NOW).unwrap_err().contains("`30m`, `2h`, `1d`"));
        assert!(parse_in("-2h", &utc, NOW).unwrap_err().contains("not in the future"));
        assert!(zone("Mars/Olympus").unwrap_err().contains("not a time zone"));
    }

    #[test]
    fn lengths_read_like_speech() {
        assert_eq!(show_length(45_000), "45 s");
        assert_eq!(show_length(12 * 60_000), "12 min");
        assert_eq!(show_length(3 * 3_600_000 + 5 * 60_000), "3 h 5 min");
        assert_eq!(show_length(2 * 86_400_000 + 4 * 3_600_000), "2 d 4 h");
    }
}
