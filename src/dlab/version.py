"""The version of dlab (pyproject.toml holds the same number; a test checks it)."""

__version__ = "0.1.0"
