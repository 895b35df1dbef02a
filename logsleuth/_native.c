/* Compiled scanners for the hottest column rules (see parsers/_columns.py).
 *
 * Each function does, over a whole chunk, what its regular expression does with
 * re.split, and returns columns as raw buffers (int64 / float64 / int8, read with
 * numpy.frombuffer) instead of one Python object per capture. Numbers are converted with
 * CPython's own parser (PyOS_string_to_double, what float() uses); a token that is not
 * plainly numeric (nan spellings, 1.#QNAN, underscores) is returned as a "fallback"
 * (row index, start, end) for the Python side to convert, so results are identical to
 * the regex path, which tests check on every golden and real log.
 *
 * VAL below is parsers/_grammar.VAL: [-+]?[\w.#]+(?:[-+]\d+)?(?:\(ind\))?
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <string.h>

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

static int buf_put(Buf *b, const void *item, Py_ssize_t size) {
    if (b->len + size > b->cap) {
        Py_ssize_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + size) cap *= 2;
        char *grown = PyMem_Realloc(b->data, cap);
        if (!grown) { PyErr_NoMemory(); return -1; }
        b->data = grown;
        b->cap = cap;
    }
    memcpy(b->data + b->len, item, size);
    b->len += size;
    return 0;
}

static PyObject *buf_bytes(Buf *b) {
    PyObject *out = PyBytes_FromStringAndSize(b->data ? b->data : "", b->len);
    PyMem_Free(b->data);
    b->data = NULL;
    return out;
}

static int is_digit(char c) { return c >= '0' && c <= '9'; }
static int is_word(char c) { return is_digit(c) || (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z') || c == '_'; }

/* End of a VAL token starting at i, or -1. Greedy, as the regex is where nothing after
 * it constrains it. */
static Py_ssize_t match_val(const char *s, Py_ssize_t i, Py_ssize_t n) {
    Py_ssize_t j = i;
    if (j < n && (s[j] == '-' || s[j] == '+')) j++;
    Py_ssize_t k = j;
    while (k < n && (is_word(s[k]) || s[k] == '.' || s[k] == '#')) k++;
    if (k == j) return -1;
    if (k + 1 < n && (s[k] == '-' || s[k] == '+') && is_digit(s[k + 1])) {
        k += 1;
        while (k < n && is_digit(s[k])) k++;
    }
    if (k + 5 <= n && memcmp(s + k, "(ind)", 5) == 0) k += 5;
    return k;
}

/* float(token) for plainly numeric tokens; 0 with *ok = 0 when Python must decide. */
static double number(const char *s, Py_ssize_t a, Py_ssize_t b, int *ok) {
    char tmp[64];
    Py_ssize_t len = b - a;
    *ok = 0;
    if (len <= 0 || len >= (Py_ssize_t)sizeof tmp) return 0.0;
    for (Py_ssize_t i = a; i < b; i++) {
        char c = s[i];
        if (!(is_digit(c) || c == '.' || c == 'e' || c == 'E' || c == '+' || c == '-')) return 0.0;
    }
    memcpy(tmp, s + a, len);
    tmp[len] = '\0';
    char *end = NULL;
    double v = PyOS_string_to_double(tmp, &end, NULL);
    if (v == -1.0 && PyErr_Occurred()) { PyErr_Clear(); return 0.0; }
    if (end != tmp + len) return 0.0;
    *ok = 1;
    return v;
}

static Py_ssize_t find(const char *s, Py_ssize_t n, Py_ssize_t from, const char *lit, Py_ssize_t litlen) {
    if (from + litlen > n) return -1;
    const char *hit = memmem(s + from, n - from, lit, litlen);
    return hit ? hit - s : -1;
}

static Py_ssize_t digits_end(const char *s, Py_ssize_t i, Py_ssize_t n) {
    Py_ssize_t k = i;
    while (k < n && is_digit(s[k])) k++;
    return k;
}

/* Records a value column entry, or a fallback (row, start, end) for Python. */
static int put_value(Buf *values, Buf *fallback, const char *s, Py_ssize_t a, Py_ssize_t b, Py_ssize_t row) {
    int ok;
    double v = number(s, a, b, &ok);
    if (!ok) {
        Py_ssize_t rec[3] = {row, a, b};
        if (buf_put(fallback, rec, sizeof rec) < 0) return -1;
        v = Py_NAN;
    }
    return buf_put(values, &v, sizeof v);
}

