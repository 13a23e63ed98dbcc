"""dlab: the deep-learning lab course, run correctly and recorded honestly.

The Python API (`dlab.run`, `dlab.show`, `dlab.list_programs`, `dlab.load_run`,
`dlab.report`, `dlab.Result`, `dlab.start` for one step at a time) lives in `dlab.lab`; it
is imported on first use so that `import dlab` and `dlab list` stay fast.
"""

import os

# Idle OpenMP threads sleep instead of spinning (OMP_WAIT_POLICY=PASSIVE), for the command
# line and the Python API alike; it takes effect when dlab is imported before torch, and an
# OMP_WAIT_POLICY already in the environment wins. It is not the fastest on an idle
# machine: whole `dlab run` processes on the 2-core machine, two threads, paired runs,
# medians (README, "Threads"), PASSIVE took 19.9 s against 18.3 s for libgomp's own policy
# on 8.2 and 8.7 against 7.6 s on 9.2 (9-14% slower idle); with both cores busy it took
# 36.9 against 53.1 s on 8.2 and 16.3 against 23.3 s on 9.2 (ACTIVE: 55.1 and 26.2 s).
# Slower by a tenth alone, faster by about a third when shared: PASSIVE bounds the worst
# case a student's laptop meets. Measured again on another 2-core machine (9.2 quick, three
# pairs, medians): idle 15.9 s against ACTIVE's 14.7 and 13.8 against libgomp's 12.4;
# beside two busy processes 20.1 against ACTIVE's 32.8 and 23.6 against libgomp's 37.2;
# a third boot: idle 12.9 against ACTIVE's 12.1 s, beside two busy processes 21.6
# against 31.8 s.
# Programs on one thread (dlab.runs.ONE_THREAD, every `--jobs` run) never wait.
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
