"""The `dlab` command line. It only parses arguments and calls library functions.

Errors meant for users (DlabError) print as one line and exit with status 2;
`--debug` anywhere on the line shows the traceback instead.
"""

from __future__ import annotations

import os
import sys
from pathlib import Path

import typer
from rich.console import Console
from rich.table import Table

from dlab.errors import DlabError, UsageError  # noqa: E402
from dlab.version import __version__  # noqa: E402

app = typer.Typer(add_completion=False, no_args_is_help=True, pretty_exceptions_enable=False,
                  help="dlab: the deep-learning lab course, run correctly and recorded honestly.")
data_app = typer.Typer(no_args_is_help=True, help="List and fetch data sets.")
app.add_typer(data_app, name="data")
out = Console(highlight=False, soft_wrap=True)  # one message, one line


def _version(value: bool) -> None:
    if value:
        print(f"dlab {__version__}")
        raise typer.Exit()


@app.callback()
def _root(version: bool = typer.Option(False, "--version", callback=_version, is_eager=True,
                                       help="Print the version and exit.")) -> None:
    """dlab: sixteen experiments, thirty-two programs."""


@app.command("list")
def list_() -> None:
    """List the 16 experiments and 32 programs, and which are built."""
    from dlab.registry import EXPERIMENTS, PROGRAMS

    table = Table("id", "program", "built", box=None, pad_edge=False)
    for exp in EXPERIMENTS:
        table.add_row(f"[bold]{exp.key}[/]", f"[bold]{exp.title}[/]", "")
        for p in exp.programs:
            table.add_row(f"  {p.id}", p.title, "yes" if p.implemented else "not yet")
    out.print(table)
    built = sum(p.implemented for p in PROGRAMS.values())
    out.print(f"{len(EXPERIMENTS)} experiments, {len(PROGRAMS)} programs, {built} built.")


@app.command()
def show(program_id: str = typer.Argument(..., metavar="ID")) -> None:
    """Show an experiment's or program's aim, the manual's defect and its settings."""
    from dlab.registry import resolve

    for p in resolve([program_id]):
        out.print(f"[bold]{p.id} {p.title}[/]")
        out.print(f"Aim: {p.aim}")
        if p.defect:
            out.print(f"The manual: {' '.join(p.defect.split())}")
        if not p.implemented:
            out.print("Status: not built yet.\n")
            continue
        from dlab.lab import show as program_view

        view = program_view(p.id)
        rows = Table("setting", "quick (default)", "smoke", "full", box=None)
        for name, by_profile in view.settings.items():
            rows.add_row(name, *(str(by_profile[k]) for k in ("quick", "smoke", "full")))
        out.print(rows)
        out.print(view.manual_text(), markup=False, highlight=False)
        out.print("")


