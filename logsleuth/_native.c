/* The optional C extension (logsleuth._native): compiled versions of the parse's hottest
 * steps, each tested against the Python code it replaces (tests/test_native.py):
 *
 * - scanners for the lines that make up most logs: Caffe's iteration and net-output lines
 *   (parsers/_columns.py), Hugging Face dict lines (parsers/hf_trainer.py), and the tqdm
 *   bar before a record (logsleuth/scan.py);
 * - metric pairs: key/value pairs as parsers/_pairs.py's pair patterns read them;
 * - forward fill (logsleuth/series.py);
 * - CSV rows as pyarrow writes them (logsleuth/output.py).
 *
 * Each scanner does, over a whole chunk, what its regular expression does with
 * re.split or finditer, and returns columns as raw buffers (int64 / float64 / int8, read with
 * numpy.frombuffer) instead of one Python object per capture. Numbers are converted with
 * strtod (correctly rounded, as float() is) only where it reads the whole token, which
 * must be made of [0-9.eE+-]; any other token (nan spellings, 1.#QNAN, underscores) is
 * returned as a "fallback" (row index, start, end) for the Python side to convert, so
 * results are identical to the regex path, which tests check on every golden and real log.
 *
 * The loops run without the GIL (logsleuth/parallel.py scans chunks in threads): they
 * touch no Python object, allocate with PyMem_Raw*, and report running out of memory
 * once they hold the GIL again.
 *
 * VAL below is parsers/_grammar.VAL: [-+]?[\w.#]+(?:[-+]\d+)?(?:\(ind\))?
 */
#define _GNU_SOURCE
#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <math.h>
#include <string.h>

typedef struct {
    char *data;
    Py_ssize_t len, cap;
} Buf;

static int buf_reserve(Buf *b, Py_ssize_t size) {
    if (b->len + size > b->cap) {
        Py_ssize_t cap = b->cap ? b->cap * 2 : 4096;
        while (cap < b->len + size) cap *= 2;
        char *grown = PyMem_RawRealloc(b->data, cap);
        if (!grown) return -1;
        b->data = grown;
        b->cap = cap;
    }
    return 0;
}

static int buf_put(Buf *b, const void *item, Py_ssize_t size) {
    if (buf_reserve(b, size) < 0) return -1;
    memcpy(b->data + b->len, item, size);
    b->len += size;
    return 0;
}

static PyObject *buf_bytes(Buf *b) {
    PyObject *out = PyBytes_FromStringAndSize(b->data ? b->data : "", b->len);
    PyMem_RawFree(b->data);
    b->data = NULL;
    return out;
}

static void buf_free(Buf *b) {
    PyMem_RawFree(b->data);
    b->data = NULL;
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
    double v = strtod(tmp, &end);  /* a locale whose decimal point is not '.' stops it early */
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
    buf_free(&t->spans);
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
    PyThreadState *unlocked = PyEval_SaveThread();
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
    PyEval_RestoreThread(unlocked);
    PyBuffer_Release(&view);
    if (failed) PyErr_NoMemory();
    PyObject *out = failed ? NULL : Py_BuildValue("(NNNNN)", buf_bytes(&pos), buf_bytes(&step), buf_bytes(&kind),
                                                buf_bytes(&values), buf_bytes(&fallback));
    if (failed) { PyMem_RawFree(pos.data); PyMem_RawFree(step.data); PyMem_RawFree(kind.data); PyMem_RawFree(values.data); PyMem_RawFree(fallback.data); }
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
    PyThreadState *unlocked = PyEval_SaveThread();
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
    PyEval_RestoreThread(unlocked);
    PyObject *out = NULL;
    if (failed) PyErr_NoMemory();
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
        PyMem_RawFree(pos.data); PyMem_RawFree(name.data); PyMem_RawFree(values.data); PyMem_RawFree(weight.data);
        PyMem_RawFree(fallback.data); PyMem_RawFree(names.spans.data); PyMem_RawFree(wts.spans.data);
    }
    return out;
}

/* ---- Hugging Face Trainer dict lines and tqdm bars (parsers/hf_trainer.py, scan.py) ---- */

static int is_key_char(char c) { return is_word(c) || c == '/' || c == '.' || c == '-'; }

static const char *const DICT_KEYS[] = {"loss", "eval_", "train_", "grad_norm", "learning_rate", "epoch", "test_"};

/* Length of the match of \{('(?:loss|eval_|...)[^}\r\n]*)\} at p, or 0. */
static Py_ssize_t match_dict(const char *s, Py_ssize_t p, Py_ssize_t n) {
    Py_ssize_t i = p + 2, k;
    int known = 0;
    for (size_t d = 0; d < sizeof DICT_KEYS / sizeof *DICT_KEYS && !known; d++) {
        Py_ssize_t len = (Py_ssize_t)strlen(DICT_KEYS[d]);
        known = i + len <= n && memcmp(s + i, DICT_KEYS[d], len) == 0;
    }
    if (!known) return 0;
    for (k = i; k < n && s[k] != '}' && s[k] != '\r' && s[k] != '\n'; k++) {}
    return k < n && s[k] == '}' ? k + 1 - p : 0;
}

/* recent transformers releases quote the values ('loss': '0.68'): the number starts after
 * the quote, as hf_trainer._ITEM's (?:'(?=[-+.\dnNiI]))? */
static Py_ssize_t quoted_number(const char *s, Py_ssize_t va, Py_ssize_t end) {
    if (va + 1 < end && s[va] == '\'' && (is_digit(s[va + 1]) || strchr("-+.nNiI", s[va + 1]) != NULL)) return va + 1;
    return va;
}

/* \{('(?:loss|eval_|train_|grad_norm|learning_rate|epoch|test_)[^}\r\n]*)\} (finditer) and,
 * inside each, the items '([\w/.\-]+)': (VAL) (findall)
 * -> (dict pos int64, item's dict int32, item's key id int32, keys (list of bytes),
 *     value float64, value is all digits int8, fallback int64 triples) */
