/* take_rows: one batch's rows gathered from several row-sharded arrays in one call, without the GIL.
 *
 * numpy gathers from one array per call, so a shuffled batch over S shards costs S calls per
 * column plus the Python that splits the batch by shard; here the batch is one loop that finds
 * each row's shard (rows mostly arrive sorted, so the shard rarely changes) and copies each run
 * of consecutive rows with one memcpy. Other threads (the loader's readers, the training step)
 * run while it copies.
 *
 * take_rows(sources, starts, idx, out, threads=1)
 *   sources: sequence of S C-contiguous buffers; source s holds the rows starts[s] ..
 *            starts[s] + len(source s) / row size - 1
 *   starts:  int64 buffer of S ascending global row numbers
 *   idx:     int64 buffer of the global rows wanted, any order, repeats allowed
 *   out:     writable C-contiguous buffer of len(idx) rows; row size = len(out) / len(idx)
 *   threads: copy with up to threads - 1 helper threads as well (Linux; below)
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <stdint.h>
#include <string.h>

/* 0, or -1 - i for the first row idx[i] that no source holds */
static Py_ssize_t copy_rows(char *out, const char **base, const int64_t *start, const int64_t *stop,
                            Py_ssize_t S, const int64_t *idx, Py_ssize_t n, Py_ssize_t row) {
    Py_ssize_t s = 0;
    for (Py_ssize_t i = 0; i < n;) {
        const int64_t r = idx[i];
        if (r < start[s] || r >= stop[s]) {
            Py_ssize_t lo = 0, hi = S; /* the last source starting at or before r */
            while (hi - lo > 1) {
                Py_ssize_t m = (lo + hi) / 2;
                if (start[m] <= r) lo = m; else hi = m;
            }
            s = lo;
            if (r < start[s] || r >= stop[s])
                return -1 - i;
        }
        Py_ssize_t k = 1; /* the run of consecutive rows from here, inside this source */
        while (i + k < n && idx[i + k] == r + k && r + k < stop[s])
            k++;
        const char *src = base[s] + (r - start[s]) * row;
        char *dst = out + i * row;
        if (k == 1 && row == 8) memcpy(dst, src, 8); /* labels: one load and store */
        else if (k == 1 && row == 4) memcpy(dst, src, 4);
        else memcpy(dst, src, (size_t)(k * row));
        i += k;
    }
    return 0;
}

/* The helper threads: a process-wide pool that shares the rows of one large call with its caller.
 *
 * A random 1 KiB row costs memory latency, not bandwidth, so two cores copying halves of a batch
 * keep twice the misses in flight. The caller never waits for a helper to start: rows are handed
 * out in chunks that whoever is running claims (one compare-and-swap each), so a helper that is
 * descheduled or still asleep costs at most the chunk it holds, not the batch (an OpenMP team
 * waits for its slowest thread: that lost 2-20x on a loaded 2-core VM, gather.py). Helpers spin
 * briefly after a call for the next one, then sleep on a futex.
 *
 * One call at a time uses the pool; a concurrent caller (another reader thread) copies alone.
 * After fork() the child has no helpers, and starts its own if it calls with threads > 1.
 */
#if defined(__linux__)
#define WB_POOL 1
#include <linux/futex.h>
#include <pthread.h>
#include <sched.h>
#include <stdatomic.h>
#include <sys/syscall.h>
#include <time.h>
#include <unistd.h>

#if defined(__x86_64__) || defined(__i386__)
#define CPU_RELAX() __builtin_ia32_pause()
#else
#define CPU_RELAX() ((void)0)
#endif
#define MAX_HELPERS 15
#define CHUNK_ROWS(row) ((row) >= (CHUNK_BYTES) ? 1 : (CHUNK_BYTES) / (row))
#define CHUNK_BYTES (32 << 10) /* small: a descheduled helper holds up at most this much */
/* A helper's wait for the next call before it sleeps: twice the recent gap between calls, where
 * that is short (a batch loop whose consumer is quick: waking a sleeping helper cost ~20 us and
 * most of its share of the batch here: bs 256 full shuffle 126 -> 85 us a batch), else the
 * minimum (a training step between batches: a spinning helper would take its core). */
