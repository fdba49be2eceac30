/* take_rows: one batch's rows gathered from several row-sharded arrays in one call, without the GIL.
 *
 * numpy gathers from one array per call, so a shuffled batch over S shards costs S calls per
 * column plus the Python that splits the batch by shard; here the batch is one loop that finds
 * each row's shard (rows mostly arrive sorted, so the shard rarely changes) and copies each run
 * of consecutive rows with one memcpy. Other threads (the loader's readers, the training step)
 * run while it copies.
 *
 * take_rows(sources, starts, idx, out)
 *   sources: sequence of S C-contiguous buffers; source s holds the rows starts[s] ..
 *            starts[s] + len(source s) / row size - 1
 *   starts:  int64 buffer of S ascending global row numbers
 *   idx:     int64 buffer of the global rows wanted, any order, repeats allowed
 *   out:     writable C-contiguous buffer of len(idx) rows; row size = len(out) / len(idx)
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

static PyObject *take_rows(PyObject *self, PyObject *const *args, Py_ssize_t nargs) {
    (void)self;
    if (nargs != 4) {
        PyErr_SetString(PyExc_TypeError, "take_rows(sources, starts, idx, out) takes 4 arguments");
        return NULL;
    }
    PyObject *seq = PySequence_Fast(args[0], "take_rows: sources must be a sequence of buffers");
    if (seq == NULL)
        return NULL;
    const Py_ssize_t S = PySequence_Fast_GET_SIZE(seq);
    Py_buffer starts = {0}, idx = {0}, out = {0};
    Py_buffer *srcs = PyMem_Calloc((size_t)S + 1, sizeof(Py_buffer));
    const char **base = PyMem_Calloc((size_t)S + 1, sizeof(char *));
    int64_t *stop = PyMem_Calloc((size_t)S + 1, sizeof(int64_t));
    Py_ssize_t got = 0, bad = 0;
    PyObject *result = NULL;
    if (srcs == NULL || base == NULL || stop == NULL) {
        PyErr_NoMemory();
        goto done;
    }
    if (PyObject_GetBuffer(args[1], &starts, PyBUF_C_CONTIGUOUS) < 0 ||
        PyObject_GetBuffer(args[2], &idx, PyBUF_C_CONTIGUOUS) < 0 ||
        PyObject_GetBuffer(args[3], &out, PyBUF_C_CONTIGUOUS | PyBUF_WRITABLE) < 0)
        goto done;
    if (S < 1 || starts.len != S * 8 || idx.len % 8) {
        PyErr_SetString(PyExc_ValueError,
                        "take_rows: needs one or more sources, one int64 start each, int64 rows");
        goto done;
    }
    const int64_t *start = starts.buf;
    const Py_ssize_t n = idx.len / 8;
    if (n == 0 || out.len % n) {
        if (n || out.len)
            PyErr_SetString(PyExc_ValueError, "take_rows: out is not len(idx) whole rows");
        else
            result = Py_NewRef(Py_None);
        goto done;
    }
    const Py_ssize_t row = out.len / n;
    if (row == 0) { /* zero-width rows: nothing to copy (the caller's Plan checked the rows) */
        result = Py_NewRef(Py_None);
        goto done;
    }
    for (; got < S; got++) {
        if (PyObject_GetBuffer(PySequence_Fast_GET_ITEM(seq, got), &srcs[got], PyBUF_C_CONTIGUOUS) < 0)
            goto done;
        base[got] = srcs[got].buf;
        stop[got] = start[got] + srcs[got].len / row;
        if (got && start[got] < stop[got - 1]) {
            got++;
            PyErr_SetString(PyExc_ValueError, "take_rows: sources overlap or starts not ascending");
            goto done;
        }
    }
    Py_BEGIN_ALLOW_THREADS
    bad = copy_rows(out.buf, base, start, stop, S, idx.buf, n, row);
    Py_END_ALLOW_THREADS
    if (bad < 0) {
        PyErr_Format(PyExc_IndexError, "take_rows: row %lld (position %zd) is in no source",
                     (long long)((const int64_t *)idx.buf)[-1 - bad], -1 - bad);
        goto done;
    }
    result = Py_NewRef(Py_None);
done:
    for (Py_ssize_t i = 0; i < got; i++)
        PyBuffer_Release(&srcs[i]);
    if (starts.obj) PyBuffer_Release(&starts);
    if (idx.obj) PyBuffer_Release(&idx);
    if (out.obj) PyBuffer_Release(&out);
    PyMem_Free(srcs);
    PyMem_Free((void *)base);
    PyMem_Free(stop);
    Py_DECREF(seq);
    return result;
}

static PyMethodDef methods[] = {
    {"take_rows", (PyCFunction)(void (*)(void))take_rows, METH_FASTCALL,
     "take_rows(sources, starts, idx, out): out[i] = global row idx[i] of the sharded sources."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_take", NULL, -1, methods};

PyMODINIT_FUNC PyInit__take(void) { return PyModule_Create(&module); }