static PyObject *hf_dicts(PyObject *self, PyObject *arg) {
    Py_buffer view;
    if (PyObject_GetBuffer(arg, &view, PyBUF_SIMPLE) < 0) return NULL;
    const char *s = view.buf;
    Py_ssize_t n = view.len, at = 0, items = 0;
    int dicts = 0, failed = 0;
    Buf pos = {0}, owner = {0}, key = {0}, values = {0}, digits = {0}, fallback = {0};
    Table keys = {{0}, 0};
    PyThreadState *unlocked = PyEval_SaveThread();
    while (!failed && at < n) {
        const char *brace = memchr(s + at, '{', n - at);  /* rare outside dict lines: faster than memmem */
        if (!brace) break;
        Py_ssize_t p = brace - s, len = p + 1 < n && s[p + 1] == '\'' ? match_dict(s, p, n) : 0;
        if (!len) { at = p + 1; continue; }
        Py_ssize_t end = p + len - 1, i = p + 1;  /* the payload is s[p+1:end] */
        long long p64 = p;
        if (buf_put(&pos, &p64, sizeof p64) < 0) { failed = 1; break; }
        while (i < end) {
            const char *q = memchr(s + i, '\'', end - i);
            if (!q) break;
            i = q - s;
            Py_ssize_t k = i + 1;
            while (k < end && is_key_char(s[k])) k++;
            Py_ssize_t vb, va = k + 3;
            if (k == i + 1 || !(k + 3 <= end && s[k] == '\'' && s[k + 1] == ':' && s[k + 2] == ' ') ||
                (vb = match_val(s, va = quoted_number(s, va, end), end)) < 0) {
                i++;
                continue;
            }
            int id;
            signed char all_digits = 1;
            for (Py_ssize_t d = va; d < vb; d++) all_digits &= is_digit(s[d]);
            if (table_id(&keys, s, i + 1, k, &id) < 0 || buf_put(&owner, &dicts, sizeof dicts) < 0 ||
                buf_put(&key, &id, sizeof id) < 0 || buf_put(&digits, &all_digits, 1) < 0 ||
                put_value(&values, &fallback, s, va, vb, items) < 0) {
                failed = 1;
                break;
            }
            items++;
            i = vb;
        }
        dicts++;
        at = p + len;
    }
    PyEval_RestoreThread(unlocked);
    PyObject *out = NULL;
    if (failed) PyErr_NoMemory();
    if (!failed) {
        PyObject *key_list = table_list(&keys, s);
        if (key_list) {
            out = Py_BuildValue("(NNNNNNN)", buf_bytes(&pos), buf_bytes(&owner), buf_bytes(&key), key_list,
                                buf_bytes(&values), buf_bytes(&digits), buf_bytes(&fallback));
        } else {
            failed = 1;
        }
    }
    PyBuffer_Release(&view);
    if (failed) {
        PyMem_RawFree(pos.data); PyMem_RawFree(owner.data); PyMem_RawFree(key.data); PyMem_RawFree(values.data);
        PyMem_RawFree(digits.data); PyMem_RawFree(fallback.data); PyMem_RawFree(keys.spans.data);
    }
    return out;
}

/* re.compile(rb"(\d+)/(\d+) \[[\d:]+<").search(s, from, endpos): the first match, or -1. */
static Py_ssize_t search_bar(const char *s, Py_ssize_t from, Py_ssize_t endpos, double *count, double *total) {
    for (Py_ssize_t st = from; st < endpos; st++) {
        Py_ssize_t a = digits_end(s, st, endpos);
        if (a == st || a >= endpos || s[a] != '/') continue;
        Py_ssize_t b = digits_end(s, a + 1, endpos);
        if (b == a + 1 || b + 2 > endpos || s[b] != ' ' || s[b + 1] != '[') continue;
        Py_ssize_t c = b + 2;
        while (c < endpos && (is_digit(s[c]) || s[c] == ':')) c++;
        if (c == b + 2 || c >= endpos || s[c] != '<') continue;
        *count = 0, *total = 0;
        for (Py_ssize_t d = st; d < a; d++) *count = *count * 10 + (s[d] - '0');
        for (Py_ssize_t d = a + 1; d < b; d++) *total = *total * 10 + (s[d] - '0');
        return c + 1 == endpos ? st : -1;  /* the bar must end at the '<' searched from */
    }
    return -1;
}

/* last_bars(chunk, lo int64, hi int64, lookback) -> (pos int64, count, total float64): for
 * each (lo, hi), the last tqdm bar update "N/T [..<" in chunk[lo:hi] whose '<' is within
 * lookback bytes of hi (pos -1: none); scan.py's _last_bar, for many records at once. */
static PyObject *last_bars(PyObject *self, PyObject *args) {
    Py_buffer view, lo_view, hi_view;
    Py_ssize_t lookback;
    if (!PyArg_ParseTuple(args, "y*y*y*n", &view, &lo_view, &hi_view, &lookback)) return NULL;
    const char *s = view.buf;
    const long long *lo = lo_view.buf, *hi = hi_view.buf;
    Py_ssize_t rows = hi_view.len / (Py_ssize_t)sizeof(long long);
    PyObject *out = NULL;
    Buf pos = {0}, counts = {0}, totals = {0};
    if (lo_view.len != hi_view.len) {
        PyErr_SetString(PyExc_ValueError, "lo and hi differ in length");
        PyBuffer_Release(&view);
        PyBuffer_Release(&lo_view);
        PyBuffer_Release(&hi_view);
        return NULL;
    }
    int failed = 0;
    PyThreadState *unlocked = PyEval_SaveThread();
    for (Py_ssize_t r = 0; !failed && r < rows; r++) {
        Py_ssize_t low = lo[r] > 0 ? lo[r] : 0, high = hi[r] < view.len ? hi[r] : view.len;
        Py_ssize_t floor = low > high - lookback ? low : high - lookback;
        long long found = -1;
        double count = 0, total = 0;
        if (floor < 0) floor = 0;
        for (Py_ssize_t q = high - 1; q >= floor && q >= low; q--) {
            if (s[q] != '<') continue;
            Py_ssize_t st = search_bar(s, q - 40 > low ? q - 40 : low, q + 1, &count, &total);
            if (st >= 0) { found = st; break; }
        }
        if (buf_put(&pos, &found, sizeof found) < 0 || buf_put(&counts, &count, sizeof count) < 0 ||
            buf_put(&totals, &total, sizeof total) < 0) failed = 1;
    }
    PyEval_RestoreThread(unlocked);
    if (failed) PyErr_NoMemory();
    if (!failed) out = Py_BuildValue("(NNN)", buf_bytes(&pos), buf_bytes(&counts), buf_bytes(&totals));
    else { PyMem_RawFree(pos.data); PyMem_RawFree(counts.data); PyMem_RawFree(totals.data); }
    PyBuffer_Release(&view);
    PyBuffer_Release(&lo_view);
    PyBuffer_Release(&hi_view);
    return out;
}

/* ---- forward fill (logsleuth/series.py) ---------------------------------------------- */

/* ffill(float64 buffer, carry): in place, each NaN takes the last number before it, and
 * leading NaNs take carry. */