#define SPIN_MIN_NS 30000
#define SPIN_MAX_NS 1000000

typedef struct {
    char *out;
    const char **base;
    const int64_t *start, *stop, *idx;
    Py_ssize_t S, n, row, chunk;
    int64_t nchunks;
    atomic_llong bad;   /* the first bad position + 1, or 0 */
    atomic_llong done;  /* chunks copied */
} job_t;

static job_t job;
static atomic_ullong state;   /* generation << 32 | chunks still to claim */
static atomic_uint wake_word; /* the futex: bumped once per call */
static atomic_int sleepers;
static int helpers;           /* started in this process */
static atomic_llong spin_ns = SPIN_MIN_NS;
static int64_t last_end_ns, gap_avg_ns; /* owned by whoever holds the pool */
static atomic_int pool_busy;  /* one call (or one started gather) uses the pool at a time */
static pthread_mutex_t start_lock = PTHREAD_MUTEX_INITIALIZER;

static void run_chunk(uint64_t c) {
    const Py_ssize_t a = (Py_ssize_t)c * job.chunk;
    const Py_ssize_t k = a + job.chunk < job.n ? job.chunk : job.n - a;
    Py_ssize_t bad = copy_rows(job.out + a * job.row, job.base, job.start, job.stop, job.S,
                               job.idx + a, k, job.row);
    if (bad < 0) {
        long long want = a + (-1 - bad) + 1, cur = atomic_load(&job.bad);
        while ((cur == 0 || want < cur) && !atomic_compare_exchange_weak(&job.bad, &cur, want))
            ;
    }
    atomic_fetch_add_explicit(&job.done, 1, memory_order_release);
}

/* claim and copy chunks of generation gen until none is left */
static void work(uint64_t gen) {
    uint64_t v = atomic_load_explicit(&state, memory_order_acquire);
    while ((v >> 32) == gen && (v & 0xffffffffu)) {
        if (atomic_compare_exchange_weak_explicit(&state, &v, v - 1, memory_order_acq_rel,
                                                  memory_order_acquire))
            run_chunk((v & 0xffffffffu) - 1);
    }
}

static int64_t now_ns(void) {
    struct timespec t;
    clock_gettime(CLOCK_MONOTONIC, &t);
    return (int64_t)t.tv_sec * 1000000000 + t.tv_nsec;
}

static void *helper(void *arg) {
    (void)arg;
    unsigned seen = atomic_load(&wake_word);
    for (;;) {
        unsigned w;
        int64_t until = now_ns() + atomic_load_explicit(&spin_ns, memory_order_relaxed);
        int spins = 0;
        while ((w = atomic_load_explicit(&wake_word, memory_order_acquire)) == seen) {
            if (++spins % 64 == 0 && now_ns() > until) {
                atomic_fetch_add(&sleepers, 1);
                if (atomic_load(&wake_word) == seen)
                    syscall(SYS_futex, &wake_word, FUTEX_WAIT_PRIVATE, seen, NULL, NULL, 0);
                atomic_fetch_sub(&sleepers, 1);
                until = now_ns() + atomic_load_explicit(&spin_ns, memory_order_relaxed);
            }
            CPU_RELAX();
        }
        seen = w;
        work(atomic_load_explicit(&state, memory_order_acquire) >> 32);
    }
    return NULL;
}

static void forget_pending(void);

static void after_fork_child(void) {
    helpers = 0; /* the parent's threads do not exist here */
    atomic_store(&pool_busy, 0);
    pthread_mutex_init(&start_lock, NULL);
    atomic_store(&sleepers, 0);
    last_end_ns = gap_avg_ns = 0;
    forget_pending();
}

