//! The embedded store's writer engine: group commit. Writes queue up while a commit waits for
//! its fsync, and the next commit applies them all in one redb write transaction with one
//! fsync; a write that fails is run again alone, so only it fails.

use crate::store::StoreError;
use crate::store::embedded::{EmbeddedStore, unavailable};
use redb::{Database, Durability, WriteTransaction};
use std::panic::AssertUnwindSafe;
use std::sync::{Arc, Mutex, MutexGuard, PoisonError};
use tokio::sync::oneshot;

impl EmbeddedStore {
    /// Runs `work` in a write transaction, off the async worker threads, and answers once its
    /// writes are committed (after fsync) when it answers `Ok((_, true))`; `Ok((_, false))`
    /// must mean that it wrote nothing.
    ///
    /// Group commit: the writes that arrive while a commit is waiting for its fsync queue up,
    /// and the next commit applies them all, in arrival order, in ONE write transaction with
    /// ONE fsync. Each `work` sees the writes of the earlier ones of its group, as if they had
    /// committed alone; every answer waits for the group's commit (an answer may depend on an
    /// earlier write of the group), and a failed commit fails them all. A `work` that fails may
    /// have written part of its changes, so its group is abandoned and run again without it
    /// (the ones before it, it alone, the ones after it): only it fails. `work` may therefore
    /// run more than once, each time in a new transaction.
    pub(super) async fn write<T, F>(&self, work: F) -> Result<T, StoreError>
    where
        T: Send + 'static,
        F: Fn(&WriteTransaction) -> Result<(T, bool), StoreError> + Send + 'static,
    {
        let (reply, answer) = oneshot::channel();
        let start_writer = self.writes.push(Box::new(Write {
            work,
            answer: None,
            reply,
        }));
        if start_writer {
            let writer = Writer {
                db: self.db.clone(),
                durable: self.durable,
                writes: self.writes.clone(),
                finished: false,
            };
            // Blocking: each commit waits for its fsync.
            tokio::task::spawn_blocking(move || writer.run());
        }
        answer
            .await
            .map_err(|_| unavailable("the store's writer stopped before answering"))?
    }
}

/// Writes no more than this many in one transaction, so that one commit stays short.
const MAX_GROUP: usize = 512;

/// The writes waiting for the next commit, and whether a writer is draining them.
#[derive(Default)]
pub(super) struct WriteQueue {
    state: Mutex<QueueState>,
    /// Transactions committed, for the tests of grouping.
    #[cfg(test)]
    commits: std::sync::atomic::AtomicUsize,
}

#[derive(Default)]
struct QueueState {
    pending: Vec<Box<dyn PendingWrite>>,
    writer_running: bool,
}

impl WriteQueue {
    fn lock(&self) -> MutexGuard<'_, QueueState> {
        // Nothing panics while holding the lock; a poisoned one is still consistent.
        self.state.lock().unwrap_or_else(PoisonError::into_inner)
    }

    /// Queues `write`; answers whether the caller must start a writer (none is running).
    fn push(&self, write: Box<dyn PendingWrite>) -> bool {
        let mut state = self.lock();
        state.pending.push(write);
        !std::mem::replace(&mut state.writer_running, true)
    }

    /// The next group, oldest first; `None` (and no writer running any more) when there is
    /// nothing left.
    fn next_group(&self) -> Option<Vec<Box<dyn PendingWrite>>> {
        let mut state = self.lock();
        if state.pending.is_empty() {
            state.writer_running = false;
            return None;
        }
        let rest = if state.pending.len() > MAX_GROUP {
            state.pending.split_off(MAX_GROUP)
        } else {
            Vec::new()
        };
        Some(std::mem::replace(&mut state.pending, rest))
    }
}

/// One queued write: its closure, the answer of its last run, and where the answer goes.
trait PendingWrite: Send {
    /// Runs the closure in `txn`; answers whether it asks for a commit.
    fn run(&mut self, txn: &WriteTransaction) -> Result<bool, StoreError>;
    /// Answers the caller: the last run's answer once `outcome` (the commit) is `Ok`.
    fn finish(self: Box<Self>, outcome: Result<(), StoreError>);
}

struct Write<T, F> {
    work: F,
    answer: Option<T>,
    reply: oneshot::Sender<Result<T, StoreError>>,
}

impl<T, F> PendingWrite for Write<T, F>
where
    T: Send,
    F: Fn(&WriteTransaction) -> Result<(T, bool), StoreError> + Send,
{
    fn run(&mut self, txn: &WriteTransaction) -> Result<bool, StoreError> {
        self.answer = None;
        let work = &self.work;
        let (answer, commit) = std::panic::catch_unwind(AssertUnwindSafe(|| work(txn)))
            .map_err(|_| unavailable("a store write panicked"))??;
        self.answer = Some(answer);
        Ok(commit)
    }

    fn finish(self: Box<Self>, outcome: Result<(), StoreError>) {
        let Write { answer, reply, .. } = *self;
        let answer =
            outcome.and_then(|()| answer.ok_or_else(|| unavailable("a store write never ran")));
        // The caller may have stopped waiting; the write stands (or not) all the same.
        let _ = reply.send(answer);
    }
}

