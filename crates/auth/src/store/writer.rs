//! [`Writer`]: the one thread per worker process that makes the store's
//! writes.
//!
//! Requests queue a [`WriteOp`] and await its answer on a oneshot channel,
//! so a write that waits for SQLite's lock (held by another worker process)
//! holds up no runtime thread. One thread, not a pool: SQLite admits one
//! writer at a time anyway, and threads of one process fighting for it
//! only add lock hand-offs and back-off sleeps. Whatever queued while the
//! thread was busy is handed to [`Store::apply_writes`] as one batch, which
//! the SQLite store commits in one transaction.

use std::sync::Arc;

use tokio::sync::{mpsc, oneshot};

use super::{Store, StoreError, WriteOp};

type Reply = oneshot::Sender<Result<bool, StoreError>>;

/// Writes queued beyond this wait (asynchronously) for room.
const QUEUE: usize = 1024;
/// The most ops committed in one transaction.
const MAX_BATCH: usize = 128;

/// The writer thread of one store in one process. The thread ends when the
/// `Writer` is dropped (its queue closes) after finishing what was queued.
pub struct Writer {
    jobs: mpsc::Sender<(WriteOp, Reply)>,
}

impl std::fmt::Debug for Writer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Writer").finish_non_exhaustive()
    }
}

impl Writer {
    /// Starts the thread. Call it in the worker process, after the fork.
    pub fn new(store: Arc<dyn Store>) -> std::io::Result<Writer> {
        let (tx, rx) = mpsc::channel(QUEUE);
        std::thread::Builder::new()
            .name("ferricorn-auth-writer".into())
            .spawn(move || run(&*store, rx))?;
        Ok(Writer { jobs: tx })
    }

    /// Applies `op` on the writer thread; see [`WriteOp::apply_to`] for the
    /// answer.
    pub async fn write(&self, op: WriteOp) -> Result<bool, StoreError> {
        let stopped = || StoreError::Task("the store's writer thread has stopped".into());
        let (tx, rx) = oneshot::channel();
        self.jobs.send((op, tx)).await.map_err(|_| stopped())?;
        rx.await.map_err(|_| stopped())?
    }
}

fn run(store: &dyn Store, mut rx: mpsc::Receiver<(WriteOp, Reply)>) {
    let mut ops = Vec::with_capacity(MAX_BATCH);
    let mut replies = Vec::with_capacity(MAX_BATCH);
    while let Some((op, reply)) = rx.blocking_recv() {
        ops.push(op);
        replies.push(reply);
        while ops.len() < MAX_BATCH {
            let Ok((op, reply)) = rx.try_recv() else {
                break;
            };
            ops.push(op);
            replies.push(reply);
        }
        let results = store.apply_writes(&ops);
        for (reply, result) in replies.drain(..).zip(results) {
            // The request may have gone (client disconnected): nothing to do.
            let _ = reply.send(result);
        }
        ops.clear();
        if rx.is_empty() {
            store.idle();
        }
    }
}
