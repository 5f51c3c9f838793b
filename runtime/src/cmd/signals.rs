//! SIGINT and SIGTERM (what Ctrl-C, ECS and Kubernetes send to stop a task), counted: the
//! first asks for a graceful stop, the second for an immediate one.

use tokio::sync::watch;

/// The stop signals received so far.
#[derive(Clone)]
pub struct Signals(watch::Receiver<u32>);

impl Signals {
    /// Start counting SIGINT and SIGTERM. Where they cannot be listened to, none ever comes.
    pub fn listen() -> Self {
        let (tx, rx) = watch::channel(0u32);
        tokio::spawn(async move {
            #[cfg(unix)]
            {
                use tokio::signal::unix::{SignalKind, signal};
                let (Ok(mut int), Ok(mut term)) =
                    (signal(SignalKind::interrupt()), signal(SignalKind::terminate()))
                else {
                    return std::future::pending::<()>().await;
                };
                loop {
                    let name = tokio::select! {
                        _ = int.recv() => "SIGINT",
                        _ = term.recv() => "SIGTERM",
                    };
                    let count = *tx.borrow() + 1;
                    if count == 1 {
                        tracing::info!(
                            "{name}: stopping (reading stops, what was read is finished and written)"
                        );
                    }
                    let _ = tx.send(count);
                }
            }
            #[cfg(not(unix))]
            loop {
                if tokio::signal::ctrl_c().await.is_err() {
                    return std::future::pending::<()>().await;
                }
                let _ = tx.send(*tx.borrow() + 1);
            }
        });
        Self(rx)
    }

    /// Resolves once `n` signals have come.
    pub async fn nth(mut self, n: u32) {
        if self.0.wait_for(|&count| count >= n).await.is_err() {
            std::future::pending::<()>().await;
        }
    }
}
