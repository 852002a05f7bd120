/* storable.plain() in C: the store's check of every value it is given, at the speed of the walk alone.

   The same rules as storable.py's Python walk (_plain_python), which stays the reference and the fallback
   where this module is not built (setup.py: an optional extension; tests/test_plain_walk.py holds both to
   the same answers): True only
   for exact dicts with exact str keys, lists and tuples at most MAX_DEPTH deep, exact str without a NUL
   or a surrogate code point (text that is not UTF-8), None, bools, exact ints in -2**63..2**63-1 and
   exact finite floats. No Python code runs during the walk (no __eq__, no __hash__, no iteration
   protocol): the values cannot change under it. */

#define PY_SSIZE_T_CLEAN
#include <Python.h>
#include <float.h>
#include <string.h>

#define MAX_DEPTH 31 /* storable.MAX_DEPTH */

/* 1 when the exact str holds no NUL and no surrogate, 0 when it does, -1 on error */
static int text_ok(PyObject *text)
{
#if PY_VERSION_HEX < 0x030C0000 /* (every str is ready from 3.12 on) */
    if (PyUnicode_READY(text) < 0)
        return -1;
#endif
    Py_ssize_t n = PyUnicode_GET_LENGTH(text);
    const void *data = PyUnicode_DATA(text);
    switch (PyUnicode_KIND(text)) {
    case PyUnicode_1BYTE_KIND: /* Latin-1: no surrogate possible */
        return memchr(data, 0, (size_t)n) == NULL;
    case PyUnicode_2BYTE_KIND: {
        const Py_UCS2 *p = data;
        for (Py_ssize_t i = 0; i < n; i++)
            if (p[i] == 0 || (p[i] >= 0xD800 && p[i] <= 0xDFFF))
                return 0;
        return 1;
    }
    default: {
        const Py_UCS4 *p = data;
        for (Py_ssize_t i = 0; i < n; i++)
            if (p[i] == 0 || (p[i] >= 0xD800 && p[i] <= 0xDFFF))
                return 0;
        return 1;
    }
    }
}

static int container_ok(PyObject *value, int depth);

/* an item of a container at depth - 1: 1 plain, 0 not, -1 error */
static int item_ok(PyObject *item, int depth)
{
    if (PyUnicode_CheckExact(item))
        return text_ok(item);
    if (item == Py_None || PyBool_Check(item))
        return 1;
    if (PyLong_CheckExact(item)) {
        int overflow = 0;
        long long v = PyLong_AsLongLongAndOverflow(item, &overflow);
        if (v == -1 && PyErr_Occurred())
            return -1;
        return overflow == 0;
    }
    if (PyFloat_CheckExact(item)) {
        double d = PyFloat_AS_DOUBLE(item);
        return d >= -DBL_MAX && d <= DBL_MAX; /* 0 for NaN too */
    }
    return container_ok(item, depth);
}

static int container_ok(PyObject *value, int depth)
{
    if (PyDict_CheckExact(value)) {
        if (depth >= MAX_DEPTH)
            return 0;
        Py_ssize_t pos = 0;
        PyObject *key, *item;
        while (PyDict_Next(value, &pos, &key, &item)) {
            if (!PyUnicode_CheckExact(key))
                return 0;
            int ok = text_ok(key);
            if (ok <= 0)
                return ok;
            ok = item_ok(item, depth + 1);
            if (ok <= 0)
                return ok;
        }
        return 1;
    }
    if (PyList_CheckExact(value) || PyTuple_CheckExact(value)) {
        if (depth >= MAX_DEPTH)
            return 0;
        PyObject **items = PySequence_Fast_ITEMS(value);
        Py_ssize_t n = PySequence_Fast_GET_SIZE(value);
        for (Py_ssize_t i = 0; i < n; i++) {
            int ok = item_ok(items[i], depth + 1);
            if (ok <= 0)
                return ok;
        }
        return 1;
    }
    return 0;
}

static PyObject *plain(PyObject *self, PyObject *values)
{
    (void)self;
    int ok = container_ok(values, -1); /* each value at depth 0, as storable.plain */
    if (ok < 0)
        return NULL;
    return PyBool_FromLong(ok);
}

static PyMethodDef methods[] = {
    {"plain", plain, METH_VARARGS, "storable.plain(*values), in C."},
    {NULL, NULL, 0, NULL},
};

static struct PyModuleDef module = {
    PyModuleDef_HEAD_INIT, "agno_migrate._plain", NULL, -1, methods, NULL, NULL, NULL, NULL,
};

PyMODINIT_FUNC PyInit__plain(void) { return PyModule_Create(&module); }
