//! Event times as ms since the Unix epoch, parsed by jiff. Consecutive trades almost always
//! fall in the same minute, so the epoch time of the last minute seen is kept, and a time
//! written as `YYYY-MM-DDTHH:MM:SS[.fff…][Z]` in that same minute only needs its seconds and
//! fraction read; anything else goes to jiff.

use std::cell::Cell;
use std::fmt;

use jiff::Timestamp;
use jiff::civil::Time;
use jiff::fmt::temporal::{Pieces, PiecesOffset};
use weir_json::{digits, low_bytes};

/// Parses event times, remembering the last minute seen.
#[derive(Debug)]
pub struct EventTimes {
    /// `YYYY-MM-DDTHH:MM` of the last event time that took the slow path, as two little-endian
    /// words, and its epoch ms ([`NO_MINUTE`]: none yet). Plain words rather than an
    /// `Option` of an array: in wasm, reading that out of its `Cell` copied it through the
    /// guest's stack for every trade, a tenth of `process`'s time (BENCHMARKS.md, issue 26).
    minute: [Cell<u64>; 2],
    minute_ms: Cell<i64>,
}

/// `minute_ms` when no minute is remembered.
const NO_MINUTE: i64 = i64::MIN;

impl Default for EventTimes {
    fn default() -> Self {
        Self { minute: [Cell::new(0), Cell::new(0)], minute_ms: Cell::new(NO_MINUTE) }
    }
}

/// The first 16 bytes of `b` as two little-endian words.
#[inline(always)]
fn prefix_words(b: &[u8]) -> Option<[u64; 2]> {
    let (lo, rest) = b.split_first_chunk::<8>()?;
    let hi = rest.first_chunk::<8>()?;
    Some([u64::from_le_bytes(*lo), u64::from_le_bytes(*hi)])
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
        let minute_ms = self.minute_ms.get();
        if let Some([lo, hi]) = prefix_words(b)
            && lo == self.minute[0].get()
            && hi == self.minute[1].get()
            && minute_ms != NO_MINUTE
            && let Some(offset) = in_minute(b)
        {
            return Ok(minute_ms + offset);
        }
        let text = std::str::from_utf8(b).map_err(|e| format!("the time is not UTF-8: {e}"))?;
        let ms = parse_time(text)?;
        // Remember this minute when the text has the plain layout and the time is after 1970
        // (so that adding the seconds rounds as jiff does).
        if let Some([lo, hi]) = prefix_words(b)
            && let Some(offset) = in_minute(b)
            && ms - offset >= 0
        {
            self.minute[0].set(lo);
            self.minute[1].set(hi);
            self.minute_ms.set(ms - offset);
        }
        Ok(ms)
    }
}

/// The ms into the minute of a time whose first 16 bytes are `YYYY-MM-DDTHH:MM` (not checked
/// here): what [`seconds_and_fraction`] makes of the rest, read from one word when the rest
/// has at most eight bytes (`:SS.fffZ`), with no loop over the fraction's digits.
#[inline(always)]
fn in_minute(b: &[u8]) -> Option<i64> {
    let rest = b.get(16..)?;
    let n = rest.len();
    let Some(last) = b.last_chunk::<8>().filter(|_| (3..=8).contains(&n)) else {
        return seconds_and_fraction(rest);
    };
    // The rest in the word's low bytes, zeros above it.
    let word = u64::from_le_bytes(*last) >> ((8 - n) * 8);
    let byte = |i: usize| (word >> (i * 8)) as u8;
    let (values, not_digits) = digits(word);
    let digit = |values: u64, i: usize| i64::from((values >> (i * 8)) as u8);
    // `:SS`, the two digits checked by their bits.
    if byte(0) != b':' || not_digits & 0x0080_8000 != 0 {
        return None;
    }
    let seconds = digit(values, 1) * 10 + digit(values, 2);
    if seconds > 59 {
        return None;
    }
    // A `Z` after the seconds is dropped (the seconds' digits were checked, so it is after
    // them); then nothing, or `.` and 1 to 4 digits.
    let n = if byte(n - 1) == b'Z' { n - 1 } else { n };
    let millis = match n {
        3 => 0,
        5..=8 if byte(3) == b'.' => {
            // The fraction's bytes, 4 to n - 1, must be digits; its first three count (the
            // bytes past it are masked off).
            let fraction = low_bytes(n) & !low_bytes(4);
            if not_digits & fraction != 0 {
                return None;
            }
            let kept = values & fraction;
            digit(kept, 4) * 100 + digit(kept, 5) * 10 + digit(kept, 6)
        }
        _ => return None,
    };
    Some(seconds * 1000 + millis)
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
        assert_ne!(times.minute_ms.get(), NO_MINUTE, "the cache was used");
    }

    #[test]
    fn the_seconds_read_from_one_word_are_what_the_byte_loop_reads() {
        for (rest, ms) in [
            (":00", Some(0)),
            (":07.123", Some(7123)),
            (":07.1Z", Some(7100)),
            (":59.9876Z", Some(59987)),
            (":00Z", Some(0)),
            (":0Z", None),
            (":00.Z", None),
            (":60.000", None),
            (":07.12a", None),
        ] {
            assert_eq!(seconds_and_fraction(rest.as_bytes()), ms, "{rest}");
            assert_eq!(in_minute(format!("2026-11-25T10:00{rest}").as_bytes()), ms, "{rest}");
        }
    }

    proptest::proptest! {
        #[test]
        fn the_word_at_a_time_seconds_agree_with_the_byte_loop(rest in ":?[0-9]{0,3}[.x]?[0-9xZ]{0,6}Z?[:0-9.Z+x]{0,2}") {
            let text = format!("2026-11-25T10:00{rest}");
            proptest::prop_assert_eq!(in_minute(text.as_bytes()), seconds_and_fraction(rest.as_bytes()), "{}", rest);
        }
    }
}