/* Distinct byte strings of a chunk, by first occurrence: each row gets an id. */
typedef struct {
    Buf spans;  /* (start, len) pairs of Py_ssize_t */
    Py_ssize_t count;
} Table;

static int table_id(Table *t, const char *s, Py_ssize_t a, Py_ssize_t b, int *id) {
    Py_ssize_t *spans = (Py_ssize_t *)t->spans.data;
    for (Py_ssize_t i = 0; i < t->count; i++) {
        if (spans[2 * i + 1] == b - a && memcmp(s + spans[2 * i], s + a, b - a) == 0) { *id = (int)i; return 0; }
    }
    Py_ssize_t rec[2] = {a, b - a};
    if (buf_put(&t->spans, rec, sizeof rec) < 0) return -1;
    *id = (int)t->count++;
    return 0;
}

static PyObject *table_list(Table *t, const char *s) {
    PyObject *out = PyList_New(t->count);
    Py_ssize_t *spans = (Py_ssize_t *)t->spans.data;
    for (Py_ssize_t i = 0; out && i < t->count; i++) {
        PyObject *item = PyBytes_FromStringAndSize(s + spans[2 * i], spans[2 * i + 1]);
        if (!item) { Py_CLEAR(out); break; }
        PyList_SET_ITEM(out, i, item);
    }
    PyMem_Free(t->spans.data);
    t->spans.data = NULL;
    return out;
}

/* Iteration (\d+)(?: \([^)\r\n]*\))?, (?:(loss|lr) = (VAL)|Testing net)
 * -> (pos int64, step float64, kind int8 [0 loss, 1 lr, 2 Testing net], value float64,
 *     fallback int64 triples) */
static PyObject *caffe_iteration(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const char *s = view.buf;
    Py_ssize_t n = view.len, at = 0, rows = 0;
    Buf pos = {0}, step = {0}, kind = {0}, values = {0}, fallback = {0};
    int failed = 0;
    while (!failed && (at = find(s, n, at, "Iteration ", 10)) >= 0) {
        Py_ssize_t p = at, i = p + 10, j = digits_end(s, i, n);
        at = p + 1;
        if (j == i) continue;
        Py_ssize_t k = j;
        if (k + 1 < n && s[k] == ' ' && s[k + 1] == '(') {
            Py_ssize_t q = k + 2;
            while (q < n && s[q] != ')' && s[q] != '\r' && s[q] != '\n') q++;
            if (q < n && s[q] == ')') k = q + 1;
        }
        if (!(k + 1 < n && s[k] == ',' && s[k + 1] == ' ')) continue;
        k += 2;
        signed char what;
        Py_ssize_t va = -1, vb = -1;
        if (k + 7 <= n && memcmp(s + k, "loss = ", 7) == 0 && (vb = match_val(s, k + 7, n)) >= 0) {
            what = 0, va = k + 7;
        } else if (k + 5 <= n && memcmp(s + k, "lr = ", 5) == 0 && (vb = match_val(s, k + 5, n)) >= 0) {
            what = 1, va = k + 5;
        } else if (k + 11 <= n && memcmp(s + k, "Testing net", 11) == 0) {
            what = 2, vb = k + 11;
        } else {
            continue;
        }
        long long p64 = p;
        double st = 0.0;
        for (Py_ssize_t d = i; d < j; d++) st = st * 10.0 + (s[d] - '0');
        double nan = Py_NAN;
        if (buf_put(&pos, &p64, sizeof p64) < 0 || buf_put(&step, &st, sizeof st) < 0 ||
            buf_put(&kind, &what, 1) < 0 ||
            (what == 2 ? buf_put(&values, &nan, sizeof nan) : put_value(&values, &fallback, s, va, vb, rows)) < 0) {
            failed = 1;
            break;
        }
        rows++;
        at = vb;
    }
    PyBuffer_Release(&view);
    PyObject *out = failed ? NULL : Py_BuildValue("(NNNNN)", buf_bytes(&pos), buf_bytes(&step), buf_bytes(&kind),
                                                buf_bytes(&values), buf_bytes(&fallback));
    if (failed) { PyMem_Free(pos.data); PyMem_Free(step.data); PyMem_Free(kind.data); PyMem_Free(values.data); PyMem_Free(fallback.data); }
    return out;
}