static PyObject *ffill(PyObject *self, PyObject *args) {
    Py_buffer view;
    double carry;
    if (!PyArg_ParseTuple(args, "w*d", &view, &carry)) return NULL;
    double *v = view.buf, last = carry;
    Py_ssize_t n = view.len / (Py_ssize_t)sizeof(double);
    Py_BEGIN_ALLOW_THREADS
    for (Py_ssize_t i = 0; i < n; i++) {
        if (isnan(v[i])) v[i] = last;
        else last = v[i];
    }
    Py_END_ALLOW_THREADS
    PyBuffer_Release(&view);
    Py_RETURN_NONE;
}

/* ---- rows as text: CSV and JSON lines (logsleuth/output.py) -------------------------
 *
 * For CSV, what pyarrow.csv.write_csv writes for the series' columns, 2.5 to 5 times
 * faster: integers in decimal, nulls as empty cells, doubles as the shortest text that
 * reads back as the same double, in decimal notation for decimal exponents -6..9
 * (0.00001, 1234567) and as 1.5e+10 / 1e-7 otherwise, and nan, inf, -inf.
 * tests/test_native.py checks the output against pyarrow's on every golden and on random
 * doubles. JSON lines use the same cells between other separators, with null and quoted
 * "nan", "inf", "-inf" (strict JSON has no such numbers).
 */

/* exact in a long double with a 64-bit mantissa (up to 1e27) */
static const long double POW10L[] = {1e0L, 1e1L, 1e2L, 1e3L, 1e4L, 1e5L, 1e6L, 1e7L, 1e8L, 1e9L, 1e10L,
                                     1e11L, 1e12L, 1e13L, 1e14L, 1e15L, 1e16L, 1e17L, 1e18L, 1e19L, 1e20L,
                                     1e21L, 1e22L, 1e23L, 1e24L};

static const char PAIRS[] =
    "00010203040506070809101112131415161718192021222324252627282930313233343536373839"
    "40414243444546474849505152535455565758596061626364656667686970717273747576777879"
    "8081828384858687888990919293949596979899";

/* Decimal digits of n into out (no terminator); returns their count. */
static int put_u64(char *out, unsigned long long n) {
    char tmp[24];
    int at = 24;
    while (n >= 100) {
        unsigned pair = (unsigned)(n % 100) * 2;
        n /= 100;
        tmp[--at] = PAIRS[pair + 1];
        tmp[--at] = PAIRS[pair];
    }
    if (n >= 10) {
        tmp[--at] = PAIRS[n * 2 + 1];
        tmp[--at] = PAIRS[n * 2];
    } else {
        tmp[--at] = (char)('0' + n);
    }
    memcpy(out, tmp + at, 24 - at);
    return 24 - at;
}

/* The nearest decimal of p significant digits to a (E: a's decimal exponent; half: half
 * the gap between a and its neighbouring doubles), as an integer r < 10^p, in long
 * double: for a in [1e-7, 1e15) and p <= 17 the integers and the limit are exact, and
 * a*10^n is one rounding off (at most x * 2^-64). *reads_back says whether r*10^(E+1-p)
 * lies within half a gap of a. Returns 0, or -1 when a comparison is too close to call. */
static int nearest_decimal(double a, double half, int E, int p, unsigned long long *r_out, int *reads_back) {
    int n = p - 1 - E;
    long double x = (long double)a * POW10L[n], margin = x * 2.168404344971008868e-19L; /* 2^-62 */
    unsigned long long r = (unsigned long long)(long long)(x + 0.5L);  /* < 1e17 */
    long double d = fabsl((long double)r - x), limit = (long double)half * POW10L[n];
    if (fabsl(d - 0.5L) < margin || fabsl(d - limit) < margin || (long double)r >= POW10L[p]) return -1;
    *r_out = r;
    *reads_back = d < limit;
    return 0;
}

/* Shortest round-trip digits of a finite a > 0, and the decimal point position: a equals
 * 0.DIGITS x 10^point. Returns the digit count, or -1 on failure.
 *
 * 1. Few decimals (most logged values): the fewest decimals k <= 8 for which the nearest
 *    integer r to a*10^k (below 1e15) satisfies r / 10^k == a exactly (the division rounds
 *    correctly, so the decimal r*10^-k reads back as a; such candidates lie more than
 *    four ulps apart, so it is the only one, and the shortest).
 * 2. For a in [1e-7, 1e15), not a power of two (whose gaps to the neighbouring doubles
 *    differ), in long double: the nearest 15-digit decimal, if it reads back, is the
 *    shortest padded with zeros (at most one 15-digit decimal reads back); else the nearest
 *    16-digit one if it reads back, else the nearest 17-digit one -- the closest of the
 *    shortest, which is what dtoa (and pyarrow) choose.
 * 3. Otherwise, or where a comparison is too close to call, CPython's repr (dtoa). */
static int shortest(double a, char *digits, int *point) {
    static const double scale[] = {1e0, 1e1, 1e2, 1e3, 1e4, 1e5, 1e6, 1e7, 1e8};
    for (int k = 0; k <= 8; k++) {
        double x = a * scale[k];
        if (x >= 1e15) break;
        double r = nearbyint(x);
        /* cheap test first: x is within a few ulps of an integer only if a has <= k decimals */
        if (r > 0 && fabs(x - r) <= x * 1e-15 && r / scale[k] == a) {
            int len = put_u64(digits, (unsigned long long)r);
            *point = len - k;
            while (len > 1 && digits[len - 1] == '0') len--;  /* only when k == 0 */
            return len;
        }
    }
#if LDBL_MANT_DIG >= 64
    unsigned long long bits;
    memcpy(&bits, &a, sizeof bits);
    if (a >= 1e-7 && a < 1e15 && (bits & 0xfffffffffffffULL)) {
        int e2 = (int)((bits >> 52) & 0x7ff) - 1023;  /* a in [2^e2, 2^(e2+1)) */
        double half = ldexp(1.0, e2 - 53);
        int E = (int)floor(e2 * 0.30102999566398120);  /* floor(log10(a)), or one less */
        if ((long double)a * POW10L[14 - E] >= 1e15L) E++;
        for (int p = 15; p <= 17 && E >= -7 && E <= 14; p++) {
            unsigned long long r;
            int reads_back;
            if (nearest_decimal(a, half, E, p, &r, &reads_back) < 0) break;
            if (reads_back) {
                int len = put_u64(digits, r);
                *point = E + 1;
                while (len > 1 && digits[len - 1] == '0') len--;
                return len;
            }
        }
    }
#endif
    PyGILState_STATE gil = PyGILState_Ensure();  /* callers run without the GIL */
    char *text = PyOS_double_to_string(a, 'r', 0, 0, NULL);
    if (!text) PyErr_Clear();
    PyGILState_Release(gil);
    if (!text) return -1;
    int len = 0, intpart = -1, exp10 = 0, lead = 0;
    for (const char *c = text; *c; c++) {
        if (*c == '.') intpart = len;
        else if (*c == 'e' || *c == 'E') { exp10 = atoi(c + 1); break; }
        else if (*c >= '0' && *c <= '9') {
            if (len == 0 && *c == '0') { lead++; continue; }
            digits[len++] = *c;
        }
    }
    gil = PyGILState_Ensure();
    PyMem_Free(text);
    PyGILState_Release(gil);
    if (intpart < 0) intpart = len;  /* no '.': every digit is in the integer part */
    /* "0.000123": the zero before the '.' and those after it are leading zeros */
    *point = (intpart == 0 ? 1 - lead : intpart) + exp10;
    while (len > 1 && digits[len - 1] == '0') len--;
    return len;
}

