//! Execution history off the request path: handlers hand records to a queue; one task
//! writes them in batches (one transaction per batch) and applies the retention limit.
//! Readers call [`Recorder::flush`] first, so history is read-your-writes. When the
//! database falls behind and the queue fills, callers wait for room: every call is
//! recorded, and sustained overload slows calls instead of losing history.

use edgefn_store::{Database, NewExecution};
use tokio::sync::{mpsc, oneshot};

/// Records waiting to be written: about a second of peak throughput, so bursts never wait.
const QUEUE: usize = 10_000;
/// Most records written in one transaction.
const BATCH: usize = 500;

enum Message {
    Record(Box<NewExecution>),
    Flush(oneshot::Sender<()>),
}

/// Handle to the history writer.
#[derive(Clone)]
pub struct Recorder {
    tx: mpsc::Sender<Message>,
}

impl Recorder {
    /// Starts the writer task; it keeps the newest `retention` executions per module.
    pub fn start(db: Database, retention: i64) -> Self {
        let (tx, rx) = mpsc::channel(QUEUE);
        tokio::spawn(write_loop(db, retention, rx));
        Self { tx }
    }

    /// Queues a record, waiting only while the queue is full.
    pub async fn record(&self, execution: NewExecution) {
        if self.tx.send(Message::Record(Box::new(execution))).await.is_err() {
            tracing::error!("execution history writer has stopped; a record was lost");
        }
    }

    /// Waits until everything queued before this call is written.
    pub async fn flush(&self) {
        let (done, wait) = oneshot::channel();
        if self.tx.send(Message::Flush(done)).await.is_ok() {
            let _ = wait.await;
        }
    }
}

async fn write_loop(db: Database, retention: i64, mut rx: mpsc::Receiver<Message>) {
    let mut buffer = Vec::with_capacity(BATCH);
    while let Some(first) = rx.recv().await {
        let mut waiters = Vec::new();
        let mut next = Some(first);
        while let Some(message) = next.take() {
            match message {
                Message::Record(e) => buffer.push(*e),
                Message::Flush(done) => waiters.push(done),
            }
            if buffer.len() < BATCH {
                next = rx.try_recv().ok();
            }
        }
        if let Err(e) = db.insert_executions(&buffer, retention).await {
            tracing::error!(error = %e, count = buffer.len(), "could not write execution history");
        }
        buffer.clear();
        for done in waiters {
            let _ = done.send(());
        }
    }
}
