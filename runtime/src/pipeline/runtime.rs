//! The async runtime a pipeline runs on, sized beside its operator instances' threads.

/// A multi-threaded tokio runtime for a pipeline of `instances` operator instances. Each
/// instance has a thread of its own, busy while records flow, so the runtime gets one worker
/// per core the instances leave free, at least one: more workers than free cores only take
/// turns with the instances (on two cores, one worker rather than two used 3-17% less CPU for
/// the same or a shorter wall-clock, BENCHMARKS.md). `TOKIO_WORKER_THREADS`, if set, decides instead.
pub fn runtime(instances: usize) -> std::io::Result<tokio::runtime::Runtime> {
    let mut builder = tokio::runtime::Builder::new_multi_thread();
    if std::env::var_os("TOKIO_WORKER_THREADS").is_none() {
        let cores = std::thread::available_parallelism().map_or(1, |n| n.get());
        builder.worker_threads(workers(cores, instances));
    }
    builder.enable_all().build()
}

/// Worker threads for a runtime beside `instances` busy threads on `cores` cores.
fn workers(cores: usize, instances: usize) -> usize {
    cores.saturating_sub(instances).max(1)
}

#[cfg(test)]
mod tests {
    use super::workers;

    #[test]
    fn the_runtime_gets_the_cores_the_instances_leave_free_and_at_least_one() {
        assert_eq!(workers(2, 1), 1);
        assert_eq!(workers(2, 2), 1);
        assert_eq!(workers(8, 2), 6);
        assert_eq!(workers(1, 4), 1);
    }
}
