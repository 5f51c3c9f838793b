//! weir: a stream runtime whose operators are WebAssembly components.
//!
//! Data flows one way: a [`source`] reads records into batches, the [`operator`] host runs
//! them through a component's `process`, and a [`sink`] writes the results; records the
//! operator refuses go to the dead-letter destination ([`sink::dead_letter`]). The
//! [`pipeline`] connects the three with bounded channels and passes processing time.
//!
//! Layout:
//! - [`cli`]: the command line as typed; [`commands`]: what each subcommand builds and runs;
//! - [`location`]: `kinesis://`, `s3://`, file and `-` locations;
//! - [`source`]: `file` (files and stdin), `generator` (built-in trades), `kinesis`;
//! - [`operator`]: the wasmtime host (`engine`, `instance`, `limits`, `runner`);
//! - [`artifact`]: component bytes and digests, the embedded default, the compiled cache, the
//!   S3 store of deployed operators; [`deploy`]: `weir deploy`, `weir operators list`;
//! - [`sink`]: `file` (files and stdout), `kinesis`, `dead_letter`;
//! - [`pipeline`]: the loop and the per-shard operators; [`metrics`]: Prometheus metrics;
//! - [`tail`]: `weir tail` (AWS configuration and the Kinesis sink live in `weir-kinesis`).

pub mod artifact;
pub mod cli;
pub mod commands;
pub mod deploy;
pub mod location;
pub mod metrics;
pub mod operator;
pub mod pipeline;
pub mod sink;
pub mod source;
pub mod tail;
