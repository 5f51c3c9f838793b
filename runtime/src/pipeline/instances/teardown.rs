//! Replaced operator instances dropped on a thread of their own. An instance from the pool of
//! slots ([`crate::operator::pool`]) resets the memory it wrote when dropped, so that the next
//! one finds it mapped: 0.06 ms for the Rust sliding-window-max, 1.3-1.4 ms for the Python
//! or JavaScript one (swap bench), which the pipeline's thread would otherwise spend on each
//! replaced instance instead of routing records.

use std::sync::mpsc::{Sender, channel};
use std::thread::JoinHandle;

/// Something to drop off the record path.
type Garbage = Box<dyn Send>;

/// A thread that drops what it is sent, in order; dropping the `Teardown` waits for it.
pub struct Teardown {
    /// Where to send, and the thread to wait for; None where no thread could be started.
    thread: Option<(Sender<Garbage>, JoinHandle<()>)>,
}

impl Teardown {
    /// The thread, started now; where a thread cannot be started, values are dropped in place.
    pub fn start() -> Self {
        let (sender, receiver) = channel::<Garbage>();
        let spawned = std::thread::Builder::new()
            .name("weir-teardown".into())
            .spawn(move || receiver.into_iter().for_each(drop));
        match spawned {
            Ok(thread) => Self { thread: Some((sender, thread)) },
            Err(error) => {
                tracing::warn!(
                    "cannot start a thread to tear replaced instances down ({error}): dropping them in place"
                );
                Self { thread: None }
            }
        }
    }

    /// Drop `value` on the teardown thread (in place if there is none, or it ended).
    pub fn drop_later<T: Send + 'static>(&self, value: T) {
        if let Some((sender, _)) = &self.thread {
            // A send fails only when the thread has ended (a panic in a drop): the value comes
            // back and is dropped here.
            let _ = sender.send(Box::new(value));
        }
    }
}

impl Drop for Teardown {
    fn drop(&mut self) {
        if let Some((sender, thread)) = self.thread.take() {
            // Its loop ends once the sender is gone and everything sent is dropped.
            drop(sender);
            let _ = thread.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::sync::{Arc, Mutex};

    /// Records the name of the thread it is dropped on.
    struct Noted(Arc<Mutex<Vec<String>>>);

    impl Drop for Noted {
        fn drop(&mut self) {
            let name = std::thread::current().name().unwrap_or("unnamed").to_string();
            self.0.lock().unwrap().push(name);
        }
    }

    #[test]
    fn values_are_dropped_on_the_teardown_thread_and_all_of_them_before_it_is_gone() {
        let dropped = Arc::new(Mutex::new(Vec::new()));
        let teardown = Teardown::start();
        for _ in 0..3 {
            teardown.drop_later(Noted(dropped.clone()));
        }
        drop(teardown);
        assert_eq!(*dropped.lock().unwrap(), ["weir-teardown"; 3]);
    }
}