@app.command()
def run(
    ids: list[str] = typer.Argument(..., metavar="ID...", help="1-16, exp04, 4.1 or all"),
    profile: str = typer.Option("quick", help="smoke (seconds), quick (about a minute), full"),
    seed: int = typer.Option(0, help="Seed for every random number generator."),
    device: str = typer.Option("auto", help="cpu, cuda or auto"),
    set_: list[str] = typer.Option([], "--set", help="Override a setting: key=value"),
    out_dir: Path = typer.Option(Path("runs"), "--out", help="Folder for run folders."),
    data_dir: Path | None = typer.Option(None, "--data-dir", envvar="DLAB_DATA",
                                         help="Folder with full data sets."),
    quiet: bool = typer.Option(False, "--quiet", "-q", help="Print only the summary."),
    resume: bool = typer.Option(False, help="Continue the latest interrupted run."),
    jobs: int | None = typer.Option(None, "--jobs", "-j",
                                    help="Run programs in N processes at once, one thread "
                                         "each, one line per program."),
) -> None:
    """Run programs; each leaves a run folder with metrics, figures and its record."""
    from dlab.config import parse_sets
    from dlab.registry import resolve
    from dlab.running import resume_batch, run_program
    from dlab.verdicts import overall, verdict_line

    if seed < 0:
        raise UsageError(f"--seed must be 0 or more, got {seed}")
    programs = resolve(ids)
    sets = parse_sets(set_)
    if jobs is not None:
        from dlab.batch import run_many

        code = run_many(programs, jobs=jobs, profile=profile, seed=seed, device=device,
                        sets=sets, out=out_dir, data_dir=data_dir, resume=resume)
        if code:
            raise typer.Exit(code)
        return
    many = len(programs) > 1
    if many:
        for p in programs:
            if not p.implemented:
                out.print(f"skip {p.id} {p.title}: not built yet")
        programs = [p for p in programs if p.implemented]
    plan = [(p, resume) for p in programs]
    if resume and many:  # over a batch: continue, skip what finished, start the rest
        plan = resume_batch(out_dir, programs, profile, seed, sets,
                            say=lambda line: out.print(line, markup=False))
    outcomes = []
    for p, again in plan:
        try:
            outcome = run_program(p, profile=profile, seed=seed, device=device, sets=sets,
                                  out=out_dir, quiet=quiet, data_dir=data_dir, resume=again)
        except DlabError as exc:
            from dlab.studies import StudyNotFinished

            if not isinstance(exc, StudyNotFinished):
                raise
            print(exc, flush=True)  # this worker is done; another one writes the record
            continue
        except KeyboardInterrupt:
            out.print(f"{p.id}: interrupted; its run folder is marked so. "
                      f"Continue with `dlab run {p.id} --resume`.")
            raise typer.Exit(130) from None
        outcomes.append(outcome)
        if outcome.status != "ok":
            out.print(f"{p.id}: {outcome.status}: {outcome.message}", markup=False)
        elif quiet:  # otherwise the run has printed its verdict line already
            out.print(f"{p.id} target {verdict_line(outcome.targets or [])}", markup=False)
    if not outcomes:
        return
    table = Table("program", "status", "verdict", "seconds", "run folder", box=None)
    import json

    for o in outcomes:
        seconds = json.loads((o.folder / "metrics.json").read_text())["timings"]["seconds"]
        verdict = overall(o.targets or []) if o.status == "ok" else "n/a"
        table.add_row(o.program, o.status, verdict, f"{seconds:.1f}", str(o.folder))
    out.print(table)
    if any(o.status != "ok" for o in outcomes):
        raise typer.Exit(1)


@app.command()
def notebook(
    experiment: str = typer.Argument(..., metavar="N", help="experiment 1-16 (or exp04)"),
    out_dir: Path = typer.Option(Path("notebooks"), "--out", help="Folder for the notebook."),
    force: bool = typer.Option(False, "--force",
                               help="Overwrite a notebook there that differs (edited)."),
) -> None:
    """Write the Jupyter notebook of experiment N (expNN.ipynb, without outputs)."""
    from dlab import notebooks
    from dlab.registry import resolve

    number = resolve([experiment])[0].experiment
    out.print(f"notebook: {notebooks.write(number, out_dir, force=force)}")


@app.command()
def report(
    runs_dir: Path = typer.Argument(Path("runs"), help="Folder of run folders."),
    out_file: Path | None = typer.Option(None, "--out",
                                         help="The HTML page (default RUNS_DIR/lab-record.html)."),
    pdf: bool = typer.Option(False, "--pdf", help="Also print a PDF (needs a local Chromium)."),
    student_name: str | None = typer.Option(
        None, "--student-name", help="For the header (else DLAB_STUDENT_NAME or student.toml)."),
    student_id: str | None = typer.Option(
        None, "--student-id", help="For the header (else DLAB_STUDENT_ID or student.toml)."),
    blank_answers: bool = typer.Option(
        False, "--blank-answers", help="Leave the pre-lab and viva answers to be written in."),
    experiment: int | None = typer.Option(
        None, "--experiment", help="Only this experiment (1-16): the sheet you hand in."),
    pick: list[str] = typer.Option(
        [], "--pick", help="ID=RUN_FOLDER: show that run of a program (repeatable)."),
    allow_smoke: bool = typer.Option(
        False, "--allow-smoke", help="Also take smoke runs (left out: they are not results)."),
    paper: str = typer.Option("a4", "--paper", help="a4 or letter (printed page size)."),
) -> None:
    """Collect each program's run into a lab record (HTML and Markdown; PDF with --pdf).

    Each program shows its latest run at the default settings (quick or full profile),
    unless --pick chooses another."""
    from dlab.report.choose import parse_picks
    from dlab.report.handin import resolve_student
    from dlab.report.lab import write_report

    student = resolve_student(student_name, student_id, runs_dir)
    written = write_report(runs_dir, out_file, pdf=pdf, student=student,
                           blank_answers=blank_answers, experiment=experiment,
                           picks=parse_picks(pick), allow_smoke=allow_smoke, paper=paper)
    for kind, path in written.items():
        out.print(f"lab record ({kind}): {path}")