static char *put_double(char *p, double v, int quote_nonfinite) {
    if (!isfinite(v)) {
        const char *text = isnan(v) ? "nan" : v > 0 ? "inf" : "-inf";
        size_t len = strlen(text);
        if (quote_nonfinite) *p++ = '"';
        memcpy(p, text, len);
        p += len;
        if (quote_nonfinite) *p++ = '"';
        return p;
    }
    if (v < 0 || (v == 0 && signbit(v))) *p++ = '-';
    double a = fabs(v);
    if (a == 0) { *p++ = '0'; return p; }
    char digits[40];
    int point, len = shortest(a, digits, &point);
    if (len < 0) return p + snprintf(p, 32, "%.17g", a);  /* out of memory in dtoa: round-trips, if longer */
    int exponent = point - 1;
    if (exponent < -6 || exponent >= 10) {
        *p++ = digits[0];
        if (len > 1) { *p++ = '.'; memcpy(p, digits + 1, len - 1); p += len - 1; }
        *p++ = 'e';
        *p++ = exponent < 0 ? '-' : '+';
        return p + put_u64(p, (unsigned long long)(exponent < 0 ? -exponent : exponent));
    }
    if (point <= 0) {
        *p++ = '0';
        *p++ = '.';
        memset(p, '0', -point);
        p += -point;
        memcpy(p, digits, len);
        return p + len;
    }
    if (point >= len) {
        memcpy(p, digits, len);
        memset(p + len, '0', point - len);
        return p + point;
    }
    memcpy(p, digits, point);
    p[point] = '.';
    memcpy(p + point + 1, digits + point, len - point);
    return p + len + 1;
}

/* One column of an Arrow table as handed over by output.py: kind 'i' int64, 'f' float64,
 * 'd' dictionary (int32 indices), 'e' dictionary (int8 indices); validity bitmap or None;
 * data buffer; offset into both; the dictionary's strings (copied out as pointers and
 * lengths, so that rows are written without the GIL). */
typedef struct {
    int kind;
    Py_buffer validity, data;
    int has_validity;
    Py_ssize_t offset;
    PyObject *words;  /* list of bytes, for dictionaries */
    const char **word;
    Py_ssize_t *word_len, nwords, longest;
} Column;

static void column_release(Column *c) {
    if (c->has_validity) PyBuffer_Release(&c->validity);
    if (c->data.obj) PyBuffer_Release(&c->data);
    PyMem_RawFree(c->word);
    PyMem_RawFree(c->word_len);
}

static int column_from(PyObject *spec, Column *c, Py_ssize_t rows) {
    PyObject *validity, *data;
    const char *kind;
    memset(c, 0, sizeof *c);
    if (!PyArg_ParseTuple(spec, "sOOnO", &kind, &validity, &data, &c->offset, &c->words)) return -1;
    c->kind = kind[0];
    int width = c->kind == 'd' ? 4 : c->kind == 'e' ? 1 : 8;
    if (PyObject_GetBuffer(data, &c->data, PyBUF_SIMPLE) < 0) return -1;
    if (validity != Py_None) {
        if (PyObject_GetBuffer(validity, &c->validity, PyBUF_SIMPLE) < 0) return -1;
        c->has_validity = 1;
        if (c->validity.len * 8 < c->offset + rows) goto short_buffer;
    }
    if (c->data.len < (c->offset + rows) * width) goto short_buffer;
    if (c->kind == 'd' || c->kind == 'e') {
        if (!PyList_Check(c->words)) {
            PyErr_SetString(PyExc_TypeError, "a dictionary column needs its strings as a list of bytes");
            return -1;
        }
        c->nwords = PyList_GET_SIZE(c->words);
        c->word = PyMem_RawCalloc(c->nwords + 1, sizeof *c->word);
        c->word_len = PyMem_RawCalloc(c->nwords + 1, sizeof *c->word_len);
        if (!c->word || !c->word_len) { PyErr_NoMemory(); return -1; }
        for (Py_ssize_t w = 0; w < c->nwords; w++) {
            PyObject *item = PyList_GET_ITEM(c->words, w);
            if (!PyBytes_Check(item)) {
                PyErr_SetString(PyExc_TypeError, "dictionary strings must be bytes");
                return -1;
            }
            c->word[w] = PyBytes_AS_STRING(item);
            c->word_len[w] = PyBytes_GET_SIZE(item);
            if (c->word_len[w] > c->longest) c->longest = c->word_len[w];
        }
    }
    return 0;
short_buffer:
    PyErr_SetString(PyExc_ValueError, "column buffer shorter than the row count");
    return -1;
}

typedef struct {
    const char *null;  /* the text of a null cell */
    Py_ssize_t null_len;
    int quote_nonfinite;
} CellStyle;

/* The cell of row i of column c at p; returns the new end, or NULL for a dictionary index
 * out of range. */
static char *put_cell(char *p, Column *c, Py_ssize_t i, const CellStyle *style) {
    Py_ssize_t at = c->offset + i;
    if (c->has_validity && !((((const unsigned char *)c->validity.buf)[at >> 3] >> (at & 7)) & 1)) {
        memcpy(p, style->null, style->null_len);
        return p + style->null_len;
    }
    if (c->kind == 'f') return put_double(p, ((const double *)c->data.buf)[at], style->quote_nonfinite);
    if (c->kind == 'i') {
        long long v = ((const long long *)c->data.buf)[at];
        if (v < 0) *p++ = '-';
        return p + put_u64(p, v < 0 ? 0ULL - (unsigned long long)v : (unsigned long long)v);
    }
    Py_ssize_t code = c->kind == 'd' ? ((const int *)c->data.buf)[at] : ((const signed char *)c->data.buf)[at];
    if (code < 0 || code >= c->nwords) return NULL;
    memcpy(p, c->word[code], c->word_len[code]);
    return p + c->word_len[code];
}