/// Drains the queue, one group per transaction, until it is empty.
struct Writer {
    db: Arc<Database>,
    durable: bool,
    writes: Arc<WriteQueue>,
    finished: bool,
}

impl Writer {
    fn run(mut self) {
        while let Some(group) = self.writes.next_group() {
            self.commit_group(group);
        }
        self.finished = true;
    }

    fn begin(&self) -> Result<WriteTransaction, StoreError> {
        let mut txn = self.db.begin_write().map_err(unavailable)?;
        if !self.durable {
            txn.set_durability(Durability::Eventual);
        }
        Ok(txn)
    }

    fn commit_group(&self, mut group: Vec<Box<dyn PendingWrite>>) {
        if group.is_empty() {
            return;
        }
        let txn = match self.begin() {
            Ok(txn) => txn,
            Err(error) => return finish_all(group, &Err(error)),
        };
        let mut commit = false;
        for index in 0..group.len() {
            match group[index].run(&txn) {
                Ok(asks) => commit |= asks,
                Err(error) if group.len() == 1 => {
                    let _ = txn.abort();
                    return finish_all(group, &Err(error));
                }
                Err(_) => {
                    // It may have written part of its changes: the whole transaction goes, and
                    // the group runs again around it, in the same order.
                    let _ = txn.abort();
                    let after = group.split_off(index + 1);
                    let failed = group.pop().expect("the failed write");
                    self.commit_group(group);
                    self.commit_group(vec![failed]);
                    self.commit_group(after);
                    return;
                }
            }
        }
        let outcome = if commit {
            #[cfg(test)]
            self.writes
                .commits
                .fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            txn.commit().map_err(unavailable)
        } else {
            txn.abort().map_err(unavailable)
        };
        finish_all(group, &outcome);
    }
}

impl Drop for Writer {
    /// A writer that stops early (a panic outside the closures, or a runtime shutting down
    /// before the task ran) fails what is queued and lets the next write start a new one.
    fn drop(&mut self) {
        if self.finished {
            return;
        }
        let pending = {
            let mut state = self.writes.lock();
            state.writer_running = false;
            std::mem::take(&mut state.pending)
        };
        finish_all(
            pending,
            &Err(unavailable("the store's writer stopped before committing")),
        );
    }
}

