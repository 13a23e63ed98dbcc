import os
import tempfile

import pytest

# Tests use the data bundled with dlab, never full data sets a user has fetched (MNIST in
# ~/.cache/dlab would change sample sizes and times): an empty data folder of their own.
os.environ["DLAB_DATA"] = tempfile.mkdtemp(prefix="dlab-test-data-")
os.environ.setdefault("KERAS_BACKEND", "torch")
os.environ.setdefault("MPLBACKEND", "Agg")
os.environ.setdefault("OMP_WAIT_POLICY", "PASSIVE")


@pytest.fixture
def cli(capsys):
    """Run the dlab CLI in-process: returns (exit code, stdout, stderr)."""
    from dlab.cli import main

    def invoke(*args: str):
        code = main([str(a) for a in args])
        captured = capsys.readouterr()
        return code, captured.out, captured.err

    return invoke
