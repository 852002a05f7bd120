"""The one compiled part: storable.plain()'s walk in C (agno_migrate/_plain.c), built where a C compiler is
there. Optional: where it cannot be built, the install goes on and storable.py walks in Python (the same
answers, about 7x slower; benchmarks/README.md, the store)."""

from setuptools import Extension, setup

setup(ext_modules=[Extension("agno_migrate._plain", ["agno_migrate/_plain.c"], optional=True)])
