"""Golden conformance vectors: the spec as data another implementation is tested against.

``vectors`` reads and runs the shipped cases (``settlekernel/data/conformance/*.json``)
against this kernel or, through ``program``, against any program that speaks the
line protocol of spec/96-conformance.md; ``reference`` is that program for this kernel.
"""
