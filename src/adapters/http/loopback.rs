//! The serving task of a fake upstream (carriers, suppliers) on loopback:
//! started on a listener, stopped gracefully with a bounded wait.

use std::time::Duration;

use axum::Router;
use tokio::sync::oneshot;
use tokio::task::JoinHandle;

/// How long a stop waits for in-flight answers before aborting the task.
const STOP_WAIT: Duration = Duration::from_secs(1);

/// An axum server running as its own task.
pub(crate) struct ServerTask {
    stop: Option<oneshot::Sender<()>>,
    task: Option<JoinHandle<()>>,
}

impl ServerTask {
    /// Serves `router` on `listener` until stopped; `what` names it in the log.
    pub(crate) fn spawn<L>(listener: L, router: Router, what: &'static str) -> ServerTask
    where
        L: axum::serve::Listener,
        L::Addr: std::fmt::Debug,
    {
        let (stop, stopped) = oneshot::channel::<()>();
        let task = tokio::spawn(async move {
            let served = axum::serve(listener, router)
                .with_graceful_shutdown(async move {
                    let _ = stopped.await;
                })
                .await;
            if let Err(e) = served {
                tracing::warn!(error = %e, server = what, "fake server stopped");
            }
        });
        ServerTask {
            stop: Some(stop),
            task: Some(task),
        }
    }

    /// Tells the server to stop accepting; does not wait.
    pub(crate) fn signal_stop(&mut self) {
        if let Some(stop) = self.stop.take() {
            let _ = stop.send(());
        }
    }

    /// Stops accepting and waits up to a second for in-flight answers, then aborts.
    pub(crate) async fn stop(&mut self) {
        self.signal_stop();
        if let Some(task) = self.task.take() {
            let abort = task.abort_handle();
            if tokio::time::timeout(STOP_WAIT, task).await.is_err() {
                abort.abort();
            }
        }
    }
}

impl Drop for ServerTask {
    fn drop(&mut self) {
        self.signal_stop();
    }
}