/* format_rows(columns, rows, prefixes, end, null, quote_nonfinite) -> bytes: for each
 * row, each column's prefix then its cell, then end. CSV: prefixes "", ",", ...; end
 * ",<source>\n" or "\n"; null "". JSON lines: prefixes '{"step":', ',"metric":', ...;
 * end "}\n"; null "null"; non-finite values quoted. */
static PyObject *format_rows(PyObject *self, PyObject *args) {
    PyObject *specs, *prefixes;
    Py_ssize_t rows, end_len;
    const char *end;
    CellStyle style;
    if (!PyArg_ParseTuple(args, "O!nO!y#y#p", &PyList_Type, &specs, &rows, &PyList_Type, &prefixes, &end, &end_len,
                          &style.null, &style.null_len, &style.quote_nonfinite)) return NULL;
    Py_ssize_t ncols = PyList_GET_SIZE(specs);
    if (PyList_GET_SIZE(prefixes) != ncols) {
        PyErr_SetString(PyExc_ValueError, "one prefix per column");
        return NULL;
    }
    Column *cols = PyMem_RawCalloc(ncols ? ncols : 1, sizeof(Column));
    const char **prefix = PyMem_RawCalloc(ncols ? ncols : 1, sizeof *prefix);
    Py_ssize_t *prefix_len = PyMem_RawCalloc(ncols ? ncols : 1, sizeof *prefix_len);
    PyObject *out = NULL;
    Py_ssize_t ready = 0, widest = end_len + 1;
    if (!cols || !prefix || !prefix_len) { PyErr_NoMemory(); goto done; }
    for (; ready < ncols; ready++) {
        PyObject *text = PyList_GET_ITEM(prefixes, ready);
        if (!PyBytes_Check(text)) { PyErr_SetString(PyExc_TypeError, "prefixes must be bytes"); goto done; }
        prefix[ready] = PyBytes_AS_STRING(text);
        prefix_len[ready] = PyBytes_GET_SIZE(text);
        if (column_from(PyList_GET_ITEM(specs, ready), &cols[ready], rows) < 0) { ready++; goto done; }
        Py_ssize_t cell = cols[ready].longest > 34 ? cols[ready].longest : 34;
        widest += prefix_len[ready] + (cell > style.null_len ? cell : style.null_len);
    }
    Buf text = {0};
    int failed = 0;  /* 1: out of memory, 2: a dictionary index out of range */
    PyThreadState *unlocked = PyEval_SaveThread();
    for (Py_ssize_t i = 0; i < rows && !failed; i++) {
        if (buf_reserve(&text, widest) < 0) { failed = 1; break; }
        char *line = text.data + text.len, *p = line;
        for (Py_ssize_t k = 0; k < ncols && p; k++) {
            memcpy(p, prefix[k], prefix_len[k]);
            p = put_cell(p + prefix_len[k], &cols[k], i, &style);
        }
        if (!p) { failed = 2; break; }
        memcpy(p, end, end_len);
        text.len += p + end_len - line;
    }
    PyEval_RestoreThread(unlocked);
    if (failed == 1) PyErr_NoMemory();
    if (failed == 2) PyErr_SetString(PyExc_IndexError, "dictionary index out of range");
    if (failed) buf_free(&text);
    else out = buf_bytes(&text);
done:
    for (Py_ssize_t k = 0; k < ready; k++) column_release(&cols[k]);
    PyMem_RawFree(cols);
    PyMem_RawFree(prefix);
    PyMem_RawFree(prefix_len);
    return out;
}

/* ---- metric pairs (parsers/_pairs.py split_columns) --------------------------------
 *
 * What re.split does with parsers/_base.py's pair patterns, KEY_BOUNDED and NUM spelled
 * out by hand (parsers/_grammar.py):
 *   mode 0  (KEY):\s*(NUM)END               KV_STYLES["colon"]
 *   mode 1  (KEY)\s*=\s*(NUM)END            KV_STYLES["equals"]
 *   mode 2  (KEY)['"]?(?:\s*[:=]\s*|\s+)['"]?\[?\s*(?:tensor\()?(NUM)(?:\s*[/]\s*(\d+))?['"]?END
 *                                           KV_ANY
 *   mode 3  (?<![\w@])([A-Za-z][\w@]{0,127}+):?\s+(NUM)\s+\(\s*(NUM)\s*\)
 *                                           parsers/pytorch.py _VALUE_AVG
 *   mode 4  LR:\s+(NUM)                     parsers/pytorch.py _LR
 *   mode 5  (?<!\d)(\d+)/(\d+)(?= \[[=>.]*\]| - | (?:\xe2\x94\x81)+ )
 *                                           parsers/keras.py _COUNT
 * KEY = [A-Za-z_][\w.@/\-]{0,127}+, END = (?![a-z0-9_/.]|:[^\s]).
 *
 * Why a hand-written matcher gives the regex's matches:
 * - the key is possessive, so from a start it ends where the run of key characters ends
 *   (or 128 bytes on); every pattern needs a non-key character right after the key, so of
 *   a run only the first start within 128 bytes of its end can match, and if it does not,
 *   no start in the run does (they all see the same tail);
 * - before NUM everything is deterministic: what a shorter whitespace, quote, bracket or
 *   "tensor(" would leave in front of NUM cannot start a number;
 * - NUM backtracks only through its optional parts; num_ends lists the ends the regex
 *   tries, in its order, and the first one after which the rest of the pattern (the
 *   total, the quote, END) holds is the match.
 */

static int is_space(char c) { return c == ' ' || (c >= 9 && c <= 13); }
static int is_alpha(char c) { return (c >= 'a' && c <= 'z') || (c >= 'A' && c <= 'Z'); }
static int is_pair_key(char c) { return is_word(c) || c == '.' || c == '@' || c == '/' || c == '-'; }

static Py_ssize_t skip_spaces(const char *s, Py_ssize_t i, Py_ssize_t n) {
    while (i < n && is_space(s[i])) i++;
    return i;
}

/* (?![a-z0-9_/.]|:[^\s]) at i */
static int pair_end_ok(const char *s, Py_ssize_t i, Py_ssize_t n) {
    if (i >= n) return 1;
    char c = s[i];
    if ((c >= 'a' && c <= 'z') || is_digit(c) || c == '_' || c == '/' || c == '.') return 0;
    return !(c == ':' && i + 1 < n && !is_space(s[i + 1]));
}

