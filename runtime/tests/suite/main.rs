//! weir's integration tests, in one binary: the library's and the binary's behaviour from the
//! outside (CLI, host, differential, event time, architecture) and against the AWS emulators
//! (Kinesis, S3, DynamoDB) that `scripts/with-emulators` starts. One binary links once and
//! builds `util` once; a module of it is run with `cargo test -p weir --test suite MODULE::`.

mod util;

mod architecture;
mod cli;
mod dead_letters;
mod deploy;
mod differential;
mod event_time;
mod event_time_schedules;
mod fan_out;
mod host;
mod hostile;
mod instances;
mod kinesis;
mod kinesis_source;
mod languages;
mod leases;
mod operations;
mod recovery;
mod rekey;
mod shadow;
mod signing;
mod stacks;
mod stopping;
mod swap;
