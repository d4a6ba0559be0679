/* A prototype of a C boundary scanner for guacbridge.protocol.Framer, to measure what the
 * relay would gain (bench/cscan/README). It walks the length prefixes of a str from the
 * Framer's state exactly as Framer.feed does, on the happy path only: at anything that is
 * not a well-formed element within the limits it stops and says so, and the caller runs the
 * pure-Python scanner on the same input, which produces the error. */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *
scan(PyObject *self, PyObject *args)
{
    PyObject *buf;
    Py_ssize_t pos, start, count, max_length, max_elements;
    if (!PyArg_ParseTuple(args, "Unnnnn", &buf, &pos, &start, &count, &max_length,
                          &max_elements))
        return NULL;
    const Py_ssize_t end = PyUnicode_GET_LENGTH(buf);
    const int kind = PyUnicode_KIND(buf);
    const void *data = PyUnicode_DATA(buf);
    Py_ssize_t done = 0;
    int ok = 1;
    for (;;) {
        Py_ssize_t i = pos, n = 0;
        int dot = 0;
        while (i < end && i - pos <= 5) {          /* up to 5 digits, then '.' */
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (c == '.') { dot = 1; break; }
            if (c < '0' || c > '9') { ok = 0; goto out; }
            n = n * 10 + (Py_ssize_t)(c - '0');
            i++;
        }
        if (!dot) {
            if (end - pos > 5) ok = 0;            /* no '.' where one must be */
            goto out;                              /* else: the prefix is still arriving */
        }
        if (i == pos) { ok = 0; goto out; }
        Py_ssize_t term = i + 1 + n;
        if (term - start >= max_length) { ok = 0; goto out; }
        if (term >= end) goto out;
        if (++count > max_elements) { ok = 0; goto out; }
        Py_UCS4 sep = PyUnicode_READ(kind, data, term);
        pos = term + 1;
        if (sep == ';') { done = start = pos; count = 0; }
        else if (sep != ',') { ok = 0; goto out; }
    }
out:
    if (ok && end - start >= max_length) ok = 0;
    return Py_BuildValue("nnnni", done, pos, start, count, ok);
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "scan(buf, pos, start, count, max_length, max_elements) -> "
     "(done, pos, start, count, ok)"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {PyModuleDef_HEAD_INIT, "_guacscan", NULL, -1, methods};

PyMODINIT_FUNC
PyInit__guacscan(void) { return PyModule_Create(&module); }
