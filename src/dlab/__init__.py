"""dlab: the deep-learning lab course, run correctly and recorded honestly.

The Python API (`dlab.run`, `dlab.show`, `dlab.list_programs`, `dlab.load_run`,
`dlab.report`, `dlab.Result`, `dlab.start` for one step at a time) lives in `dlab.lab`; it is imported on first use so that
`import dlab` and `dlab list` stay fast.
"""

__version__ = "0.1.0"

_API = ("ProgramRun", "Result", "list_programs", "load_run", "report", "run", "show",
        "start")
__all__ = ["__version__", *_API]


def __getattr__(name: str):
    if name in _API:
        from dlab import lab

        return getattr(lab, name)
    raise AttributeError(f"module 'dlab' has no attribute {name!r}")