fn finish_all(group: Vec<Box<dyn PendingWrite>>, outcome: &Result<(), StoreError>) {
    for write in group {
        write.finish(match outcome {
            Ok(()) => Ok(()),
            Err(StoreError::Unavailable(message)) => Err(StoreError::Unavailable(message.clone())),
            Err(StoreError::Corrupt(message)) => Err(StoreError::Corrupt(message.clone())),
        });
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use redb::{ReadableTable, TableDefinition};
    use std::sync::atomic::Ordering;

    const SCRATCH: TableDefinition<&str, i64> = TableDefinition::new("group_commit_scratch");

    fn store() -> (tempfile::TempDir, EmbeddedStore) {
        let folder = tempfile::tempdir().expect("temporary folder");
        let store = EmbeddedStore::open(&folder.path().join("engine.redb")).expect("open");
        (folder, store)
    }

    fn put(txn: &WriteTransaction, key: &str, value: i64) -> Result<(), StoreError> {
        let mut table = txn.open_table(SCRATCH).map_err(unavailable)?;
        table.insert(key, value).map_err(unavailable)?;
        Ok(())
    }

    fn get(txn: &WriteTransaction, key: &str) -> Result<Option<i64>, StoreError> {
        let table = txn.open_table(SCRATCH).map_err(unavailable)?;
        let found = table.get(key).map_err(unavailable)?;
        Ok(found.map(|value| value.value()))
    }

    fn stored(store: &EmbeddedStore, key: &str) -> Option<i64> {
        let txn = store.db.begin_read().expect("read");
        let table = txn.open_table(SCRATCH).expect("table");
        table.get(key).expect("get").map(|value| value.value())
    }

    /// Holds the writer inside a write until released, so that the writes queued meanwhile
    /// form the next group, in the order they are queued.
    struct Gate {
        release: std::sync::mpsc::Sender<()>,
        held: tokio::task::JoinHandle<Result<(), StoreError>>,
    }

    async fn hold_writer(store: &EmbeddedStore) -> Gate {
        let (entered, inside) = std::sync::mpsc::channel();
        let (release, released) = std::sync::mpsc::channel::<()>();
        let (entered, released) = (Mutex::new(entered), Mutex::new(released));
        let writer = store.clone();
        let held = tokio::spawn(async move {
            writer
                .write(move |_| {
                    let _ = entered.lock().expect("entered").send(());
                    let _ = released.lock().expect("released").recv();
                    Ok(((), false))
                })
                .await
        });
        tokio::task::spawn_blocking(move || inside.recv().expect("the gate runs"))
            .await
            .expect("gate");
        Gate { release, held }
    }

    impl Gate {
        async fn open(self) {
            self.release.send(()).expect("release");
            self.held.await.expect("gate task").expect("gate write");
        }
    }

    /// Queues `work` behind the ones already queued, and waits until it is.
    async fn queue<T, F>(
        store: &EmbeddedStore,
        work: F,
    ) -> tokio::task::JoinHandle<Result<T, StoreError>>
    where
        T: Send + 'static,
        F: Fn(&WriteTransaction) -> Result<(T, bool), StoreError> + Send + 'static,
    {
        let before = store.writes.lock().pending.len();
        let writer = store.clone();
        let handle = tokio::spawn(async move { writer.write(work).await });
        while store.writes.lock().pending.len() == before {
            tokio::task::yield_now().await;
        }
        handle
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_group_commits_once_and_each_write_sees_the_earlier_ones() {
        let (_folder, store) = store();
        let gate = hold_writer(&store).await;
        let mut claims = Vec::new();
        for n in 0..20 {
            claims.push(
                queue(&store, move |txn| {
                    if get(txn, "claim")?.is_some() {
                        return Ok((false, false));
                    }
                    put(txn, "claim", n)?;
                    put(txn, &format!("write {n}"), n)?;
                    Ok((true, true))
                })
                .await,
            );
        }
        let commits = store.writes.commits.load(Ordering::SeqCst);
        gate.open().await;
        let mut won = Vec::new();
        for (n, claim) in claims.into_iter().enumerate() {
            if claim.await.expect("task").expect("write") {
                won.push(n);
            }
        }
        assert_eq!(won, vec![0], "only the first of the group claims");
        assert_eq!(stored(&store, "claim"), Some(0));
        assert_eq!(stored(&store, "write 0"), Some(0));
        assert_eq!(
            stored(&store, "write 1"),
            None,
            "a write answering false wrote"
        );
        assert_eq!(store.writes.commits.load(Ordering::SeqCst), commits + 1);
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn a_write_failing_after_partial_writes_fails_alone() {
        let (_folder, store) = store();
        let gate = hold_writer(&store).await;
        let first = queue(&store, |txn| put(txn, "first", 1).map(|()| ((), true))).await;
        let failing = queue(&store, |txn| {
            put(txn, "failing", 2)?;
            Err::<((), bool), _>(StoreError::Corrupt("refused".to_owned()))
        })
        .await;
        let panicking = queue(&store, |txn| {
            put(txn, "panicking", 3)?;
            panic!("a bug in a write");
            #[allow(unreachable_code)]
            Ok(((), true))
        })
        .await;
        let after = queue(&store, |txn| {
            put(txn, "after", 4)?;
            // Sees the first write, not the failed ones.
            Ok(((get(txn, "first")?, get(txn, "failing")?), true))
        })
        .await;
        let reader = queue(&store, |txn| Ok((get(txn, "panicking")?, false))).await;
        gate.open().await;

        first.await.expect("task").expect("first");
        match failing.await.expect("task") {
            Err(StoreError::Corrupt(message)) => assert_eq!(message, "refused"),
            other => panic!("unexpected {other:?}"),
        }
        assert!(matches!(
            panicking.await.expect("task"),
            Err(StoreError::Unavailable(_))
        ));
        assert_eq!(after.await.expect("task").expect("after"), (Some(1), None));
        assert_eq!(reader.await.expect("task").expect("reader"), None);
        assert_eq!(stored(&store, "first"), Some(1));
        assert_eq!(stored(&store, "failing"), None);
        assert_eq!(stored(&store, "panicking"), None);
        assert_eq!(stored(&store, "after"), Some(4));

        // The writer carries on.
        store
            .write(|txn| put(txn, "later", 5).map(|()| ((), true)))
            .await
            .expect("later");
        assert_eq!(stored(&store, "later"), Some(5));
    }

    #[tokio::test(flavor = "multi_thread", worker_threads = 2)]
    async fn concurrent_writes_all_land() {
        let (_folder, store) = store();
        let writes: Vec<_> = (0..200)
            .map(|n| {
                let store = store.clone();
                tokio::spawn(async move {
                    store
                        .write(move |txn| {
                            let total = get(txn, "total")?.unwrap_or(0);
                            put(txn, "total", total + 1)?;
                            put(txn, &format!("write {n}"), n)?;
                            Ok(((), true))
                        })
                        .await
                })
            })
            .collect();
        for write in writes {
            write.await.expect("task").expect("write");
        }
        assert_eq!(stored(&store, "total"), Some(200));
        assert!((0..200).all(|n| stored(&store, &format!("write {n}")) == Some(n)));
    }
}