static int ensure_helpers(int want) {
    if (want > MAX_HELPERS) want = MAX_HELPERS;
    if (helpers >= want) return helpers;
    pthread_mutex_lock(&start_lock);
    static int registered = 0;
    if (!registered) {
        pthread_atfork(NULL, NULL, after_fork_child);
        registered = 1;
    }
    while (helpers < want) {
        pthread_t t;
        pthread_attr_t attr;
        pthread_attr_init(&attr);
        pthread_attr_setdetachstate(&attr, PTHREAD_CREATE_DETACHED);
        pthread_attr_setstacksize(&attr, 64 << 10);
        int err = pthread_create(&t, &attr, helper, NULL);
        pthread_attr_destroy(&attr);
        if (err) break;
        helpers++;
    }
    pthread_mutex_unlock(&start_lock);
    return helpers;
}

static int pool_take(void) {
    int free_ = 0;
    return atomic_compare_exchange_strong(&pool_busy, &free_, 1);
}

/* hand a job to the helpers (the caller holds the pool); returns its generation */
static uint64_t begin_shared(char *out, const char **base, const int64_t *start,
                             const int64_t *stop, Py_ssize_t S, const int64_t *idx, Py_ssize_t n,
                             Py_ssize_t row, Py_ssize_t chunk) {
    const int64_t t0 = now_ns();
    if (last_end_ns) {
        const int64_t gap = t0 - last_end_ns;
        gap_avg_ns = gap_avg_ns ? (3 * gap_avg_ns + gap) / 4 : gap;
        const int64_t spin = 2 * gap_avg_ns;
        atomic_store_explicit(&spin_ns, spin <= SPIN_MAX_NS ? (spin > SPIN_MIN_NS ? spin : SPIN_MIN_NS)
                                                             : SPIN_MIN_NS, memory_order_relaxed);
    }
    static uint64_t gen = 0;
    gen = (gen + 1) & 0xffffffffu;
    job.out = out; job.base = base; job.start = start; job.stop = stop; job.S = S;
    job.idx = idx; job.n = n; job.row = row; job.chunk = chunk;
    job.nchunks = (n + chunk - 1) / chunk;
    atomic_store(&job.bad, 0);
    atomic_store(&job.done, 0);
    atomic_store_explicit(&state, gen << 32 | (uint64_t)job.nchunks, memory_order_release);
    atomic_fetch_add_explicit(&wake_word, 1, memory_order_release);
    if (atomic_load(&sleepers) > 0)
        syscall(SYS_futex, &wake_word, FUTEX_WAKE_PRIVATE, MAX_HELPERS, NULL, NULL, 0);
    return gen;
}

/* copy what the helpers have not claimed, wait for the rest, give the pool back */
static Py_ssize_t end_shared(uint64_t gen) {
    work(gen);
    int spins = 0; /* a helper may still be copying its last chunk */
    while (atomic_load_explicit(&job.done, memory_order_acquire) != job.nchunks)
        if (++spins % 256 == 0) sched_yield(); else CPU_RELAX();
    long long b = atomic_load(&job.bad);
    last_end_ns = now_ns();
    atomic_store(&pool_busy, 0);
    return b ? -b : 0; /* -(position + 1): copy_rows' convention */
}

/* copy with threads - 1 helpers sharing the rows; *used = 0 (nothing copied: copy alone) when
 * the pool is busy with another call or no helper could start */
static Py_ssize_t copy_rows_shared(char *out, const char **base, const int64_t *start,
                                   const int64_t *stop, Py_ssize_t S, const int64_t *idx,
                                   Py_ssize_t n, Py_ssize_t row, int threads, Py_ssize_t chunk,
                                   int *used) {
    *used = 0;
    if (ensure_helpers(threads - 1) < 1 || !pool_take())
        return 0;
    *used = 1;
    return end_shared(begin_shared(out, base, start, stop, S, idx, n, row, chunk));
}
#endif