@app.command()
def handin(
    runs_dir: Path = typer.Argument(..., metavar="RUNS", help="Folder of run folders."),
    experiment: int = typer.Option(..., "--experiment", help="The experiment (1-16)."),
    out_file: Path | None = typer.Option(
        None, "--out", help="The zip (default STUDENT_ID-experiment-NN.zip here)."),
    pick: list[str] = typer.Option(
        [], "--pick", help="ID=RUN_FOLDER: hand in that run of a program (repeatable)."),
    allow_smoke: bool = typer.Option(
        False, "--allow-smoke", help="Also take smoke runs (left out: they are not results)."),
    student_name: str | None = typer.Option(
        None, "--student-name", help="Else DLAB_STUDENT_NAME or student.toml."),
    student_id: str | None = typer.Option(
        None, "--student-id", help="Else DLAB_STUDENT_ID or student.toml."),
    paper: str = typer.Option("a4", "--paper", help="a4 or letter (printed page size)."),
    pdf: bool = typer.Option(False, "--pdf", help="Also put a PDF of the record in the zip."),
    force: bool = typer.Option(False, "--force", help="Replace an existing --out file."),
) -> None:
    """Write one experiment's hand-in: a zip of its record and chosen run folders.

    Runs are chosen as by `dlab report --experiment N`; `dlab verify ZIP` reruns them."""
    from dlab.bundle import handin_info, make_handin
    from dlab.report.choose import parse_picks
    from dlab.report.handin import resolve_student

    student = resolve_student(student_name, student_id, runs_dir)
    path = make_handin(runs_dir, experiment, out_file, picks=parse_picks(pick),
                       allow_smoke=allow_smoke, student=student, paper=paper, pdf=pdf,
                       force=force,
                       warn=lambda line: print(f"dlab: warning: {line}", file=sys.stderr))
    for entry in handin_info(path)["programs"]:
        if "run" in entry:
            out.print(f"{entry['program']}  {entry['run']}  {entry['profile']}", markup=False)
        else:
            out.print(f"{entry['program']}  not run ({entry.get('note', '')})", markup=False)
    size = path.stat().st_size
    out.print(f"hand-in: {path} ({size / 1e6:.1f} MB)" if size >= 100_000 else
              f"hand-in: {path} ({size / 1e3:.0f} kB)", markup=False)


@app.command()
def study(
    program_id: str = typer.Argument(..., metavar="ID",
                                     help="12.2, 13.2, 14.2, 15.2, 16.2 (or 12..16)"),
    profile: str = typer.Option("quick", help="smoke, quick or full"),
    seed: int = typer.Option(0, help="Seed of every trial."),
    device: str = typer.Option("auto", help="cpu, cuda or auto"),
    storage: str | None = typer.Option(
        None, "--storage", help="Optuna storage URL (default: SQLite file in the study folder)"),
    workers: int = typer.Option(1, "--workers", help="Local processes running trials at once."),
    out_dir: Path = typer.Option(Path("runs"), "--out", help="Folder for run folders."),
    data_dir: Path | None = typer.Option(None, "--data-dir", envvar="DLAB_DATA"),
    quiet: bool = typer.Option(False, "--quiet", "-q"),
    report: bool = typer.Option(
        False, "--report", help="Run no trials: write the record from the storage now."),
    heartbeat: int | None = typer.Option(
        None, "--heartbeat", help="Seconds between a running trial's heartbeats (10)."),
    grace: int | None = typer.Option(
        None, "--grace", help="Seconds without a heartbeat before a trial is retried (30)."),
) -> None:
    """Run (or continue) a program's hyperparameter study, or write its record (--report)."""
    from dlab.studies import StudyNotFinished, run_study

    if workers < 1:
        raise UsageError(f"--workers must be 1 or more, got {workers}")
    try:
        folder = run_study(program_id, profile=profile, seed=seed, storage=storage,
                           workers=workers, out=out_dir, quiet=quiet, data_dir=data_dir,
                           device=device, report=report, heartbeat=heartbeat, grace=grace)
    except StudyNotFinished as exc:  # this worker is done; another writes the record
        print(exc, flush=True)
        return
    except KeyboardInterrupt:
        out.print("study interrupted; run the same command again to continue it")
        raise typer.Exit(130) from None
    out.print(f"study record: {folder / 'record.md'}", soft_wrap=True)


