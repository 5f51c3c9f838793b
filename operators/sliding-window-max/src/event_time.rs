//! Event times as ms since the Unix epoch, parsed by jiff. Consecutive trades almost always
//! fall in the same minute, so the epoch time of the last minute seen is kept, and a time
//! written as `YYYY-MM-DDTHH:MM:SS[.fff…][Z]` in that same minute only needs its seconds and
//! fraction read; anything else goes to jiff.

use std::cell::Cell;
use std::fmt;

use jiff::Timestamp;
use jiff::civil::Time;
use jiff::fmt::temporal::{Pieces, PiecesOffset};

/// Parses event times, remembering the last minute seen.
#[derive(Debug, Default)]
pub struct EventTimes {
    /// `YYYY-MM-DDTHH:MM` of the last event time that took the slow path, and its epoch ms.
    minute: Cell<Option<([u8; 16], i64)>>,
}

impl EventTimes {
    /// An event time as ms since the Unix epoch; see [`parse_time`].
    pub fn parse(&self, text: &str) -> Result<i64, String> {
        self.parse_bytes(text.as_bytes())
    }

    /// [`parse`](Self::parse) of text not yet checked to be UTF-8: the same minute as the last
    /// one needs no check (its prefix was), anything else is checked, then parsed.
    #[inline(always)]
    pub fn parse_bytes(&self, b: &[u8]) -> Result<i64, String> {
        if let Some(((prefix, rest), (cached, minute_ms))) =
            b.split_first_chunk::<16>().zip(self.minute.get())
            && *prefix == cached
            && let Some(offset) = seconds_and_fraction(rest)
        {
            return Ok(minute_ms + offset);
        }
        let text = std::str::from_utf8(b).map_err(|e| format!("the time is not UTF-8: {e}"))?;
        let ms = parse_time(text)?;
        // Remember this minute when the text has the plain layout and the time is after 1970
        // (so that adding the seconds rounds as jiff does).
        if let Some((prefix, rest)) = b.split_first_chunk::<16>()
            && let Some(offset) = seconds_and_fraction(rest)
            && ms - offset >= 0
        {
            self.minute.set(Some((*prefix, ms - offset)));
        }
        Ok(ms)
    }
}

/// `:SS`, then optionally `.` and 1 to 9 digits, then optionally `Z`: the ms into the minute.
#[inline(always)]
fn seconds_and_fraction(rest: &[u8]) -> Option<i64> {
    let digit = |c: u8| c.is_ascii_digit().then(|| i64::from(c - b'0'));
    let (&[colon, s1, s2], rest) = rest.split_first_chunk::<3>()?;
    if colon != b':' {
        return None;
    }
    let seconds = digit(s1)? * 10 + digit(s2)?;
    if seconds > 59 {
        return None;
    }
    let rest = rest.strip_suffix(b"Z").unwrap_or(rest);
    let mut millis = 0;
    match rest.split_first() {
        None => {}
        Some((b'.', fraction)) if (1..=9).contains(&fraction.len()) => {
            for (i, &c) in fraction.iter().enumerate() {
                let d = digit(c)?;
                if i < 3 {
                    millis += d * [100, 10, 1][i];
                }
            }
        }
        Some(_) => return None,
    }
    Some(seconds * 1000 + millis)
}

/// Parse an ISO-8601 date-time with or without offset (no offset means UTC; 0 to 9 fraction
/// digits) into ms since the Unix epoch.
pub fn parse_time(text: &str) -> Result<i64, String> {
    let bad = |e: &dyn fmt::Display| {
        format!("{text:?} is not an ISO-8601 date-time such as 2026-11-25T10:00:00.123 ({e})")
    };
    let pieces = Pieces::parse(text).map_err(|e| bad(&e))?;
    let time = pieces.time().unwrap_or(Time::midnight());
    let offset = match pieces.offset() {
        Some(PiecesOffset::Numeric(n)) => n.offset(),
        // None, `Z`, and RFC 9557's "-00:00" (UTC, local offset unknown).
        _ => jiff::tz::Offset::UTC,
    };
    let ts: Timestamp = offset.to_timestamp(pieces.date().to_datetime(time)).map_err(|e| bad(&e))?;
    Ok(ts.as_millisecond())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn iso_8601_times_with_and_without_offsets() {
        let base = 1_795_600_800_000;
        for (text, ms) in [
            ("2026-11-25T10:00:00", base),
            ("2026-11-25T10:00:00.1", base + 100),
            ("2026-11-25T10:00:00.123456789", base + 123),
            ("2026-11-25T10:00:00.123Z", base + 123),
            ("2026-11-25T11:00:00.5+01:00", base + 500),
            ("2026-11-25T05:00:00-05:00", base),
            ("2026-11-25 10:00:00.250", base + 250),
        ] {
            assert_eq!(parse_time(text), Ok(ms), "{text}");
        }
    }

    #[test]
    fn the_same_minute_shortcut_agrees_with_jiff() {
        let times = EventTimes::default();
        let mut texts = vec![];
        for minute in ["2026-11-25T10:00", "2026-11-25T10:01", "1999-12-31T23:59", "2026-11-25 10:01"] {
            for rest in [
                ":00",
                ":07.5",
                ":59.999999999",
                ":30.1Z",
                ":30.123+01:00",
                ":60",
                ":5",
                ":05.",
                ":05.1234567890",
                ":05x",
            ] {
                texts.push(format!("{minute}{rest}"));
            }
        }
        for _ in 0..2 {
            for text in &texts {
                assert_eq!(times.parse(text), parse_time(text), "{text}");
            }
        }
        assert!(times.minute.get().is_some(), "the cache was used");
    }
}
