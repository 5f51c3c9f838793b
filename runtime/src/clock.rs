//! Wall-clock time as weir stamps it: arrival times of records, processing time passed to
//! operators, the age of the last checkpoint. Event time is the records' own (see
//! `pipeline/watermark.rs`); durations between host events use `std::time::Instant`.

/// The current time in milliseconds since the Unix epoch.
pub fn now_ms() -> i64 {
    jiff::Timestamp::now().as_millisecond()
}
