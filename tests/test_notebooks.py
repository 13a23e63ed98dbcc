"""The shipped notebooks: generated from the package (no drift), stored without outputs,
and every one executes top to bottom at the smoke profile in a kernel of this venv."""

import json
from concurrent.futures import ThreadPoolExecutor
from pathlib import Path

import pytest

from dlab import notebooks

ROOT = Path(__file__).resolve().parents[1] / "notebooks"
EXPERIMENTS = range(1, 17)


@pytest.mark.parametrize("n", EXPERIMENTS)
def test_shipped_notebook_matches_the_generator(n):
    stored = (ROOT / f"exp{n:02d}.ipynb").read_text(encoding="utf-8")
    assert stored == notebooks.text(n), (
        f"notebooks/exp{n:02d}.ipynb differs from the generator: run "
        f"`dlab notebook {n} --out notebooks --force`")


def test_notebooks_carry_no_outputs():
    for path in sorted(ROOT.glob("*.ipynb")):
        nb = json.loads(path.read_text(encoding="utf-8"))
        for cell in nb["cells"]:
            if cell["cell_type"] == "code":
                assert cell["outputs"] == [] and cell["execution_count"] is None, path.name


def test_every_program_has_a_try_this_setting_it_accepts():
    from dlab.config import build
    from dlab.lab import as_setting_text
    from dlab.registry import PROGRAMS

    assert set(notebooks.TRY_THIS) == set(PROGRAMS)
    for pid, (settings, _) in notebooks.TRY_THIS.items():
        impl = PROGRAMS[pid].load()
        build(impl.config, impl.profiles, "smoke",
              {k: as_setting_text(v) for k, v in settings.items()}, pid)


def _execute(n, out):
    nbformat = pytest.importorskip("nbformat")
    from nbclient import NotebookClient

    nb = nbformat.read(ROOT / f"exp{n:02d}.ipynb", as_version=4)
    setup = nb.cells[1].source
    assert 'PROFILE = "quick"' in setup and 'OUT = "runs"' in setup
    nb.cells[1].source = (setup.replace('PROFILE = "quick"', 'PROFILE = "smoke"')
                          .replace('OUT = "runs"', f"OUT = {str(out)!r}"))
    NotebookClient(nb, timeout=600, kernel_name="python3",
                   resources={"metadata": {"path": str(out)}}).execute()
    return nb


# nbclient's kernel clients leave sockets and event loops for the garbage collector
@pytest.mark.filterwarnings("ignore::ResourceWarning")
@pytest.mark.filterwarnings("ignore::pytest.PytestUnraisableExceptionWarning")
def test_every_notebook_runs_at_smoke(tmp_path):
    pytest.importorskip("nbclient")
    pytest.importorskip("ipykernel")
    folders = {n: tmp_path / f"exp{n:02d}" for n in EXPERIMENTS}
    for folder in folders.values():
        folder.mkdir()
    with ThreadPoolExecutor(max_workers=2) as pool:
        done = dict(zip(EXPERIMENTS, pool.map(lambda n: _execute(n, folders[n]), EXPERIMENTS),
                        strict=True))
    import gc

    gc.collect()  # the kernel clients' sockets and loops go here, under this test's filters
    for n, nb in done.items():
        shown = [o for c in nb.cells if c.cell_type == "code" for o in c.outputs]
        # each program's Result displayed itself with its verdict (twice: run, try this)
        html = [o["data"]["text/html"] for o in shown if "text/html" in o.get("data", {})]
        assert sum("</code>, verdict <strong" in h for h in html) >= 4, n
        text = "".join(o.get("text", "") for o in shown)
        assert "V1." in text, n  # the viva questions printed
        assert len(list(folders[n].rglob("metrics.json"))) >= 4, n  # 2 programs, 2 runs each
        # each program's steps ran as cells, read back from the kernel and found unchanged
        stepped = [s["notebook"] for s in map(json.loads, map(Path.read_text,
                   folders[n].rglob("metrics.json"))) if s["notebook"] is not None]
        assert len(stepped) == 2, n  # the in-lab and the post-lab program
        assert all(nb["compared"] and nb["modified"] is False for nb in stepped), (n, stepped)


def test_an_edited_notebook_is_not_overwritten_without_force(cli, tmp_path):
    code, out, _ = cli("notebook", "5", "--out", tmp_path)
    path = tmp_path / "exp05.ipynb"
    assert code == 0 and path.read_text(encoding="utf-8") == notebooks.text(5)
    assert cli("notebook", "5", "--out", tmp_path)[0] == 0  # the same text: nothing lost
    path.write_text(path.read_text(encoding="utf-8").replace("PROFILE = \\\"quick\\\"",
                                                            "PROFILE = \\\"smoke\\\""))
    edited = path.read_text(encoding="utf-8")
    assert edited != notebooks.text(5)
    code, out, err = cli("notebook", "5", "--out", tmp_path)
    assert code == 2 and out == "" and err.count("\n") == 1 and "--force" in err
    assert path.read_text(encoding="utf-8") == edited
    assert cli("notebook", "5", "--out", tmp_path, "--force")[0] == 0
    assert path.read_text(encoding="utf-8") == notebooks.text(5)
