/* guacbridge._framescan: the boundary scan of protocol.Framer.feed, in C.
 *
 * The relay spends most of its time walking length prefixes (protocol.py says why it must).
 * This walks them the same way over the Framer's text and state, for input that is well
 * formed and within the limits. At anything else it stops and answers ok=0, and feed runs
 * its Python loop over the same text from the same state: that loop stays the one
 * definition of what is an error and what it is called. The module is optional; without a
 * compiler guacbridge runs on the Python loop alone.
 */
#define PY_SSIZE_T_CLEAN
#include <Python.h>

static PyObject *
scan(PyObject *self, PyObject *args)
{
    PyObject *text;
    Py_ssize_t pos, start, count, max_length, max_elements, max_digits;
    if (!PyArg_ParseTuple(args, "Unnnnnn", &text, &pos, &start, &count, &max_length,
                          &max_elements, &max_digits))
        return NULL;
    const Py_ssize_t end = PyUnicode_GET_LENGTH(text);
    const int kind = PyUnicode_KIND(text);
    const void *data = PyUnicode_DATA(text);
    Py_ssize_t done = 0;      /* end of the last complete instruction */
    int ok = 1;

    if (pos < 0 || start < 0 || start > pos || pos > end || count < 0)
        return PyErr_Format(PyExc_ValueError, "scan state out of range");
    for (;;) {
        /* A length prefix: 1 to max_digits ASCII digits, then '.'. */
        Py_ssize_t i = pos, length = 0;
        int dot = 0;
        while (i < end && i - pos <= max_digits) {
            Py_UCS4 c = PyUnicode_READ(kind, data, i);
            if (c == '.') {
                dot = 1;
                break;
            }
            if (c < '0' || c > '9' || i - pos == max_digits) {
                ok = 0;
                goto out;
            }
            length = length * 10 + (Py_ssize_t)(c - '0');
            i++;
        }
        if (!dot)
            goto out;                 /* the prefix is still arriving */
        if (i == pos) {
            ok = 0;                   /* '.' with no digits before it */
            goto out;
        }
        Py_ssize_t term = i + 1 + length;     /* where ',' or ';' must be */
        if (term - start >= max_length) {
            ok = 0;
            goto out;
        }
        if (term >= end)
            goto out;                 /* the value is still arriving */
        if (++count > max_elements) {
            ok = 0;
            goto out;
        }
        Py_UCS4 sep = PyUnicode_READ(kind, data, term);
        pos = term + 1;
        if (sep == ';') {
            done = start = pos;
            count = 0;
        }
        else if (sep != ',') {
            ok = 0;
            goto out;
        }
    }
out:
    if (ok && end - start >= max_length)
        ok = 0;
    return Py_BuildValue("nnnni", done, pos, start, count, ok);
}

static PyMethodDef methods[] = {
    {"scan", scan, METH_VARARGS,
     "scan(text, pos, start, count, max_length, max_elements, max_digits)"
     " -> (done, pos, start, count, ok)"},
    {NULL, NULL, 0, NULL}
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "guacbridge._framescan", NULL, -1, methods
};

PyMODINIT_FUNC
PyInit__framescan(void)
{
    return PyModule_Create(&module);
}
