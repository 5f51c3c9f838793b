//! weir: a stream runtime whose operators are WebAssembly components. ARCHITECTURE.md at the
//! repository's root is the map; this is the library the `weir` binary's commands drive.
//!
//! Data flows one way: a [`source`] reads records into batches, each record put in the
//! sub-batch of the operator instance that owns its grouping key ([`routing`]), the
//! [`pipeline`] runs the instances in the [`operator`] host, and a [`sink`] writes the results; records that cannot be processed go to the dead-letter
//! destination ([`sink::dead_letter`]).
//!
//! ```text
//! source/ (file, generator, kinesis; routed by routing/) -> pipeline/ (instances, watermark, switch, checkpoint cuts) -> operator/ (wasmtime host) -> sink/ (file, kinesis, dead_letter)
//!                                            ^                  |
//!          deployment/ (store, watch, versions, signatures)   checkpoint/ (format, store)
//! ```
//!
//! Beside the data path: [`checkpoint`] (where a restart goes on from), [`artifact`] (component
//! bytes and digests, the embedded operators), [`deployment`] (operators in S3, live swaps,
//! rollbacks and signed versions), [`s3`] (one bucket's objects, shared by both), [`kms`]
//! (signing with and reading KMS keys), [`location`] (`kinesis://`,
//! `s3://`, files, `-`), [`metrics`] (Prometheus, EMF), [`clock`] (wall-clock milliseconds).
//! Kinesis itself is the `weir-kinesis` crate; the types shared with operators are
//! `weir-contract`'s, the checkpoint format `weir-checkpoint`'s.

pub mod artifact;
pub mod checkpoint;
pub mod clock;
pub mod deployment;
pub mod kms;
pub mod lease;
pub mod location;
pub mod metrics;
pub mod objects;
pub mod operator;
pub mod pipeline;
pub mod routing;
pub mod s3;
pub mod sink;
pub mod source;