@app.command()
def predict(
    run_dir: Path = typer.Argument(..., help="Run folder of a trained classifier (4, 8.2, 9.2)."),
    files: list[Path] = typer.Argument(..., metavar="FILES...",
                                       help=".png/.jpg images, .npy arrays, .npz with `images`"),
    labels: bool = typer.Option(False, "--labels", help="Print class names, not indices."),
) -> None:
    """Classify image files with a trained classifier: CSV file,index,predicted,probability."""
    from dlab.predict import format_csv, predict_files

    sys.stdout.write(format_csv(predict_files(run_dir, files, labels=labels)))


@app.command()
def verify(
    paths: list[Path] = typer.Argument(..., metavar="RUN_OR_RUNS_OR_ZIP...",
                                       help="Run folders, runs folders to verify every run "
                                            "in, or hand-in zips (`dlab handin`)"),
    data_dir: Path | None = typer.Option(None, "--data-dir", envvar="DLAB_DATA"),
) -> None:
    """Rerun finished runs (or a hand-in's) from their recorded settings and code; compare.

    Exit 0: all verified; 1: a run differs or its files changed; 2: cannot verify."""
    from dlab.verify import verify as verify_runs

    code = verify_runs(paths, data_dir=str(data_dir) if data_dir else None,
                       say=lambda line: out.print(line, soft_wrap=True, highlight=False))
    raise typer.Exit(code)


@app.command("class")
def class_(
    folder: Path = typer.Argument(..., metavar="DIR",
                                  help="Hand-in zips (dlab handin), or one runs folder per "
                                       "student."),
    out_dir: Path = typer.Option(Path("class"), "--out",
                                 help="Folder for class.html, class.csv and gradebook.csv."),
    rerun: int = typer.Option(0, "--rerun", help="Rerun N sampled runs per student."),
    jobs: int = typer.Option(1, "--jobs", help="Reruns at a time (processes)."),
    rubric: Path | None = typer.Option(None, "--rubric",
                                       help="TOML: the points of the suggested score."),
    seed: int = typer.Option(0, "--seed", help="Seed of the rerun sample."),
) -> None:
    """One table of a whole class from a folder of hand-ins: class.html, class.csv and a
    gradebook CSV for the LMS."""
    from dlab.classroom import main as class_main

    if rerun < 0 or jobs < 1:
        raise UsageError(f"--rerun must be 0 or more and --jobs 1 or more (got {rerun}, "
                         f"{jobs})")
    raise typer.Exit(class_main(folder, out_dir, rerun, jobs, rubric, seed))


