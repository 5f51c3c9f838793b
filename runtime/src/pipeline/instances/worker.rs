//! The thread an operator instance runs on: it owns its [`Slot`], processes the sub-batches
//! sent to it in order as they come, each result sent back as soon as it is ready, and runs
//! the jobs it is sent (a tick, a snapshot, a swap) in the same order, so a job sees every
//! sub-batch sent before it processed and none sent after.

use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc;
use std::thread::JoinHandle;

use tokio::sync::mpsc::UnboundedSender;

use super::Finished;
use super::slot::{Queued, Slot};

/// Work on an instance's own thread, with its slot.
pub(super) type Job = Box<dyn FnOnce(&mut Slot) + Send>;

/// What an instance's thread is sent.
pub(super) enum ToWorker {
    /// A sub-batch to process after those sent before it.
    Process(Queued),
    /// Work to run once every sub-batch sent before it is processed (or held back: see
    /// [`Slot::run`]).
    Job(Job),
}

/// One instance's thread and how to reach it.
pub(super) struct Worker {
    to: Option<mpsc::Sender<ToWorker>>,
    /// Set when the pipeline is done with the instance: what is still queued is dropped.
    stop: Arc<AtomicBool>,
    thread: Option<JoinHandle<()>>,
}

impl Worker {
    /// Start the thread of `slot`'s instance.
    pub(super) fn start(mut slot: Slot) -> std::io::Result<Self> {
        let (to, from) = mpsc::channel::<ToWorker>();
        let instance = slot.instance;
        let stop = Arc::new(AtomicBool::new(false));
        let stopping = stop.clone();
        let run = move || {
            // Told when the thread ends, however it ends (a panic included), so that nobody
            // waits for the results of what it held.
            let _stopped = Stopped { instance, results: slot.results.clone() };
            while let Ok(message) = from.recv() {
                match message {
                    ToWorker::Process(_) if stopping.load(Ordering::Relaxed) => {}
                    ToWorker::Process(queued) => {
                        slot.queue.push_back(queued);
                        slot.run();
                    }
                    ToWorker::Job(job) => job(&mut slot),
                }
            }
        };
        let thread = std::thread::Builder::new().name(format!("weir-instance-{instance}")).spawn(run)?;
        Ok(Self { to: Some(to), stop, thread: Some(thread) })
    }

    /// Send `message` to the thread (false: the thread has stopped).
    pub(super) fn send(&self, message: ToWorker) -> bool {
        self.to.as_ref().is_some_and(|to| to.send(message).is_ok())
    }
}

impl Drop for Worker {
    /// The thread ends once its channel closes, dropping the sub-batches still queued (the
    /// pipeline is done: it ended, or failed): wait for it, so the instance is gone when the
    /// pipeline is.
    fn drop(&mut self) {
        self.stop.store(true, Ordering::Relaxed);
        self.to = None;
        if let Some(thread) = self.thread.take() {
            let _ = thread.join();
        }
    }
}

/// Sends [`Finished::Stopped`] when dropped, as a thread ends.
struct Stopped {
    instance: usize,
    results: UnboundedSender<Finished>,
}

impl Drop for Stopped {
    fn drop(&mut self) {
        let _ = self.results.send(Finished::Stopped(self.instance));
    }
}

/// Run `call` on every instance's thread, after what each was sent before; results in instance
/// order. Waits for all of them (the caller blocks: see [`crate::pipeline::guest`]).
///
/// # Panics
/// If an instance's thread stopped (it panicked): the pipeline's task then ends with an
/// internal error, as it did when that panic was its own.
pub(super) fn each<T: Send + 'static>(
    workers: &[Worker],
    call: impl Fn(usize, &mut Slot) -> T + Send + Sync + 'static,
) -> Vec<T> {
    each_with(workers, workers.iter().map(|_| ()), move |i, slot, ()| call(i, slot))
}

/// [`each`], instance `i` also given the `i`th of `inputs` (one per instance).
pub(super) fn each_with<I: Send + 'static, T: Send + 'static>(
    workers: &[Worker],
    inputs: impl IntoIterator<Item = I>,
    call: impl Fn(usize, &mut Slot, I) -> T + Send + Sync + 'static,
) -> Vec<T> {
    let call = Arc::new(call);
    let (reply, replies) = mpsc::channel();
    for ((i, worker), input) in workers.iter().enumerate().zip(inputs) {
        let (call, reply) = (call.clone(), reply.clone());
        worker.send(ToWorker::Job(Box::new(move |slot| {
            let _ = reply.send((i, call(i, slot, input)));
        })));
    }
    drop(reply);
    let mut results: Vec<Option<T>> = workers.iter().map(|_| None).collect();
    for (i, result) in replies.iter() {
        results[i] = Some(result);
    }
    results
        .into_iter()
        .enumerate()
        .map(|(i, result)| result.unwrap_or_else(|| panic!("the thread of operator instance {i} stopped")))
        .collect()
}

/// Run `call` on instance `instance`'s thread, after what it was sent before, and wait for it.
/// None: there is no such instance.
pub(super) fn one<T: Send + 'static>(
    workers: &[Worker],
    instance: usize,
    call: impl FnOnce(&mut Slot) -> T + Send + 'static,
) -> Option<T> {
    let worker = workers.get(instance)?;
    let (reply, replies) = mpsc::channel();
    worker.send(ToWorker::Job(Box::new(move |slot| {
        let _ = reply.send(call(slot));
    })));
    match replies.recv() {
        Ok(result) => Some(result),
        Err(_) => panic!("the thread of operator instance {instance} stopped"),
    }
}
