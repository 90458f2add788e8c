"""The one adapter over kconfiglib: nothing outside this package imports kconfiglib.

- ``dotconfig``: .config files read and written as Kbuild's conf does (no kconfiglib).
- ``results``: the plain data handed out (symbol tables, explanations; no kconfiglib).
- ``compat``: kconfiglib taught the Kconfig of newer kernels; installed by a parse.
- ``probes``: the $(shell ...) probes of a parse, run ahead in parallel, with an explicit
  environment and working directory (the process's own are never changed).
- ``model``: parse, signed cache, values, loading configs.
- ``explain``: why a symbol does not have the value wanted, down to a root cause;
  ``terms``: which symbols of a failing dependency must change, and to what.

kconfiglib is the brain that predicts and explains; Kbuild's own conf is the ground truth, and
the two are compared on every configure. Import the submodule you need: importing this package
loads nothing.
"""
