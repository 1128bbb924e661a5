//! A tiny persistent thread pool for the matmul kernels.
//!
//! At 135M parameters one decode step makes ~210 matmul calls of 10-50 us each, so waking a
//! thread per call (std::thread::scope: ~20 us to spawn; rayon from a non-pool thread: a
//! condvar sleep on the caller plus a futex wake per worker) costs as much as the work. Here the
//! caller always takes a share of the work itself, workers spin on an epoch counter for a while
//! after each job (a decode step calls again within microseconds) and only then park on a
//! condvar, and work is handed out in chunks through one atomic range (caller from the front,
//! workers from the back). Posting, joining and closing a job are single atomic operations on
//! one cache line (no mutex): a worker joins only while the job is open, and the caller closes
//! it once all chunks are claimed, so it never waits for a worker that was descheduled or
//! parked and did not show up in time. Measured on 2 Zen 5 cores: ~0.3 us of overhead per call
//! versus ~10 us for rayon `join` and ~60 us for `std::thread::scope` (bench `pool/*`).
//!
//! One job runs at a time: a caller that finds the pool busy (another thread is inside a
//! matmul) runs its job inline instead of queueing behind it.
//!
//! Oversubscription (a `cargo build` beside the server): a worker the OS descheduled while it
//! held a chunk makes the caller wait a whole time slice (ms) at each of a decode step's ~200
//! calls, so a step took 10x its fair share of the CPU (0.5B decode: 0.87 s/token with three
//! compilers on 2 cores). When the caller waits for workers much longer than its own chunks
//! took, it runs the next calls alone for [`SOLO`] before trying the pool again; on a quiet
//! machine that never happens.

use std::sync::atomic::{AtomicBool, AtomicUsize, Ordering::*};
use std::sync::{Arc, Condvar, Mutex, OnceLock};
use std::time::{Duration, Instant};

static THREADS: AtomicUsize = AtomicUsize::new(0);
static POOL: Mutex<Option<Pool>> = Mutex::new(None);

/// How long an idle worker spins before parking.
const SPIN: Duration = Duration::from_micros(200);

/// After a stall (see the module doc) calls run on the caller alone for this long.
const SOLO: Duration = Duration::from_millis(50);

/// Stalls seen so far (waits for preempted workers; see the module doc).
static STALLS: AtomicUsize = AtomicUsize::new(0);

/// How many times the pool found the machine oversubscribed and ran alone for a while.
pub fn pool_stalls() -> usize {
    STALLS.load(Relaxed)
}

/// Sets the number of threads (caller included) the kernels use; 0 restores the default.
pub fn set_num_threads(n: usize) {
    THREADS.store(n, SeqCst);
}

/// The number of threads the kernels use: [`set_num_threads`], else `LATHE_NUM_THREADS`,
/// else `available_parallelism`.
pub fn num_threads() -> usize {
    // Read once: on Linux `available_parallelism` opens cgroup files on every call, which
    // cost more than a decode step's matmuls when asked per kernel call.
    static DEFAULT: OnceLock<usize> = OnceLock::new();
    match THREADS.load(Relaxed) {
        0 => *DEFAULT.get_or_init(|| {
            std::env::var("LATHE_NUM_THREADS")
                .ok()
                .and_then(|v| v.parse().ok())
                .filter(|&n| n > 0)
                .unwrap_or_else(|| std::thread::available_parallelism().map_or(1, |n| n.get()))
        }),
        n => n,
    }
}

type Job<'a> = &'a (dyn Fn(usize, usize) + Sync);

/// `state` bits: epoch (job number) above bit 32, `CLOSED`, and the count of joined workers.
const CLOSED: usize = 1 << 31;
const JOINED: usize = CLOSED - 1;

/// Everything a job needs, on one cache line.
#[repr(align(64))]
struct Line {
    state: AtomicUsize,
    /// Unclaimed chunks `[lo, hi)` as `lo << 32 | hi`.
    next: AtomicUsize,
    /// The lifetime-erased job (a fat pointer) and its size and chunk.
    f: [AtomicUsize; 2],
    n: AtomicUsize,
    chunk: AtomicUsize,
    finished: AtomicUsize,
}

struct Shared {
    line: Line,
    sleepers: AtomicUsize,
    lock: Mutex<()>,
    wake: Condvar,
    stop: AtomicBool,
}

struct Pool {
    shared: Arc<Shared>,
    handles: Vec<std::thread::JoinHandle<()>>,
    epoch: usize,
    /// Run calls inline until then (after a stall).
    solo_until: Option<Instant>,
}

/// Runs `f(start, end)` over `0..n` in chunks of `chunk`, on the calling thread plus the pool.
pub(crate) fn parallel_for(n: usize, chunk: usize, f: Job) {
    let threads = num_threads();
    let chunk = chunk.max(1);
    if threads <= 1 || n <= chunk || n.div_ceil(chunk) >= 1 << 32 {
        return f(0, n);
    }
    let Ok(mut guard) = POOL.try_lock() else {
        return f(0, n);
    };
    if guard.as_ref().map(|p| p.handles.len() + 1) != Some(threads) {
        *guard = None; // join the old workers before starting new ones
        *guard = Some(Pool::new(threads - 1));
    }
    let pool = guard.as_mut().unwrap();
    if pool.solo_until.is_some_and(|t| Instant::now() < t) {
        return f(0, n);
    }
    pool.run(n, chunk, f);
}

