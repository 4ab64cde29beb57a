//! Running CEL on big stacks.
//!
//! The `cel` parser is ANTLR-generated and, like its evaluator, recursive: each level of
//! parentheses costs it over 100 KiB of stack in a debug build, so a dozen of them overflow a
//! 2 MiB thread (what tokio gives its workers), and an overflow aborts the whole process. So
//! every parse and evaluation runs on one of a few long-lived threads with large stacks (only
//! reserved; pages are touched as used), and with [`MAX_EXPRESSION_LEN`] and the parser's own
//! nesting limit no input can reach a stack's end. A panic in the third-party code is caught
//! there and becomes an error, and a caller waits at most [`TIME_LIMIT`]. Starting a thread per
//! call would be simpler but costs hundreds of microseconds on a busy machine; handing a job to
//! a waiting thread costs a few. Callers block meanwhile, as for any short computation.

use std::cell::Cell;
use std::panic::{AssertUnwindSafe, catch_unwind};
use std::sync::atomic::{AtomicUsize, Ordering};
use std::sync::mpsc::{self, Receiver, RecvTimeoutError, Sender};
use std::sync::{Arc, LazyLock, Mutex, PoisonError};
use std::time::Duration;

/// Longest expression source accepted, in bytes. With the stack below, even a worst case (a
/// chain of a thousand `+`) fits in a debug build.
pub(crate) const MAX_EXPRESSION_LEN: usize = 2000;

/// How long a caller waits for one parse or evaluation. CEL always terminates, but nested
/// comprehensions over large lists can take practically forever.
const TIME_LIMIT: Duration = if cfg!(test) {
    Duration::from_secs(2)
} else {
    Duration::from_secs(10)
};

const STACK_SIZE: usize = 128 << 20;

/// Workers started when the pool starts, and at most ever (a worker stuck past the time limit
/// is replaced, up to this many).
const MAX_WORKERS: usize = 32;

type Job = Box<dyn FnOnce() + Send>;

thread_local! {
    static ON_BIG_STACK: Cell<bool> = const { Cell::new(false) };
}

/// Why a job gave no result.
pub(crate) enum Failure {
    /// It panicked, or no worker could be started.
    Crashed,
    TimedOut,
}

impl Failure {
    pub(crate) fn message(&self) -> String {
        match self {
            Failure::Crashed => "the expression engine failed on this expression".to_owned(),
            Failure::TimedOut => format!("gave up after {:?}", TIME_LIMIT),
        }
    }
}

struct Pool {
    jobs: Mutex<Sender<Job>>,
    queue: Arc<Mutex<Receiver<Job>>>,
    workers: AtomicUsize,
}

static POOL: LazyLock<Pool> = LazyLock::new(|| {
    let (jobs, queue) = mpsc::channel::<Job>();
    let pool = Pool {
        jobs: Mutex::new(jobs),
        queue: Arc::new(Mutex::new(queue)),
        workers: AtomicUsize::new(0),
    };
    let count = std::thread::available_parallelism().map_or(2, |n| n.get().clamp(2, 8));
    for _ in 0..count {
        pool.add_worker();
    }
    pool
});

/// Runs `work` on a big stack and waits for it, at most [`TIME_LIMIT`].
pub(crate) fn on_big_stack<T: Send + 'static>(
    work: impl FnOnce() -> T + Send + 'static,
) -> Result<T, Failure> {
    if ON_BIG_STACK.get() {
        return catch_unwind(AssertUnwindSafe(work)).map_err(|_| Failure::Crashed);
    }
    let pool = &*POOL;
    if pool.workers.load(Ordering::Relaxed) == 0 {
        return Err(Failure::Crashed);
    }
    let (reply, result) = mpsc::sync_channel(1);
    let job: Job = Box::new(move || {
        let _ = reply.send(work());
    });
    let sent = pool
        .jobs
        .lock()
        .unwrap_or_else(PoisonError::into_inner)
        .send(job);
    if sent.is_err() {
        return Err(Failure::Crashed);
    }
    match result.recv_timeout(TIME_LIMIT) {
        Ok(value) => Ok(value),
        Err(RecvTimeoutError::Disconnected) => Err(Failure::Crashed),
        Err(RecvTimeoutError::Timeout) => {
            // The worker is still busy with it and cannot be stopped; keep the pool's
            // capacity by starting another.
            pool.add_worker();
            Err(Failure::TimedOut)
        }
    }
}

impl Pool {
    fn add_worker(&self) {
        let index = self.workers.fetch_add(1, Ordering::Relaxed);
        if index >= MAX_WORKERS {
            self.workers.fetch_sub(1, Ordering::Relaxed);
            return;
        }
        let queue = Arc::clone(&self.queue);
        let started = std::thread::Builder::new()
            .name(format!("gantry-expr-{index}"))
            .stack_size(STACK_SIZE)
            .spawn(move || work_on(&queue));
        if started.is_err() {
            self.workers.fetch_sub(1, Ordering::Relaxed);
        }
    }
}

fn work_on(queue: &Mutex<Receiver<Job>>) {
    ON_BIG_STACK.set(true);
    loop {
        let job = queue.lock().unwrap_or_else(PoisonError::into_inner).recv();
        let Ok(job) = job else { return };
        // A panicking job drops its reply channel, which its caller sees as a failure.
        let _ = catch_unwind(AssertUnwindSafe(job));
    }
}