static int not_letter_at(const char *s, Py_ssize_t i, Py_ssize_t n) { return i >= n || !is_alpha(s[i]); }

/* The ends of NUM at i the regex tries, in its order, into ends[4]; their count (0: no
 * number there). The (?![A-Za-z]) of the nan and inf branches is applied here. */
static int num_ends(const char *s, Py_ssize_t i, Py_ssize_t n, Py_ssize_t *ends) {
    int k = 0;
    if (i < n && (s[i] == '-' || s[i] == '+')) i++;
    if (i >= n) return 0;
    char c = s[i];
    if (is_digit(c) || c == '.') {  /* (?:\d++\.?\d*+|\.\d++)(?:[eE][-+]?\d++)?(?:#(?:QNAN|SNAN|IND|INF)\d*+)? */
        Py_ssize_t j, dot = -1, e = -1, h = -1;
        if (is_digit(c)) {
            j = digits_end(s, i, n);
            if (j < n && s[j] == '.') { dot = j; j = digits_end(s, j + 1, n); }
        } else {
            j = digits_end(s, i + 1, n);
            if (j == i + 1) return 0;
        }
        Py_ssize_t m = j;
        if (j < n && (s[j] == 'e' || s[j] == 'E')) {
            Py_ssize_t q = j + 1;
            if (q < n && (s[q] == '-' || s[q] == '+')) q++;
            Py_ssize_t r = digits_end(s, q, n);
            if (r > q) e = j = r;
        }
        if (j < n && s[j] == '#') {
            const char *t = s + j + 1;
            Py_ssize_t left = n - j - 1, len = 0;
            if (left >= 4 && (memcmp(t, "QNAN", 4) == 0 || memcmp(t, "SNAN", 4) == 0)) len = 4;
            else if (left >= 3 && (memcmp(t, "IND", 3) == 0 || memcmp(t, "INF", 3) == 0)) len = 3;
            if (len) h = digits_end(s, j + 1 + len, n);
        }
        if (h >= 0) ends[k++] = h;
        if (e >= 0) ends[k++] = e;
        ends[k++] = m;
        if (dot >= 0) ends[k++] = dot;  /* \.? given back: END then sees the '.', and fails */
        return k;
    }
    if (i + 3 > n) return 0;
    if ((((c == 'n' || c == 'N') && s[i + 1] == 'a' && (s[i + 2] == 'n' || s[i + 2] == 'N')) ||
         memcmp(s + i, "NAN", 3) == 0)) {  /* (?:[nN]a[nN]|NAN)(?:\((?:ind|snan|IND)\)|\.0\b|x+\b)? */
        Py_ssize_t b = i + 3, x = -1;
        if (b < n && s[b] == '(') {
            if (b + 5 <= n && (memcmp(s + b, "(ind)", 5) == 0 || memcmp(s + b, "(IND)", 5) == 0)) x = b + 5;
            else if (b + 6 <= n && memcmp(s + b, "(snan)", 6) == 0) x = b + 6;
        } else if (b + 1 < n && s[b] == '.' && s[b + 1] == '0') {
            if (!(b + 2 < n && is_word(s[b + 2]))) x = b + 2;
        } else if (b < n && s[b] == 'x') {
            Py_ssize_t q = b;
            while (q < n && s[q] == 'x') q++;
            if (!(q < n && is_word(s[q]))) x = q;
        }
        if (x >= 0 && not_letter_at(s, x, n)) ends[k++] = x;
        if (not_letter_at(s, b, n)) ends[k++] = b;
        return k;
    }
    Py_ssize_t longer = -1;
    if ((c == 'i' || c == 'I') && s[i + 1] == 'n' && s[i + 2] == 'f') {  /* [iI]nf(?:inity)? */
        if (i + 8 <= n && memcmp(s + i + 3, "inity", 5) == 0) longer = i + 8;
    } else if (memcmp(s + i, "INF", 3) == 0) {  /* INF(?:INITY)? */
        if (i + 8 <= n && memcmp(s + i + 3, "INITY", 5) == 0) longer = i + 8;
    } else {
        return 0;
    }
    if (longer >= 0 && not_letter_at(s, longer, n)) ends[k++] = longer;
    if (not_letter_at(s, i + 3, n)) ends[k++] = i + 3;
    return k;
}

static int is_quote(char c) { return c == '\'' || c == '"'; }

/* The rest of the pattern after a key ending at r: the value's span, the total's (-1 when
 * none) and the match's end. Returns 0 when there is no match. */
static int pair_tail(int mode, const char *s, Py_ssize_t r, Py_ssize_t n, Py_ssize_t *out) {
    Py_ssize_t p = r, ends[4];
    if (mode == 0) {
        if (!(p < n && s[p] == ':')) return 0;
        p = skip_spaces(s, p + 1, n);
    } else if (mode == 1) {
        p = skip_spaces(s, p, n);
        if (!(p < n && s[p] == '=')) return 0;
        p = skip_spaces(s, p + 1, n);
    } else {
        if (p < n && is_quote(s[p])) p++;
        Py_ssize_t q = skip_spaces(s, p, n);
        if (q < n && (s[q] == ':' || s[q] == '=')) p = skip_spaces(s, q + 1, n);
        else if (q > p) p = q;
        else return 0;
        if (p < n && is_quote(s[p])) p++;
        if (p < n && s[p] == '[') p++;
        p = skip_spaces(s, p, n);
        if (p + 7 <= n && memcmp(s + p, "tensor(", 7) == 0) p += 7;
    }
    int count = num_ends(s, p, n, ends);
    for (int k = 0; k < count; k++) {
        Py_ssize_t v = ends[k];
        out[0] = p, out[1] = v, out[2] = out[3] = -1;
        if (mode < 2) {
            if (pair_end_ok(s, v, n)) { out[4] = v; return 1; }
            continue;
        }
        Py_ssize_t q = skip_spaces(s, v, n), tb = -1;  /* (?:\s*[/]\s*(\d+))? */
        if (q < n && s[q] == '/') {
            Py_ssize_t ta = skip_spaces(s, q + 1, n);
            tb = digits_end(s, ta, n);
            if (tb > ta) out[2] = ta, out[3] = tb;
            else tb = -1;
        }
        for (int with_total = tb >= 0; with_total >= 0; with_total--) {
            Py_ssize_t t = with_total ? tb : v;
            if (t < n && is_quote(s[t]) && pair_end_ok(s, t + 1, n)) { out[4] = t + 1; return 1; }
            if (pair_end_ok(s, t, n)) { out[4] = t; return 1; }
            out[2] = out[3] = -1;
        }
    }
    return 0;
}

