//! A price-alert filter: a different kind of operator from the windowed default, record in,
//! record (sometimes) out. Per ticker it keeps a reference price, the price of its last alert
//! (or its first trade); a trade whose price differs from the reference by at least
//! `threshold` percent (default 5) emits an alert and becomes the new reference.
//!
//! Settings: `threshold` (percent, default 5). Output, keyed by ticker:
//! `{"TICKER":"AMZN","EVENT_TIME":"2026-11-25T10:00:00.123","PRICE":44.3,"REFERENCE_PRICE":42.0,"CHANGE_PCT":5.48}`.

use std::collections::HashMap;

use serde::{Deserialize, Serialize};
use weir_operator::{Batch, Error, Grouping, KeyedStates, Operator, Output, Settings, codec};

/// The fields this operator reads; the rest of the record is ignored.
#[derive(Deserialize)]
struct Trade<'a> {
    #[serde(rename = "TICKER", borrow)]
    ticker: std::borrow::Cow<'a, str>,
    #[serde(rename = "PRICE")]
    price: f64,
    #[serde(rename = "EVENT_TIME", default)]
    event_time: Option<serde_json::Value>,
}

#[derive(Serialize)]
#[serde(rename_all = "SCREAMING_SNAKE_CASE")]
struct Alert<'a> {
    ticker: &'a str,
    #[serde(skip_serializing_if = "Option::is_none")]
    event_time: Option<serde_json::Value>,
    price: f64,
    reference_price: f64,
    change_pct: f64,
}

/// The operator: the reference price per ticker.
#[derive(Debug)]
pub struct PriceAlert {
    threshold_pct: f64,
    // The state is tiny and lookups are few compared with parsing; a std HashMap is plenty.
    reference: HashMap<String, f64>,
}

impl Operator for PriceAlert {
    fn init(settings: &Settings) -> Result<Self, Error> {
        settings.check_known(&["threshold"])?;
        let threshold_pct =
            settings.parse_or("threshold", 5.0, |v| match v.trim_end_matches('%').parse::<f64>() {
                Ok(t) if t > 0.0 && t.is_finite() => Ok(t),
                _ => Err("expected a positive percentage such as 5 or 2.5%"),
            })?;
        Ok(Self { threshold_pct, reference: HashMap::new() })
    }

    fn process(&mut self, batch: &Batch<'_>, out: &mut Output) -> Result<(), Error> {
        for record in batch.records() {
            let trade: Trade<'_> = match serde_json::from_slice(record.data) {
                Ok(t) => t,
                Err(e) => {
                    out.reject(record.index, format!("not a trade: {e}"));
                    continue;
                }
            };
            let Some(reference) = self.reference.get_mut(trade.ticker.as_ref()) else {
                self.reference.insert(trade.ticker.into_owned(), trade.price);
                continue;
            };
            let change_pct = (trade.price - *reference) / *reference * 100.0;
            if change_pct.abs() >= self.threshold_pct {
                let alert = Alert {
                    ticker: &trade.ticker,
                    event_time: trade.event_time.clone(),
                    price: trade.price,
                    reference_price: *reference,
                    change_pct: (change_pct * 100.0).round() / 100.0,
                };
                out.emit_with(&trade.ticker, |buf| {
                    let _ = serde_json::to_writer(buf, &alert);
                });
                *reference = trade.price;
            }
        }
        Ok(())
    }

    fn grouping(&self) -> Grouping {
        Grouping::JsonField("TICKER".into())
    }

    fn snapshot(&self, out: &mut KeyedStates) -> Result<(), Error> {
        for (ticker, price) in &self.reference {
            out.push_with(ticker, |buf| codec::encode_into(1, price, buf))?;
        }
        Ok(())
    }

    fn restore(&mut self, state: &KeyedStates) -> Result<(), Error> {
        for entry in state.iter().filter(|e| !e.is_instance_wide()) {
            self.reference.insert(entry.key.to_owned(), codec::decode(1, entry.state)?);
        }
        Ok(())
    }
}

weir_operator::export_operator!(PriceAlert);

#[cfg(test)]
mod tests {
    use super::*;
    use weir_operator::Harness;

    fn trade(ticker: &str, price: f64) -> Vec<u8> {
        format!(r#"{{"EVENT_TIME": "2026-11-25T10:00:00.000", "TICKER": "{ticker}", "PRICE": {price}}}"#)
            .into_bytes()
    }

    #[test]
    fn alerts_when_the_move_crosses_the_threshold_then_rebases() {
        let mut h = Harness::<PriceAlert>::new(&[("threshold", "10")]).unwrap();
        for (t, p) in
            [("A", 100.0), ("A", 109.0), ("B", 50.0), ("A", 110.0), ("A", 115.0), ("A", 98.0), ("B", 40.0)]
        {
            h.push(t, &trade(t, p));
        }
        h.end_input().unwrap();
        let out = h.output_strings();
        assert_eq!(out.len(), 3, "{out:?}");
        assert_eq!(out[0].0, "A");
        assert!(
            out[0].1.contains(r#""PRICE":110.0,"REFERENCE_PRICE":100.0,"CHANGE_PCT":10.0"#),
            "{}",
            out[0].1
        );
        assert!(out[1].1.contains(r#""PRICE":98.0,"REFERENCE_PRICE":110.0"#), "{}", out[1].1);
        assert!(
            out[2].1.contains(r#""TICKER":"B","EVENT_TIME":"2026-11-25T10:00:00.000","PRICE":40.0"#),
            "{}",
            out[2].1
        );
    }

    #[test]
    fn reference_prices_survive_a_restart_and_bad_records_are_refused() {
        let mut h = Harness::<PriceAlert>::new(&[]).unwrap();
        h.push("A", &trade("A", 100.0)).push("A", b"{oops");
        let state = h.snapshot().unwrap();
        assert_eq!(h.dead_letters().len(), 1);
        assert!(h.dead_letters()[0].reason.starts_with("not a trade"));
        h.restart_from(&state).unwrap();
        h.push("A", &trade("A", 106.0));
        h.end_input().unwrap();
        assert_eq!(h.output().len(), 1);
        assert!(Harness::<PriceAlert>::new(&[("threshold", "-1")]).is_err());
    }
}