/* one call's buffers, held from parsing until the copy is done */
typedef struct {
    PyObject *seq;
    Py_buffer *srcs, starts, idx, out;
    const char **base;
    int64_t *stop;
    Py_ssize_t S, got, n, row;
} call_t;

static void release(call_t *c) {
    for (Py_ssize_t i = 0; i < c->got; i++)
        PyBuffer_Release(&c->srcs[i]);
    if (c->starts.obj) PyBuffer_Release(&c->starts);
    if (c->idx.obj) PyBuffer_Release(&c->idx);
    if (c->out.obj) PyBuffer_Release(&c->out);
    PyMem_Free(c->srcs);
    PyMem_Free((void *)c->base);
    PyMem_Free(c->stop);
    Py_XDECREF(c->seq);
    memset(c, 0, sizeof(*c));
}

/* 0: ready to copy; 1: nothing to copy; -1: an error is set. release() in every case. */
static int parse(PyObject *const *args, call_t *c) {
    memset(c, 0, sizeof(*c));
    c->seq = PySequence_Fast(args[0], "take_rows: sources must be a sequence of buffers");
    if (c->seq == NULL)
        return -1;
    c->S = PySequence_Fast_GET_SIZE(c->seq);
    c->srcs = PyMem_Calloc((size_t)c->S + 1, sizeof(Py_buffer));
    c->base = PyMem_Calloc((size_t)c->S + 1, sizeof(char *));
    c->stop = PyMem_Calloc((size_t)c->S + 1, sizeof(int64_t));
    if (c->srcs == NULL || c->base == NULL || c->stop == NULL) {
        PyErr_NoMemory();
        return -1;
    }
    if (PyObject_GetBuffer(args[1], &c->starts, PyBUF_C_CONTIGUOUS) < 0 ||
        PyObject_GetBuffer(args[2], &c->idx, PyBUF_C_CONTIGUOUS) < 0 ||
        PyObject_GetBuffer(args[3], &c->out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0)
        return -1;
    if (c->S < 1 || c->starts.len != c->S * 8 || c->idx.len % 8) {
        PyErr_SetString(PyExc_ValueError,
                        "take_rows: needs one or more sources, one int64 start each, int64 rows");
        return -1;
    }
    const int64_t *start = c->starts.buf;
    c->n = c->idx.len / 8;
    if (c->n == 0 || c->out.len % c->n) {
        if (c->n || c->out.len) {
            PyErr_SetString(PyExc_ValueError, "take_rows: out is not len(idx) whole rows");
            return -1;
        }
        return 1;
    }
    c->row = c->out.len / c->n;
    if (c->row == 0) /* zero-width rows: nothing to copy (the caller's Plan checked the rows) */
        return 1;
    for (; c->got < c->S; c->got++) {
        Py_ssize_t g = c->got;
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(c->seq, g), &c->srcs[g], PyBUF_C_CONTIGUOUS) < 0)
            return -1;
        c->base[g] = c->srcs[g].buf;
        c->stop[g] = start[g] + c->srcs[g].len / c->row;
        if (g && start[g] < c->stop[g - 1]) {
            c->got++;
            PyErr_SetString(PyExc_ValueError, "take_rows: sources overlap or starts not ascending");
            return -1;
        }
    }
    return 0;
}

static PyObject *bad_row(const call_t *c, Py_ssize_t bad) {
    PyErr_Format(PyExc_IndexError, "take_rows: row %lld (position %zd) is in no source",
                 (long long)((const int64_t *)c->idx.buf)[-1 - bad], -1 - bad);
    return NULL;
}

