//! A database connection on a thread of its own.
//!
//! The client library is synchronous on the outside and runs a small tokio
//! runtime inside. Starting, blocking on or dropping a runtime from inside
//! another one panics, and Fabrik calls the store both from plain threads
//! and from inside its multi-threaded runtime (through `block_in_place`),
//! and may drop a store or a lock guard in async code. So the connection
//! lives on a dedicated thread that is never inside any runtime: callers
//! hand it jobs over a channel and wait for the answer on another. A job
//! costs one thread hand-off (microseconds) beside the round trip to the
//! server.

use std::sync::mpsc;
use std::thread::JoinHandle;

use crate::store::StoreError;

type Job<S> = Box<dyn FnOnce(&mut S) + Send>;

/// A thread owning some connection state `S`, running jobs on it in order.
pub(crate) struct Worker<S: 'static> {
    /// Where jobs go; `None` once shut down.
    jobs: Option<mpsc::Sender<Job<S>>>,
    /// The thread, joined on drop so that the connection is closed when
    /// the owner is gone (a lock guard's lock is released by then).
    thread: Option<JoinHandle<()>>,
    /// What the connection is to (a redacted URL), for errors.
    target: String,
}

impl<S: 'static> std::fmt::Debug for Worker<S> {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Worker")
            .field("target", &self.target)
            .finish_non_exhaustive()
    }
}

impl<S: 'static> Worker<S> {
    /// Starts the thread and builds its state there with `init` (which
    /// connects), returning once `init` has succeeded or failed.
    pub(crate) fn spawn(
        target: String,
        init: impl FnOnce() -> Result<S, StoreError> + Send + 'static,
    ) -> Result<Self, StoreError> {
        let (jobs, inbox) = mpsc::channel::<Job<S>>();
        let (ready_tx, ready_rx) = mpsc::sync_channel::<Result<(), StoreError>>(1);
        let thread = std::thread::Builder::new()
            .name("fabrik-postgres".to_owned())
            .spawn(move || {
                let mut state = match init() {
                    Ok(s) => {
                        let _ = ready_tx.send(Ok(()));
                        s
                    }
                    Err(e) => {
                        let _ = ready_tx.send(Err(e));
                        return;
                    }
                };
                while let Ok(job) = inbox.recv() {
                    job(&mut state);
                }
            })
            .map_err(|source| {
                StoreError::Backend(format!(
                    "cannot start a thread for the state database {target}: {source}"
                ))
            })?;
        match ready_rx.recv() {
            Ok(Ok(())) => Ok(Self {
                jobs: Some(jobs),
                thread: Some(thread),
                target,
            }),
            Ok(Err(e)) => {
                let _ = thread.join();
                Err(e)
            }
            Err(_) => {
                let _ = thread.join();
                Err(StoreError::Backend(format!(
                    "the connection to the state database {target} stopped while connecting"
                )))
            }
        }
    }

    fn gone(&self) -> StoreError {
        StoreError::Backend(format!(
            "the connection to the state database {} stopped",
            self.target
        ))
    }

    /// Runs `f` on the connection's thread and waits for its result.
    pub(crate) fn call<R: Send + 'static>(
        &self,
        f: impl FnOnce(&mut S) -> R + Send + 'static,
    ) -> Result<R, StoreError> {
        let (tx, rx) = mpsc::sync_channel(1);
        self.submit(move |s| {
            let _ = tx.send(f(s));
        })?;
        rx.recv().map_err(|_| self.gone())
    }

    /// Queues `job` without waiting for it (it reports through its own
    /// channel, as a scan does).
    pub(crate) fn submit(
        &self,
        job: impl FnOnce(&mut S) + Send + 'static,
    ) -> Result<(), StoreError> {
        let jobs = self.jobs.as_ref().ok_or_else(|| self.gone())?;
        jobs.send(Box::new(job)).map_err(|_| self.gone())
    }

    /// What the connection is to (redacted).
    pub(crate) fn target(&self) -> &str {
        &self.target
    }
}

impl<S: 'static> Drop for Worker<S> {
    fn drop(&mut self) {
        // Closing the channel ends the thread's loop once queued jobs are
        // done; the state (the connection) is dropped on that thread.
        self.jobs = None;
        if let Some(t) = self.thread.take()
            && t.thread().id() != std::thread::current().id()
        {
            let _ = t.join();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn jobs_run_in_order_on_one_thread_and_drop_joins_it() {
        let w = Worker::spawn("test".to_owned(), || Ok(Vec::<u32>::new())).unwrap();
        for i in 0..10 {
            w.submit(move |v| v.push(i)).unwrap();
        }
        let seen = w.call(|v| v.clone()).unwrap();
        assert_eq!(seen, (0..10).collect::<Vec<_>>());
        let here = std::thread::current().id();
        assert_ne!(w.call(|_| std::thread::current().id()).unwrap(), here);
        drop(w);
    }

    #[test]
    fn a_failed_init_is_returned() {
        let e = Worker::<()>::spawn("test".to_owned(), || {
            Err(StoreError::Backend("no route".to_owned()))
        })
        .unwrap_err();
        assert_eq!(e.to_string(), "no route");
    }

    #[test]
    fn a_panicking_job_is_an_error_not_a_hang() {
        let w = Worker::spawn("db".to_owned(), || Ok(())).unwrap();
        #[allow(clippy::panic)]
        let r = w.call(|_| -> u32 { panic!("boom") });
        assert!(r.unwrap_err().to_string().contains("stopped"));
        assert!(w.call(|_| 1).is_err());
    }
}
