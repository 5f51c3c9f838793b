//! Settings of the operator, parsed and checked once at `init`.

use jiff::SignedDuration;
use weir_operator::{Error, Settings};

/// The names of a trade's fields, as configured.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Fields {
    pub time: String,
    pub ticker: String,
    pub price: String,
}

/// Which clock assigns a trade to windows.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TimeMode {
    /// The trade's own timestamp (the `EVENT_TIME` field); windows fire on the watermark.
    Event,
    /// The host's processing time when the batch arrived; windows fire on ticks.
    Processing,
}

/// The operator's configuration; every field has the default the reference application uses.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Config {
    /// Window length, ms (`window`, default 60s).
    pub window_ms: i64,
    /// Distance between window starts, ms (`slide`, default 10s).
    pub slide_ms: i64,
    /// Which time assigns trades to windows (`time`, default `event`).
    pub time: TimeMode,
    /// How far behind the newest event time the watermark trails, ms (`out-of-orderness`,
    /// default 1s).
    pub out_of_orderness_ms: i64,
    /// How far ahead of processing time a trade's event time may be, ms (`max-ahead`, default
    /// 1d): a trade from further in the future (a clock or data error) is refused, or it would
    /// carry the watermark with it and make every later trade late.
    pub max_ahead_ms: i64,
    /// JSON field with the trade's time (`event-time-field`, default `EVENT_TIME`).
    pub event_time_field: String,
    /// JSON field with the key (`ticker-field`, default `TICKER`).
    pub ticker_field: String,
    /// JSON field with the price (`price-field`, default `PRICE`).
    pub price_field: String,
}

/// Every setting the operator accepts.
pub const KNOWN: &[&str] = &[
    "window",
    "slide",
    "time",
    "out-of-orderness",
    "max-ahead",
    "event-time-field",
    "ticker-field",
    "price-field",
];

impl Default for Config {
    fn default() -> Self {
        Self {
            window_ms: 60_000,
            slide_ms: 10_000,
            time: TimeMode::Event,
            out_of_orderness_ms: 1_000,
            max_ahead_ms: 86_400_000,
            event_time_field: "EVENT_TIME".into(),
            ticker_field: "TICKER".into(),
            price_field: "PRICE".into(),
        }
    }
}

/// Parses `60s`, `1m`, `500ms`, `1m 30s` or `PT60S`, or a bare number of milliseconds.
fn duration_ms(value: &str) -> Result<i64, String> {
    if let Ok(ms) = value.trim().parse::<i64>() {
        return Ok(ms);
    }
    let d: SignedDuration =
        value.parse().map_err(|e| format!("{e}; write a duration such as 60s, 500ms or 1m"))?;
    Ok(d.as_millis() as i64)
}

impl Config {
    /// The names of a trade's fields.
    pub fn fields(&self) -> Fields {
        Fields {
            time: self.event_time_field.clone(),
            ticker: self.ticker_field.clone(),
            price: self.price_field.clone(),
        }
    }

    /// Read and check the settings.
    pub fn from_settings(settings: &Settings) -> Result<Self, Error> {
        settings.check_known(KNOWN)?;
        let d = Config::default();
        let field = |key: &str, default: String| -> Result<String, Error> {
            settings.parse_or(key, default, |v| {
                if v.is_empty() { Err("a field name cannot be empty") } else { Ok(v.to_string()) }
            })
        };
        let config = Config {
            window_ms: settings.parse_or("window", d.window_ms, duration_ms)?,
            slide_ms: settings.parse_or("slide", d.slide_ms, duration_ms)?,
            time: settings.parse_or("time", d.time, |v| match v {
                "event" => Ok(TimeMode::Event),
                "processing" => Ok(TimeMode::Processing),
                _ => Err("expected event or processing"),
            })?,
            out_of_orderness_ms: settings.parse_or("out-of-orderness", d.out_of_orderness_ms, duration_ms)?,
            max_ahead_ms: settings.parse_or("max-ahead", d.max_ahead_ms, duration_ms)?,
            event_time_field: field("event-time-field", d.event_time_field)?,
            ticker_field: field("ticker-field", d.ticker_field)?,
            price_field: field("price-field", d.price_field)?,
        };
        if config.window_ms <= 0 || config.slide_ms <= 0 {
            return Err(Error::new(format!(
                "window ({} ms) and slide ({} ms) must both be positive",
                config.window_ms, config.slide_ms
            )));
        }
        if config.slide_ms > config.window_ms {
            return Err(Error::new(format!(
                "slide ({} ms) is longer than window ({} ms): trades between windows would belong to none; \
                 use slide <= window",
                config.slide_ms, config.window_ms
            )));
        }
        if config.out_of_orderness_ms < 0 || config.max_ahead_ms < 0 {
            return Err(Error::new("out-of-orderness and max-ahead cannot be negative"));
        }
        Ok(config)
    }

    /// The end of the first window ending after `t` (windows end at multiples of the slide,
    /// offset by the window): the earliest window containing a pane starting at `t`, or the
    /// first one not closed by a window ending at `t`.
    #[inline(always)]
    pub fn first_end_after(&self, t: i64) -> i64 {
        let (w, s) = (self.window_ms, self.slide_ms);
        (t - w).div_euclid(s) * s + s + w
    }

    /// The pane length: the largest length that divides both window and slide, so that every
    /// window is a whole number of panes and a trade updates exactly one pane.
    pub fn pane_ms(&self) -> i64 {
        let (mut a, mut b) = (self.window_ms, self.slide_ms);
        while b != 0 {
            (a, b) = (b, a % b);
        }
        a
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn config(pairs: &[(&str, &str)]) -> Result<Config, Error> {
        Config::from_settings(&Settings::from_pairs(pairs))
    }

    #[test]
    fn defaults_match_the_reference_application() {
        let c = config(&[]).unwrap();
        assert_eq!(
            (c.window_ms, c.slide_ms, c.out_of_orderness_ms, c.time),
            (60_000, 10_000, 1_000, TimeMode::Event)
        );
        assert_eq!(c.pane_ms(), 10_000);
    }

    #[test]
    fn durations_and_modes_parse() {
        let c = config(&[
            ("window", "1m 30s"),
            ("slide", "45000"),
            ("out-of-orderness", "250ms"),
            ("time", "processing"),
        ])
        .unwrap();
        assert_eq!((c.window_ms, c.slide_ms, c.out_of_orderness_ms), (90_000, 45_000, 250));
        assert_eq!(c.time, TimeMode::Processing);
        assert_eq!(config(&[("window", "7s"), ("slide", "3s")]).unwrap().pane_ms(), 1_000);
    }

    #[test]
    fn bad_settings_say_what_is_wrong() {
        let msg = |p: &[(&str, &str)]| config(p).unwrap_err().to_string();
        assert!(msg(&[("window", "soon")]).contains("setting window=\"soon\" is invalid"));
        assert!(msg(&[("time", "wall")]).contains("expected event or processing"));
        assert!(msg(&[("slide", "2m")]).contains("use slide <= window"));
        assert!(msg(&[("window", "0s")]).contains("must both be positive"));
        assert!(msg(&[("widow", "1m")]).contains("unknown setting \"widow\""));
    }
}