static PyObject *take_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 4 && nargs != 5) {
        PyErr_SetString(PyExc_TypeError,
                        "take_rows(sources, starts, idx, out, threads=1) takes 4 or 5 arguments");
        return NULL;
    }
    const long threads = nargs == 5 ? PyLong_AsLong(args[4]) : 1;
    if (threads == -1 && PyErr_Occurred())
        return NULL;
    call_t c;
    int ok = parse(args, &c);
    PyObject *result = ok == 1 ? Py_NewRef(Py_None) : NULL;
    if (ok == 0) {
        Py_ssize_t bad = 0;
        Py_BEGIN_ALLOW_THREADS
        int shared = 0;
#ifdef WB_POOL
        if (threads > 1 && c.n >= 2 * CHUNK_ROWS(c.row))
            bad = copy_rows_shared(c.out.buf, c.base, c.starts.buf, c.stop, c.S, c.idx.buf, c.n,
                                   c.row, (int)threads, CHUNK_ROWS(c.row), &shared);
#endif
        if (!shared)
            bad = copy_rows(c.out.buf, c.base, c.starts.buf, c.stop, c.S, c.idx.buf, c.n, c.row);
        Py_END_ALLOW_THREADS
        result = bad < 0 ? bad_row(&c, bad) : Py_NewRef(Py_None);
    }
    release(&c);
    return result;
}

/* A gather started on the helpers while the caller goes on (the consumer uses the last batch
 * meanwhile); one at a time per process, finished by take_rows_finish(). Its buffers are held
 * until then, so nothing it writes into can be freed under it. */
static struct {
    call_t c;
    int active;
    uint64_t gen;
} pending;

/* after fork: the child's copies of the buffers belong to the parent's objects; drop, not release */
static void forget_pending(void) { memset(&pending, 0, sizeof(pending)); }

static PyObject *take_rows_start(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "take_rows_start(sources, starts, idx, out) takes 4 arguments");
        return NULL;
    }
#ifdef WB_POOL
    if (pending.active)
        Py_RETURN_FALSE;
    call_t c;
    int ok = parse(args, &c);
    if (ok < 0) {
        release(&c);
        return NULL;
    }
    if (ok == 1 || c.n < 2 * CHUNK_ROWS(c.row) || ensure_helpers(1) < 1 || !pool_take()) {
        release(&c);
        Py_RETURN_FALSE; /* nothing worth starting, or the pool is busy: copy when asked */
    }
    pending.c = c;
    pending.active = 1;
    pending.gen = begin_shared(c.out.buf, c.base, c.starts.buf, c.stop, c.S, c.idx.buf, c.n, c.row,
                               CHUNK_ROWS(c.row));
    Py_RETURN_TRUE;
#else
    (void)args;
    Py_RETURN_FALSE;
#endif
}

static PyObject *take_rows_finish(PyObject *self, PyObject *unused) {
    (void)self;
    (void)unused;
#ifdef WB_POOL
    if (!pending.active) {
        PyErr_SetString(PyExc_RuntimeError, "take_rows_finish: no gather was started");
        return NULL;
    }
    Py_ssize_t bad;
    Py_BEGIN_ALLOW_THREADS
    bad = end_shared(pending.gen);
    Py_END_ALLOW_THREADS
    pending.active = 0;
    PyObject *result = bad < 0 ? bad_row(&pending.c, bad) : Py_NewRef(Py_None);
    release(&pending.c);
    return result;
#else
    PyErr_SetString(PyExc_RuntimeError, "take_rows_finish: no gather was started");
    return NULL;
#endif
}

static PyMethodDef methods[] = {
    {"take_rows", (PyCFunction)(void (*)(void))take_rows, METH_FASTCALL,
     "take_rows(sources, starts, idx, out, threads=1): out[i] = global row idx[i] of the sharded sources."},
    {"take_rows_start", (PyCFunction)(void (*)(void))take_rows_start, METH_FASTCALL,
     "take_rows_start(sources, starts, idx, out): begin take_rows on the helper threads and return "
     "at once (True), or False where it cannot start (pool busy, too small): then call take_rows."},
    {"take_rows_finish", take_rows_finish, METH_NOARGS,
     "take_rows_finish(): wait for the gather take_rows_start began (raises IndexError for a row "
     "in no source)."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_take", NULL, -1, methods};

PyMODINIT_FUNC PyInit__take(void) { return PyModule_Create(&module); }
