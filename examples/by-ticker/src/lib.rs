//! An example of the stateless style: one function and one macro line make a whole operator.
//! Each trade goes out unchanged with its `TICKER` as the partition key, so that a stream
//! written with any partition key becomes one keyed by ticker; a record without a ticker is
//! refused, with the reason, to the dead-letter destination.

use weir_operator::{Error, Output, Record};

#[derive(serde::Deserialize)]
struct Trade<'a> {
    #[serde(rename = "TICKER", borrow)]
    ticker: std::borrow::Cow<'a, str>,
}

/// Emit `record` keyed by its ticker.
pub fn by_ticker(record: &Record<'_>, out: &mut Output) -> Result<(), Error> {
    let trade: Trade<'_> =
        serde_json::from_slice(record.data).map_err(|e| Error::new(format!("not a trade: {e}")))?;
    out.emit(&trade.ticker, record.data);
    Ok(())
}

weir_operator::export_map!(ByTicker, by_ticker);

#[cfg(test)]
mod tests {
    use weir_operator::Harness;

    #[test]
    fn trades_are_keyed_by_ticker_and_others_refused() {
        let mut h = Harness::<super::ByTicker>::new(&[]).unwrap();
        h.push("uuid-1", br#"{"TICKER": "AMZN", "PRICE": 1}"#).push("uuid-2", b"{}");
        h.end_input().unwrap();
        assert_eq!(
            h.output_strings(),
            [("AMZN".to_string(), r#"{"TICKER": "AMZN", "PRICE": 1}"#.to_string())]
        );
        assert_eq!(h.dead_letters().len(), 1);
        assert!(h.dead_letters()[0].reason.starts_with("not a trade: missing field `TICKER`"));
        assert!(Harness::<super::ByTicker>::new(&[("window", "1s")]).is_err(), "takes no settings");
    }
}