@app.command()
def viva(
    experiment_id: str = typer.Argument(..., metavar="N", help="Experiment 1-16 (or exp05)."),
    prelab: bool = typer.Option(False, "--prelab", help="Only the pre-lab questions."),
    viva_only: bool = typer.Option(False, "--viva", help="Only the viva-voce questions."),
    no_answers: bool = typer.Option(False, "--no-answers", help="A question sheet."),
    runs_dir: Path | None = typer.Option(None, "--runs",
                                         help="Folder of run folders (default runs)."),
    fmt: str = typer.Option("text", "--format",
                            help="text, json, or for a learning-management system gift "
                                 "(Moodle), qti (Canvas; needs --out FILE.zip) or csv."),
    out_file: Path | None = typer.Option(None, "--out", help="Write to this file, not stdout."),
    pick: list[str] = typer.Option(
        [], "--pick", help="ID=RUN_FOLDER: read that run of a program (repeatable)."),
    allow_smoke: bool = typer.Option(
        False, "--allow-smoke", help="Read smoke runs too (default: quick or full only)."),
) -> None:
    """An experiment's pre-lab and viva-voce questions, answered (from your runs where linked).

    gift, qti and csv export a quiz with the question bank's answers only, not your runs."""
    from dlab.questions import experiment_number, load
    from dlab.viva import select

    exports = ("gift", "qti", "csv")
    if fmt not in ("text", "json", *exports):
        raise UsageError(f"--format {fmt}: use text, json, gift, qti or csv")
    if fmt in exports and (runs_dir is not None or pick or allow_smoke):
        raise UsageError(f"--format {fmt} exports the question bank's answers, not runs; "
                         "leave out --runs, --pick and --allow-smoke")
    if fmt == "qti" and (out_file is None or out_file.suffix.lower() != ".zip"):
        raise UsageError("--format qti writes a zip: give --out FILE.zip")
    if out_file is not None and out_file.is_dir():
        raise UsageError(f"--out {out_file} is a folder; give a file name")

    qset = load(experiment_number(experiment_id))
    entries = select(qset, prelab=prelab, viva=viva_only)
    answers = not no_answers
    if fmt in exports:
        from dlab.quiz_export import to_csv, to_gift, to_qti

        export = {"gift": to_gift, "qti": to_qti, "csv": to_csv}[fmt]
        data: str | bytes = export(qset, entries, answers=answers)
    else:
        from dlab.report.choose import parse_picks
        from dlab.viva import RunReader, check_runs_dir, render, to_json

        reader = RunReader(check_runs_dir(runs_dir), parse_picks(pick), allow_smoke)
        if fmt == "json":
            data = to_json(qset, entries, reader, answers=answers)
        else:
            import io

            console = out if out_file is None else Console(
                file=io.StringIO(), width=100, color_system=None, highlight=False)
            render(console, qset, entries, reader, answers=answers)
            if out_file is None:
                return
            data = console.file.getvalue()
    if out_file is None:
        sys.stdout.write(data)
        return
    from dlab.io import atomic_write

    try:
        atomic_write(out_file, data)
    except OSError as exc:
        raise UsageError(f"--out {out_file}: cannot write ({exc.strerror or exc})") from None
    out.print(f"{fmt}: {out_file} ({len(entries)} questions)", markup=False)


@app.command()
def quiz(
    experiment_id: str = typer.Argument(..., metavar="N", help="Experiment 1-16 (or exp05)."),
    seed: int | None = typer.Option(None, help="Seed of the order (default: a new one)."),
    count: int | None = typer.Option(None, "--count", help="Ask only this many questions."),
    prelab: bool = typer.Option(False, "--prelab", help="Only the pre-lab questions."),
    viva_only: bool = typer.Option(False, "--viva", help="Only the viva-voce questions."),
    runs_dir: Path | None = typer.Option(None, "--runs",
                                         help="Folder of run folders (default runs)."),
    pick: list[str] = typer.Option(
        [], "--pick", help="ID=RUN_FOLDER: read that run of a program (repeatable)."),
    allow_smoke: bool = typer.Option(
        False, "--allow-smoke", help="Read smoke runs too (default: quick or full only)."),
) -> None:
    """Ask an experiment's questions one at a time in random order; y/n after each answer."""
    import secrets

    from dlab.questions import experiment_number, load
    from dlab.viva import RunReader, check_runs_dir, quiz_order, run_quiz, select

    if seed is not None and seed < 0:
        raise UsageError(f"--seed must be 0 or more, got {seed}")
    from dlab.report.choose import parse_picks

    qset = load(experiment_number(experiment_id))
    reader = RunReader(check_runs_dir(runs_dir), parse_picks(pick), allow_smoke)
    seed = secrets.randbelow(10_000) if seed is None else seed
    entries = quiz_order(select(qset, prelab=prelab, viva=viva_only), seed, count)

    def read_line() -> str | None:
        line = sys.stdin.readline()
        return None if line == "" else line.rstrip("\r\n")

    run_quiz(out, qset, entries, reader, read_line, seed, echo=not sys.stdin.isatty())


