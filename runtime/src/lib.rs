//! weir: a stream runtime whose operators are WebAssembly components. ARCHITECTURE.md at the
//! repository's root is the map; this is the library the `weir` binary's commands drive.
//!
//! Data flows one way: a [`source`] reads records into batches, the [`pipeline`] hands each
//! batch to its shard's operator instance in the [`operator`] host, and a [`sink`] writes the
//! results; records the operator refuses go to the dead-letter destination
//! ([`sink::dead_letter`]).
//!
//! ```text
//! source/ (file, generator, kinesis) -> pipeline/ (shards, switch) -> operator/ (wasmtime host) -> sink/ (file, kinesis, dead_letter)
//!                                            ^
//!                     deployment/ (store, watch, versions): new operator versions
//! ```
//!
//! Beside the data path: [`artifact`] (component bytes and digests, the embedded operators),
//! [`deployment`] (operators in S3, live swaps and rollbacks), [`location`] (`kinesis://`,
//! `s3://`, files, `-`), [`metrics`] (Prometheus). Kinesis itself is the `weir-kinesis` crate;
//! the types shared with operators are `weir-contract`'s.

pub mod artifact;
pub mod checkpoint;
pub mod deployment;
pub mod location;
pub mod metrics;
pub mod operator;
pub mod pipeline;
pub mod s3;
pub mod sink;
pub mod source;