static int is_avg_key(char c) { return is_word(c) || c == '@'; }

/* Mode 3 after a key ending at r: value span, average span, match end (out[0..4]). */
static int value_avg_tail(const char *s, Py_ssize_t r, Py_ssize_t n, Py_ssize_t *out) {
    Py_ssize_t p = r, ends[4], avg_ends[4];
    if (p < n && s[p] == ':') p++;
    Py_ssize_t q = skip_spaces(s, p, n);
    if (q == p) return 0;
    int count = num_ends(s, q, n, ends);
    for (int k = 0; k < count; k++) {
        Py_ssize_t v = ends[k], a = skip_spaces(s, v, n);
        if (a == v || !(a < n && s[a] == '(')) continue;
        a = skip_spaces(s, a + 1, n);
        int avg_count = num_ends(s, a, n, avg_ends);
        for (int j = 0; j < avg_count; j++) {
            Py_ssize_t w = avg_ends[j], e = skip_spaces(s, w, n);
            if (e < n && s[e] == ')') {
                out[0] = q, out[1] = v, out[2] = a, out[3] = w, out[4] = e + 1;
                return 1;
            }
        }
    }
    return 0;
}

/* Mode 3's matches from at: the next one's start, record (key, value, average spans) and end. */
static int next_value_avg(const char *s, Py_ssize_t *at, Py_ssize_t n, Py_ssize_t *start, Py_ssize_t *rec) {
    Py_ssize_t i = *at, tail[5];
    while (i < n) {
        if (!is_avg_key(s[i])) { i++; continue; }
        Py_ssize_t p = i, r = p + 1;
        while (r < n && is_avg_key(s[r])) r++;
        i = r;  /* no later start in the run: (?<![\w@]) */
        if (!is_alpha(s[p]) || (p > 0 && is_avg_key(s[p - 1])) || r - p > 128) continue;
        if (!value_avg_tail(s, r, n, tail)) continue;
        *start = p;
        rec[0] = p, rec[1] = r, rec[2] = tail[0], rec[3] = tail[1], rec[4] = tail[2], rec[5] = tail[3];
        *at = tail[4];
        return 1;
    }
    *at = n;
    return 0;
}

/* Mode 4's matches from at: the next one's start, value span and end. */
static int next_lr(const char *s, Py_ssize_t *at, Py_ssize_t n, Py_ssize_t *start, Py_ssize_t *rec) {
    Py_ssize_t ends[4];
    while ((*at = find(s, n, *at, "LR:", 3)) >= 0) {
        Py_ssize_t p = *at + 3, q = skip_spaces(s, p, n);
        *at += 1;
        if (q == p || num_ends(s, q, n, ends) == 0) continue;
        *start = p - 3;
        rec[0] = q, rec[1] = ends[0], rec[2] = rec[3] = rec[4] = rec[5] = -1;
        *at = ends[0];
        return 1;
    }
    *at = n;
    return 0;
}

/* (?= \[[=>.]*\]| - | (?:\xe2\x94\x81)+ ) at b: what follows a Keras bar's count */
static int keras_bar_after(const char *s, Py_ssize_t b, Py_ssize_t n) {
    if (!(b < n && s[b] == ' ')) return 0;
    Py_ssize_t k = b + 1;
    if (k < n && s[k] == '[') {
        for (k++; k < n && (s[k] == '=' || s[k] == '>' || s[k] == '.'); k++) {}
        return k < n && s[k] == ']';
    }
    if (k + 1 < n && s[k] == '-' && s[k + 1] == ' ') return 1;
    Py_ssize_t q = k;
    while (q + 3 <= n && memcmp(s + q, "\xe2\x94\x81", 3) == 0) q += 3;
    return q > k && q < n && s[q] == ' ';
}

/* Mode 5's matches from at: the next one's start, count and total spans, and end. Every
 * match has a '/' between its digit runs (no match starts in a digit run: (?<!\d)). */
static int next_count(const char *s, Py_ssize_t *at, Py_ssize_t n, Py_ssize_t *start, Py_ssize_t *rec) {
    Py_ssize_t i = *at;
    while (i < n) {
        const char *slash = memchr(s + i, '/', n - i);
        if (!slash) break;
        Py_ssize_t a = slash - s, p = a, b = digits_end(s, a + 1, n);
        while (p > i && is_digit(s[p - 1])) p--;
        i = a + 1;
        if (p == a || b == a + 1 || (p > 0 && is_digit(s[p - 1])) || !keras_bar_after(s, b, n)) continue;
        *start = p;
        rec[0] = p, rec[1] = a, rec[2] = a + 1, rec[3] = b, rec[4] = rec[5] = -1;
        *at = b;
        return 1;
    }
    *at = n;
    return 0;
}

/* A small cache of key objects: keys repeat, and one object per distinct key keeps its
 * hash computed once for the dict and set look-ups that follow. */
#define KEY_CACHE 32
typedef struct {
    PyObject *item[KEY_CACHE];
    int count, next;
} KeyCache;

static PyObject *cached_key(KeyCache *c, const char *a, Py_ssize_t len) {
    for (int i = 0; i < c->count; i++) {
        PyObject *k = c->item[i];
        if (PyBytes_GET_SIZE(k) == len && memcmp(PyBytes_AS_STRING(k), a, len) == 0) { Py_INCREF(k); return k; }
    }
    PyObject *k = PyBytes_FromStringAndSize(a, len);
    if (!k) return NULL;
    int slot = c->count < KEY_CACHE ? c->count++ : (c->next++ % KEY_CACHE);
    Py_XDECREF(c->item[slot]);
    c->item[slot] = k;
    Py_INCREF(k);
    return k;
}

static PyObject *span_list(const char *s, const Py_ssize_t *rec, Py_ssize_t rows, int a, KeyCache *cache) {
    PyObject *out = PyList_New(rows);
    for (Py_ssize_t i = 0; out && i < rows; i++) {
        const Py_ssize_t *row = rec + 6 * i;
        PyObject *item;
        if (row[a] < 0) { item = Py_None; Py_INCREF(item); }
        else item = cache ? cached_key(cache, s + row[a], row[a + 1] - row[a])
                          : PyBytes_FromStringAndSize(s + row[a], row[a + 1] - row[a]);
        if (!item) { Py_CLEAR(out); break; }
        PyList_SET_ITEM(out, i, item);
    }
    return out;
}