@data_app.command("list")
def data_list(data_dir: Path | None = typer.Option(None, "--data-dir", envvar="DLAB_DATA")) -> None:
    """Every data set: available or not, where it comes from, size, licence."""
    from dlab.data import catalogue
    from dlab.data import data_dir as resolve_dir

    root = resolve_dir(data_dir)
    for d in catalogue():
        mark = "[green]available[/]" if d.available(root) else "[yellow]not here[/]"
        out.print(f"[bold]{d.name}[/]  {mark}  {d.description}; {d.size}")
        out.print(f"    source: {d.source}\n    licence: {d.licence}; get: {d.how_to_get}",
                  soft_wrap=True)
    out.print(f"data folder: {root}")


@data_app.command("get")
def data_get(name: str = typer.Argument(..., help="mnist"),
             data_dir: Path | None = typer.Option(None, "--data-dir", envvar="DLAB_DATA")) -> None:
    """Fetch a full data set into the data folder (only when asked)."""
    if name != "mnist":
        raise UsageError(f"data get {name}: only `mnist` can be fetched; see `dlab data list`")
    from dlab.data.download import get_mnist

    get_mnist(data_dir, log=out.print)


def _option_values(argv: list[str], name: str) -> list[str]:
    """Values given to option `name` as `name VALUE` or `name=VALUE`."""
    values = []
    for i, arg in enumerate(argv):
        if arg == "--":
            break
        if arg == name and i + 1 < len(argv):
            values.append(argv[i + 1])
        elif arg.startswith(name + "="):
            values.append(arg[len(name) + 1:])
    return values


def _preflight(argv: list[str]) -> None:
    """Checks the option parser cannot express: an empty --out or --data-dir, a
    --data-dir (or $DLAB_DATA) that is a file, a --seed out of range."""
    from dlab.config import check_seed
    from dlab.runs import check_data_dir

    for value in _option_values(argv, "--out"):
        if not value.strip():
            raise UsageError("--out is empty; give a folder (or, for `report`, an .html "
                             "file), e.g. --out runs")
    for value in _option_values(argv, "--data-dir"):
        check_data_dir(value)
    commands = [a for a in argv if not a.startswith("-")][:1]
    if commands and commands[0] in ("run", "study", "data") and os.environ.get("DLAB_DATA"):
        check_data_dir(os.environ["DLAB_DATA"], "DLAB_DATA")
    for value in _option_values(argv, "--seed"):
        try:
            seed = int(value)
        except ValueError:
            continue  # the parser says so
        check_seed(seed)


def _usage_line(exc) -> str:
    """A usage error (missing argument, unknown option, a value of the wrong type) as one
    line with the command's --help to read."""
    message = " ".join(exc.format_message().split())
    ctx = getattr(exc, "ctx", None)
    where = ctx.command_path if ctx is not None else "dlab"
    return f"dlab: error: {message} (see `{where} --help`)"


def main(argv: list[str] | None = None) -> int:
    try:
        from typer._click.exceptions import ClickException, NoArgsIsHelpError
    except ImportError:  # pragma: no cover - typer versions that use click itself
        from click.exceptions import ClickException, NoArgsIsHelpError
    Abort = typer.Abort
    from dlab.errors import RunFailed

    argv = list(sys.argv[1:] if argv is None else argv)
    debug = "--debug" in argv
    argv = [a for a in argv if a != "--debug"]
    try:
        _preflight(argv)
        code = app(args=argv, prog_name="dlab", standalone_mode=False)
    except NoArgsIsHelpError as exc:
        print(exc.ctx.get_help() if exc.ctx is not None else exc.format_message())
        return 2
    except (DlabError, RunFailed) as exc:
        if debug:
            raise
        print(f"dlab: error: {' '.join(str(exc).split())}", file=sys.stderr)
        return 1 if isinstance(exc, RunFailed) else 2
    except ClickException as exc:
        if debug:
            raise
        print(_usage_line(exc), file=sys.stderr)
        return exc.exit_code
    except Abort:
        print("dlab: aborted", file=sys.stderr)
        return 1
    except SystemExit as exc:
        return exc.code if isinstance(exc.code, int) else (0 if exc.code is None else 1)
    return code if isinstance(code, int) else 0


if __name__ == "__main__":  # pragma: no cover
    sys.exit(main())