/* ANCHOR\d+: (?P<name>[^=\r\n]+?) = (?P<value>VAL) and, with weights,
 * (?: \(\\?\* (?P<weight>VAL) = [^)\r\n]* loss\))?
 * -> (pos int64, name id int32, names (list of bytes), value float64, weight id int32
 *     (-1 without one), weights (list of bytes), fallback int64 triples) */
static PyObject *caffe_output(PyObject *self, PyObject *args) {
    Py_buffer view;
    const char *lit;
    Py_ssize_t litlen;
    int weights;
    if (!PyArg_ParseTuple(args, "y*y#p", &view, &lit, &litlen, &weights)) return NULL;
    const char *s = view.buf;
    Py_ssize_t n = view.len, at = 0, rows = 0;
    Buf pos = {0}, name = {0}, values = {0}, weight = {0}, fallback = {0};
    Table names = {{0}, 0}, wts = {{0}, 0};
    int failed = 0;
    while (!failed && (at = find(s, n, at, lit, litlen)) >= 0) {
        Py_ssize_t p = at, i = p + litlen, j = digits_end(s, i, n);
        at = p + 1;
        if (j == i || !(j + 1 < n && s[j] == ':' && s[j + 1] == ' ')) continue;
        Py_ssize_t na = j + 2, e = na + 1, va = -1, vb = -1;
        for (; e <= n; e++) {  /* the shortest name followed by " = " and a value */
            char c = s[e - 1];
            if (c == '=' || c == '\r' || c == '\n') { e = -1; break; }
            if (e + 3 <= n && memcmp(s + e, " = ", 3) == 0 && (vb = match_val(s, e + 3, n)) >= 0) {
                va = e + 3;
                break;
            }
        }
        if (e < 0 || va < 0) continue;
        Py_ssize_t end = vb, wa = -1, wb = -1;
        if (weights && vb + 2 < n && s[vb] == ' ' && s[vb + 1] == '(') {
            Py_ssize_t k = vb + 2;
            if (k < n && s[k] == '\\') k++;
            if (k + 1 < n && s[k] == '*' && s[k + 1] == ' ') {
                Py_ssize_t w0 = k + 2, w1 = match_val(s, w0, n);
                if (w1 >= 0 && w1 + 3 <= n && memcmp(s + w1, " = ", 3) == 0) {
                    Py_ssize_t q = w1 + 3;
                    while (q < n && s[q] != ')' && s[q] != '\r' && s[q] != '\n') q++;
                    if (q < n && s[q] == ')' && q - 5 >= w1 + 3 && memcmp(s + q - 5, " loss", 5) == 0) {
                        wa = w0, wb = w1, end = q + 1;
                    }
                }
            }
        }
        long long p64 = p;
        int nid, wid = -1;
        if (table_id(&names, s, na, e, &nid) < 0 || (wa >= 0 && table_id(&wts, s, wa, wb, &wid) < 0) ||
            buf_put(&pos, &p64, sizeof p64) < 0 || buf_put(&name, &nid, sizeof nid) < 0 ||
            buf_put(&weight, &wid, sizeof wid) < 0 || put_value(&values, &fallback, s, va, vb, rows) < 0) {
            failed = 1;
            break;
        }
        rows++;
        at = end;
    }
    PyObject *out = NULL;
    if (!failed) {
        PyObject *name_list = table_list(&names, s), *weight_list = table_list(&wts, s);
        if (name_list && weight_list) {
            out = Py_BuildValue("(NNNNNNN)", buf_bytes(&pos), buf_bytes(&name), name_list, buf_bytes(&values),
                                buf_bytes(&weight), weight_list, buf_bytes(&fallback));
        } else {
            Py_XDECREF(name_list);
            Py_XDECREF(weight_list);
            failed = 1;
        }
    }
    PyBuffer_Release(&view);
    if (failed) {
        PyMem_Free(pos.data); PyMem_Free(name.data); PyMem_Free(values.data); PyMem_Free(weight.data);
        PyMem_Free(fallback.data); PyMem_Free(names.spans.data); PyMem_Free(wts.spans.data);
    }
    return out;
}

static PyMethodDef methods[] = {
    {"caffe_iteration", caffe_iteration, METH_O, "Caffe `Iteration N ..., loss|lr = X` / `Testing net` lines."},
    {"caffe_output", caffe_output, METH_VARARGS, "Caffe `Train|Test net output #k: name = X` lines."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native", "Compiled column scanners.", -1, methods};

PyMODINIT_FUNC PyInit__native(void) { return PyModule_Create(&module); }