/// Claims chunks until none is left: the caller from the front, workers from the back, so
/// that across calls each thread keeps working on (mostly) the same rows, whose weights are
/// then already in its own L2, while a late worker still just takes fewer chunks.
/// Returns how many chunks it ran.
fn run_chunks(l: &Line, n: usize, chunk: usize, f: Job, front: bool) -> usize {
    let mut cur = l.next.load(Acquire);
    let mut ran = 0;
    loop {
        let (lo, hi) = (cur >> 32, cur & 0xffff_ffff);
        if lo >= hi {
            return ran;
        }
        let (c, new) = if front {
            (lo, (lo + 1) << 32 | hi)
        } else {
            (hi - 1, lo << 32 | (hi - 1))
        };
        match l.next.compare_exchange_weak(cur, new, AcqRel, Acquire) {
            Ok(_) => {
                f(c * chunk, ((c + 1) * chunk).min(n));
                ran += 1;
                cur = l.next.load(Acquire);
            }
            Err(now) => cur = now,
        }
    }
}

impl Pool {
    fn new(workers: usize) -> Self {
        let z = || AtomicUsize::new(0);
        let line = Line {
            state: z(),
            next: z(),
            f: [z(), z()],
            n: z(),
            chunk: z(),
            finished: z(),
        };
        let shared = Arc::new(Shared {
            line,
            sleepers: z(),
            lock: Mutex::new(()),
            wake: Condvar::new(),
            stop: AtomicBool::new(false),
        });
        let handles = (0..workers)
            .map(|_| {
                let s = shared.clone();
                std::thread::Builder::new()
                    .name("lathe-cpu-kernel".into())
                    .spawn(move || worker(&s))
                    .expect("spawn kernel thread")
            })
            .collect();
        Pool {
            shared,
            handles,
            epoch: 0,
            solo_until: None,
        }
    }

    /// Posts the job, works on it, closes it and waits for the workers that joined.
    fn run(&mut self, n: usize, chunk: usize, f: Job) {
        let s = &*self.shared;
        let l = &s.line;
        // SAFETY: workers use the erased reference only after joining, and we wait for every
        // joined worker to finish before returning (also when our share panics).
        let raw: [usize; 2] = unsafe { std::mem::transmute(f) };
        l.f[0].store(raw[0], Relaxed);
        l.f[1].store(raw[1], Relaxed);
        l.n.store(n, Relaxed);
        l.chunk.store(chunk, Relaxed);
        l.next.store(n.div_ceil(chunk), Relaxed);
        l.finished.store(0, Relaxed);
        self.epoch += 1;
        l.state.store(self.epoch << 32, SeqCst);
        if s.sleepers.load(SeqCst) > 0 {
            let _g = s.lock.lock().unwrap();
            s.wake.notify_all();
        }
        let start = Instant::now();
        let own = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_chunks(l, n, chunk, f, true)
        }));
        let joined = l.state.fetch_or(CLOSED, AcqRel) & JOINED;
        let waiting = Instant::now();
        let mut spins = 0u32;
        while l.finished.load(Acquire) != joined {
            spins += 1;
            if spins < 1 << 12 {
                std::hint::spin_loop();
            } else {
                std::thread::yield_now();
            }
        }
        // A worker still busy long after a chunk's time was preempted, not slow.
        let ran = *own.as_ref().unwrap_or(&0) as u32;
        let per_chunk = (waiting - start) / ran.max(1);
        if ran > 0 && waiting.elapsed() > 4 * per_chunk + Duration::from_micros(500) {
            STALLS.fetch_add(1, Relaxed);
            self.solo_until = Some(Instant::now() + SOLO);
        }
        if let Err(e) = own {
            std::panic::resume_unwind(e);
        }
    }
}

impl Drop for Pool {
    fn drop(&mut self) {
        let s = &self.shared;
        s.stop.store(true, SeqCst);
        s.line.state.store((self.epoch + 1) << 32 | CLOSED, SeqCst);
        {
            let _g = s.lock.lock().unwrap();
            s.wake.notify_all();
        }
        for h in self.handles.drain(..) {
            let _ = h.join();
        }
    }
}

/// Joins the job posted as `state` unless it is closed (or replaced); true when joined.
fn join(l: &Line, mut state: usize) -> bool {
    let epoch = state >> 32;
    loop {
        if state & CLOSED != 0 || state >> 32 != epoch {
            return false;
        }
        match l
            .state
            .compare_exchange_weak(state, state + 1, AcqRel, Acquire)
        {
            Ok(_) => return true,
            Err(now) => state = now,
        }
    }
}

fn worker(s: &Shared) {
    let l = &s.line;
    let mut seen = 0;
    loop {
        let start = Instant::now();
        let mut spins = 0u32;
        let mut state = l.state.load(Acquire);
        while state >> 32 == seen {
            std::hint::spin_loop();
            spins += 1;
            if spins.is_multiple_of(256) && start.elapsed() > SPIN {
                let mut g = s.lock.lock().unwrap();
                s.sleepers.fetch_add(1, SeqCst);
                while l.state.load(SeqCst) >> 32 == seen {
                    g = s.wake.wait(g).unwrap();
                }
                s.sleepers.fetch_sub(1, SeqCst);
            }
            state = l.state.load(Acquire);
        }
        seen = state >> 32;
        if s.stop.load(SeqCst) {
            return;
        }
        if !join(l, state) {
            continue;
        }
        // SAFETY: we joined this epoch, so the caller has published these fields (Release on
        // `state`) and keeps the job alive until we bump `finished` after the last use.
        let f: Job = unsafe { std::mem::transmute([l.f[0].load(Relaxed), l.f[1].load(Relaxed)]) };
        let (n, chunk) = (l.n.load(Relaxed), l.chunk.load(Relaxed));
        // A panicking job must not kill the worker or leave the caller waiting forever.
        let _ = std::panic::catch_unwind(std::panic::AssertUnwindSafe(|| {
            run_chunks(l, n, chunk, f, false)
        }));
        l.finished.fetch_add(1, Release);
    }
}
