//! Locations: the URI-like strings that name where records, results and operators are, the
//! same on the command line, in config and in the docs.

use std::fmt;
use std::path::PathBuf;

/// A parsed location.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Location {
    /// `-`: standard input or standard output.
    Stdio,
    /// A file path (or `file://PATH`).
    File(PathBuf),
    /// `generator`: the built-in trade generator (sources only).
    Generator,
    /// `builtin:NAME`: an operator embedded in the binary.
    Builtin(String),
    /// `kinesis://STREAM` or a Kinesis stream ARN.
    Kinesis(String),
    /// `s3://BUCKET/KEY`.
    S3 {
        /// The bucket.
        bucket: String,
        /// The key or prefix.
        key: String,
    },
}

/// A location that cannot be parsed.
#[derive(Debug, thiserror::Error, PartialEq, Eq)]
#[error("{input:?} is not a valid location: {reason}")]
pub struct LocationError {
    input: String,
    reason: &'static str,
}

impl std::str::FromStr for Location {
    type Err = LocationError;

    fn from_str(s: &str) -> Result<Self, LocationError> {
        let err = |reason| LocationError { input: s.to_string(), reason };
        if s.is_empty() {
            return Err(err("it is empty"));
        }
        if s == "-" {
            return Ok(Location::Stdio);
        }
        if s == "generator" {
            return Ok(Location::Generator);
        }
        if let Some(name) = s.strip_prefix("builtin:") {
            return Ok(Location::Builtin(name.to_string()));
        }
        if let Some(stream) = s.strip_prefix("kinesis://") {
            if stream.is_empty() || stream.contains('/') {
                return Err(err("write kinesis://STREAM_NAME"));
            }
            return Ok(Location::Kinesis(stream.to_string()));
        }
        if s.starts_with("arn:") {
            return match s.split_once(":stream/") {
                Some((_, name)) if s.contains(":kinesis:") && !name.is_empty() => {
                    Ok(Location::Kinesis(s.to_string()))
                }
                _ => Err(err(
                    "only Kinesis stream ARNs (arn:aws:kinesis:REGION:ACCOUNT:stream/NAME) are locations",
                )),
            };
        }
        if let Some(rest) = s.strip_prefix("s3://") {
            let (bucket, key) = rest.split_once('/').unwrap_or((rest, ""));
            if bucket.is_empty() {
                return Err(err("write s3://BUCKET/KEY"));
            }
            return Ok(Location::S3 {
                bucket: bucket.to_string(),
                key: key.trim_end_matches('/').to_string(),
            });
        }
        if let Some(path) = s.strip_prefix("file://") {
            return Ok(Location::File(PathBuf::from(path)));
        }
        if let Some((scheme, _)) = s.split_once("://") {
            let _ = scheme;
            return Err(err("unknown scheme; use a path, -, generator, kinesis://STREAM or s3://BUCKET/KEY"));
        }
        Ok(Location::File(PathBuf::from(s)))
    }
}

impl fmt::Display for Location {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        match self {
            Location::Stdio => f.write_str("-"),
            Location::File(p) => write!(f, "{}", p.display()),
            Location::Generator => f.write_str("generator"),
            Location::Builtin(n) => write!(f, "builtin:{n}"),
            Location::Kinesis(s) if s.starts_with("arn:") => f.write_str(s),
            Location::Kinesis(s) => write!(f, "kinesis://{s}"),
            Location::S3 { bucket, key } => write!(f, "s3://{bucket}/{key}"),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn parses_every_kind() {
        let p = |s: &str| s.parse::<Location>();
        assert_eq!(p("-"), Ok(Location::Stdio));
        assert_eq!(p("generator"), Ok(Location::Generator));
        assert_eq!(p("trades.jsonl"), Ok(Location::File("trades.jsonl".into())));
        assert_eq!(p("file:///tmp/x"), Ok(Location::File("/tmp/x".into())));
        assert_eq!(p("kinesis://trades"), Ok(Location::Kinesis("trades".into())));
        let arn = "arn:aws:kinesis:us-east-1:123456789012:stream/trades";
        assert_eq!(p(arn), Ok(Location::Kinesis(arn.into())));
        assert_eq!(p("s3://b/ops/max/"), Ok(Location::S3 { bucket: "b".into(), key: "ops/max".into() }));
        assert_eq!(p("builtin:sliding-window-max"), Ok(Location::Builtin("sliding-window-max".into())));
        for bad in ["", "kinesis://", "s3:///x", "http://x", "arn:aws:s3:::bucket"] {
            assert!(p(bad).is_err(), "{bad}");
        }
        assert_eq!(p("kinesis://trades").unwrap().to_string(), "kinesis://trades");
    }
}