/* pair_split(text, mode) -> (match starts int64, one list of bytes (or None) per group): what
 * re.split with the pattern of ``mode`` (see above) gives, as split_columns returns it. */
static PyObject *pair_split(PyObject *self, PyObject *args) {
    Py_buffer view;
    int mode;
    if (!PyArg_ParseTuple(args, "y*i", &view, &mode)) return NULL;
    if (mode < 0 || mode > 5) {
        PyBuffer_Release(&view);
        PyErr_SetString(PyExc_ValueError, "unknown pair pattern");
        return NULL;
    }
    const char *s = view.buf;
    Py_ssize_t n = view.len, at = 0, rows = 0;
    Buf pos = {0}, spans = {0};
    int failed = 0;
    PyThreadState *unlocked = PyEval_SaveThread();
    while (mode >= 3 && at < n) {
        Py_ssize_t start, rec[6];
        if (!(mode == 3 ? next_value_avg(s, &at, n, &start, rec) : mode == 4 ? next_lr(s, &at, n, &start, rec)
                                                                             : next_count(s, &at, n, &start, rec))) break;
        long long p64 = start;
        if (buf_put(&pos, &p64, sizeof p64) < 0 || buf_put(&spans, rec, sizeof rec) < 0) { failed = 1; break; }
        rows++;
    }
    while (mode < 3 && at < n) {
        while (at < n && !(is_alpha(s[at]) || s[at] == '_')) at++;
        if (at >= n) break;
        Py_ssize_t p = at, r = p + 1, tail[5];
        while (r < n && is_pair_key(s[r])) r++;
        if (r - p > 128) {  /* only a start within 128 bytes of the run's end can match */
            p = r - 128;
            while (p < r && !(is_alpha(s[p]) || s[p] == '_')) p++;
            if (p == r) { at = r; continue; }
        }
        if (!pair_tail(mode, s, r, n, tail)) { at = r; continue; }
        long long p64 = p;
        Py_ssize_t rec[6] = {p, r, tail[0], tail[1], tail[2], tail[3]};
        if (buf_put(&pos, &p64, sizeof p64) < 0 || buf_put(&spans, rec, sizeof rec) < 0) { failed = 1; break; }
        rows++;
        at = tail[4];
    }
    PyEval_RestoreThread(unlocked);
    PyObject *out = NULL;
    if (failed) {
        PyErr_NoMemory();
    } else {
        static const int GROUPS[] = {2, 2, 3, 3, 1, 2}, CACHED[] = {0, 0, 0, 0, -1, 1};  /* keys; totals */
        KeyCache cache = {{0}, 0, 0};
        const Py_ssize_t *rec = (const Py_ssize_t *)spans.data;
        PyObject *groups = PyList_New(GROUPS[mode]);
        for (int g = 0; groups && g < GROUPS[mode]; g++) {
            PyObject *column = span_list(s, rec, rows, 2 * g, g == CACHED[mode] ? &cache : NULL);
            if (!column) Py_CLEAR(groups);
            else PyList_SET_ITEM(groups, g, column);
        }
        for (int i = 0; i < cache.count; i++) Py_DECREF(cache.item[i]);
        if (groups) out = Py_BuildValue("(NN)", buf_bytes(&pos), groups);
    }
    buf_free(&pos);
    buf_free(&spans);
    PyBuffer_Release(&view);
    return out;
}

/* float(v) for each item of a list of printed numbers: plainly numeric bytes and floats
 * here, None as NaN when none_nan; the indices of every other item are returned for Python
 * to convert (nan spellings, underscores, spaces, str), so results are float()'s. */
static PyObject *floats_of(PyObject *self, PyObject *args) {
    PyObject *items;
    int none_nan;
    if (!PyArg_ParseTuple(args, "O!p", &PyList_Type, &items, &none_nan)) return NULL;
    Py_ssize_t n = PyList_GET_SIZE(items);
    PyObject *out = PyByteArray_FromStringAndSize(NULL, n * (Py_ssize_t)sizeof(double));
    PyObject *rest = PyList_New(0);
    if (!out || !rest) goto fail;
    double *value = (double *)PyByteArray_AS_STRING(out);
    for (Py_ssize_t i = 0; i < n; i++) {
        PyObject *item = PyList_GET_ITEM(items, i);
        int ok = 0;
        if (PyBytes_Check(item)) {
            value[i] = number(PyBytes_AS_STRING(item), 0, PyBytes_GET_SIZE(item), &ok);
        } else if (PyFloat_CheckExact(item)) {
            value[i] = PyFloat_AS_DOUBLE(item);
            ok = 1;
        } else if (item == Py_None && none_nan) {
            value[i] = Py_NAN;
            ok = 1;
        }
        if (!ok) {
            value[i] = Py_NAN;
            PyObject *index = PyLong_FromSsize_t(i);
            if (!index || PyList_Append(rest, index) < 0) { Py_XDECREF(index); goto fail; }
            Py_DECREF(index);
        }
    }
    return Py_BuildValue("(NN)", out, rest);
fail:
    Py_XDECREF(out);
    Py_XDECREF(rest);
    return NULL;
}

static PyMethodDef methods[] = {
    {"caffe_iteration", caffe_iteration, METH_O, "Caffe `Iteration N ..., loss|lr = X` / `Testing net` lines."},
    {"caffe_output", caffe_output, METH_VARARGS, "Caffe `Train|Test net output #k: name = X` lines."},
    {"hf_dicts", hf_dicts, METH_O, "Hugging Face Trainer `{'loss': X, ...}` dict lines and their items."},
    {"last_bars", last_bars, METH_VARARGS, "The last tqdm bar update before each of many positions."},
    {"ffill", ffill, METH_VARARGS, "Forward-fill NaNs in a float64 buffer, in place."},
    {"pair_split", pair_split, METH_VARARGS, "Metric pairs of a text as re.split with a pair pattern gives them."},
    {"floats_of", floats_of, METH_VARARGS, "float() of many printed numbers, the hard ones left to Python."},
    {"format_rows", format_rows, METH_VARARGS, "The series' rows as CSV (as pyarrow.csv writes them) or JSON lines."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_native",
                                    "Compiled scanners, forward fill and CSV rows (see parsers/_columns.py).", -1, methods};

/* ABI: the interface version parsers/_columns.py checks (NATIVE_ABI), so that a module
 * built from an older version of this file is not used. */
PyMODINIT_FUNC PyInit__native(void) {
    PyObject *m = PyModule_Create(&module);
    if (m && PyModule_AddIntConstant(m, "ABI", 5) < 0) Py_CLEAR(m);
    return m;
}
