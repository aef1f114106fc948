//! Times as people type and read them: `--at "2026-12-01 09:00"` in the configured time zone,
//! `--in 2h`, and a moment shown back in that zone. A leaf: it imports nothing of the bot but
//! the catalogue.

use jiff::{civil, tz::TimeZone, Span, Timestamp, Zoned};

use crate::base::i18n::Language;

/// The formats `--at` and `--in` accept, for refusals.
pub fn formats(language: Language) -> String {
    crate::base::i18n::t!(language, "when-formats")
}

/// The time zone named in the config (an IANA name such as `Europe/Berlin`, or `UTC`); the
/// refusal is a config error, for the terminal.
pub fn zone(name: &str) -> Result<TimeZone, String> {
    let refusal = || format!("`{name}` is not a time zone (use an IANA name like Europe/Berlin)"); // not for people
    TimeZone::get(name).map_err(|_| refusal())
}

/// [`parse_at_in`] with English refusals.
pub fn parse_at(text: &str, tz: &TimeZone, now_ms: i64) -> Result<i64, String> {
    parse_at_in(Language::En, text, tz, now_ms)
}

/// [`parse_in_in`] with English refusals.
pub fn parse_in(text: &str, tz: &TimeZone, now_ms: i64) -> Result<i64, String> {
    parse_in_in(Language::En, text, tz, now_ms)
}

/// The moment `--at text` names in zone `tz`, in Unix milliseconds; it must be after `now_ms`.
/// Refusals are in `language`.
pub fn parse_at_in(language: Language, text: &str, tz: &TimeZone, now_ms: i64) -> Result<i64, String> {
    let now = zoned(now_ms, tz);
    let text = text.trim();
    let civil = text
        .parse::<civil::DateTime>()
        .ok()
        .or_else(|| text.parse::<civil::Time>().ok().map(|time| now.date().to_datetime(time)))
        .ok_or_else(|| {
            crate::base::i18n::t!(language, "when-unreadable-time", text = text, formats = formats(language))
        })?;
    let at = civil.to_zoned(tz.clone()).map_err(|error| format!("`{text}`: {error}"))?;
    future(language, at.timestamp().as_millisecond(), now_ms, tz)
}

/// The moment `--in text` names, counted from `now_ms`, in Unix milliseconds. Refusals are in
/// `language`.
pub fn parse_in_in(language: Language, text: &str, tz: &TimeZone, now_ms: i64) -> Result<i64, String> {
    let unreadable = || {
        crate::base::i18n::t!(language, "when-unreadable-duration", text = text, formats = formats(language))
    };
    let span: Span = text.trim().parse().map_err(|_| unreadable())?;
    let at = zoned(now_ms, tz).checked_add(span).map_err(|_| unreadable())?;
    future(language, at.timestamp().as_millisecond(), now_ms, tz)
}

/// `at` when it is later than `now_ms`; otherwise the refusal.
fn future(language: Language, at: i64, now_ms: i64, tz: &TimeZone) -> Result<i64, String> {
    if at <= now_ms {
        let (at, now) = (show(at, tz), show(now_ms, tz));
        return Err(crate::base::i18n::t!(
            language,
            "when-not-future",
            at = at,
            now = now,
            formats = formats(language)
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
/// In `language`.
pub fn show_length(language: Language, ms: i64) -> String {
    let seconds = ms.max(0) / 1000;
    let (days, hours, minutes) = (seconds / 86_400, seconds % 86_400 / 3600, seconds % 3600 / 60);
    match (days, hours, minutes) {
        (0, 0, 0) => crate::base::i18n::t!(language, "when-seconds", seconds = seconds),
        (0, 0, minutes) => crate::base::i18n::t!(language, "when-minutes", minutes = minutes),
        (0, hours, 0) => crate::base::i18n::t!(language, "when-hours", hours = hours),
        (0, hours, minutes) => {
            crate::base::i18n::t!(language, "when-hours-minutes", hours = hours, minutes = minutes)
        }
        (days, 0, _) => crate::base::i18n::t!(language, "when-days", days = days),
        (days, hours, _) => crate::base::i18n::t!(language, "when-days-hours", days = days, hours = hours),
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
        let en = Language::En;
        assert_eq!(show_length(en, 45_000), "45 s");
        assert_eq!(show_length(en, 12 * 60_000), "12 min");
        assert_eq!(show_length(en, 3 * 3_600_000 + 5 * 60_000), "3 h 5 min");
        assert_eq!(show_length(en, 2 * 86_400_000 + 4 * 3_600_000), "2 d 4 h");
    }

    #[test]
    fn lengths_and_refusals_read_like_german_speech() {
        let de = Language::De;
        assert_eq!(show_length(de, 45_000), "45 s");
        assert_eq!(show_length(de, 3 * 3_600_000 + 5 * 60_000), "3 h 5 min");
        assert_eq!(show_length(de, 86_400_000), "1 Tag");
        assert_eq!(show_length(de, 2 * 86_400_000 + 4 * 3_600_000), "2 Tage 4 h");
        assert_eq!(show_length(de, 1_000 * 86_400_000), "1.000 Tage");
        let utc = zone("UTC").unwrap();
        let past = parse_at_in(de, "2026-11-01 09:00", &utc, NOW).unwrap_err();
        assert!(
            past.starts_with(
                "2026-11-01 09:00 UTC liegt nicht in der Zukunft (jetzt ist es 2026-11-26 10:00 UTC)"
            ),
            "{past}"
        );
        assert!(past.contains("oder nur `HH:MM` für heute"), "{past}");
        let unreadable = parse_in_in(de, "bald", &utc, NOW).unwrap_err();
        assert!(
            unreadable.starts_with("Ich kann die Dauer `bald` nicht lesen. Schreiben Sie `--at"),
            "{unreadable}"
        );
        assert_eq!(parse_in_in(de, "2h", &utc, NOW).unwrap(), NOW + 7_200_000);
    }
}
