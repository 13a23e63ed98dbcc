"""dlab: the deep-learning lab course, run correctly and recorded honestly.

The Python API (`dlab.run`, `dlab.show`, `dlab.list_programs`, `dlab.load_run`,
`dlab.report`, `dlab.Result`, `dlab.start` for one step at a time) lives in `dlab.lab`; it
is imported on first use so that `import dlab` and `dlab list` stay fast.
"""

import os

# Idle OpenMP threads sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE), for the command
# line and the Python API alike; it takes effect when dlab is imported before torch, and an
# OMP_WAIT_POLICY already in the environment wins. Measured in fresh processes on the
# 2-core machine, two threads (README, "Threads"): idle, PASSIVE and libgomp's own policy
# are within this VM's noise (8.2: 10.7 against 9.8 s, 9.2: 7.8 against 7.5 s); with both
# cores busy, PASSIVE is the fastest (8.2: 18.4 against 32.5 s, 9.2: 14.8 against 32.1 s).
# The programs that are faster on one thread (dlab.runs.ONE_THREAD) do not wait at all.
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")

from dlab.version import __version__  # noqa: E402  (after the OpenMP policy)

_API = ("ProgramRun", "Result", "list_programs", "load_run", "report", "run", "show",
        "start")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from dlab import lab

        return getattr(lab, name)
    raise AttributeError(f"module 'dlab' has no attribute {name!r}")
