"""Hyperparameter studies on Optuna: one full, seeded run of a program per setting tried.

A study varies the settings of one program (the *base program*, e.g. 12.1) and is
itself run by another program (the *study program*, e.g. 12.2), so `dlab run 12.2` and
`dlab study 12.2` both leave an ordinary run folder with a record, a table and plots.

Declaring a study, next to its study program::

    from dlab.studies import Study, StudySettings, execute, record

    @dataclass
    class AEStudyConfig(StudySettings):       # adds mode, n_trials, workers, storage
        latents: tuple[int, ...] = (8, 16, 32, 64)  # code sizes tried
        lrs: tuple[float, ...] = (3e-4, 1e-3, 3e-3)  # learning rates tried

    def ae_study(cfg: AEStudyConfig) -> Study:
        return Study(program="12.1", base_profile="quick", base={"epochs": 8},
                     space={"latent": cfg.latents, "lr": cfg.lrs},
                     metric="test_mse", direction="minimize", mode=cfg.mode,
                     n_trials=cfg.n_trials, report=("parameters",))

    def run_ae_study(cfg, ctx):
        result = execute(ae_study(cfg), ctx, workers=cfg.workers, storage=cfg.storage)
        record(result, ctx)         # table, plots and sentences in the run's record

    AE_STUDY = Implementation(config=AEStudyConfig, run=run_ae_study, profiles={...})

What a study does
- `space` maps fields of the base program's config to the values tried (numbers,
  strings, booleans, or tuples, which travel as "64,32" like `--set`). `base` fixes
  other fields for every trial; `base_profile` is the base program's profile each
  trial starts from.
- mode "one_at_a_time" (the default): the base configuration once, then each field
  changed alone to each of its other values, everything else at the base; the table
  then reads one factor at a time. "grid": every combination. "sampled": `n_trials`
  settings drawn by Optuna's TPE sampler from the same value lists.
- Each trial is `dlab.running.run_program(base program, profile=base_profile, seed=the
  study's seed, sets=base + the trial's values)` with its own run folder (metrics.json,
  history, figures, record). All trials share the seed, so differences between rows come
  from the settings, not from the draw of initial weights.
- Seed noise: with `spread_seeds=k` the base setting is also run at seeds seed+1 ..
  seed+k (rows "seed +1" ...; not candidates for the choice). The standard deviation s
  of the objective over those k+1 runs is the study's measured seed noise: two single
  runs differ by the seed alone by up to t(0.975, k) * s * sqrt(2) (95%), the *noise
  band*. Settings closer than that to the chosen one cannot be ranked against it, and
  the record says so; with no repeats it says the ranking rests on one seed.
- The objective is `metrics[metric]` of the trial's metrics.json; `report` names other
  metrics kept beside it. A trial that diverges, fails or produces no finite metric
  is stored as FAIL with its reason (user attribute "reason") and the study goes on.

Where things go
- The study folder is `OUT/<study program>/study-<profile>-seed<seed>-<key>/`, next to
  the study program's run folders; `key` hashes the plan (program, space, mode, base
  configuration, metric, seed). It holds `study.db` (the default storage, SQLite),
  `trials/<number>/...` (the run folders of the trials this machine ran), `trials.csv`,
  `table.md` and one plot per varied field (`<field>.png`). The study program's own run
  folder gets the same table and plots through `record`.
- Each worker stores in the storage, beside every trial it runs, its host name and the
  trial's absolute run folder; trials.csv and the record name each trial's folder as
  `host:/absolute/folder`, wherever the record is written (see
  `dlab.studies.recording.trial_folder_lines`).
- The Optuna study is named `dlab-<study program>-<profile>-seed<seed>-<key>`.
- `storage` may be any database URL Optuna supports (e.g. postgresql://user@host/db).
  Keep passwords out of the URL (it is written to metrics.json): use PGPASSWORD or
  ~/.pgpass. PostgreSQL needs the psycopg2 driver (`pip install psycopg2-binary`).

Reruns, workers and machines
- Trials of a plan are put in Optuna's queue (WAITING) once; a worker claims one by
  moving it to RUNNING (a row lock on a database server; a file lock beside SQLite),
  so no two workers run the same trial. Optuna's GridSampler is not used because it is
  documented to repeat grid points when workers run concurrently.
- Opening a study (creating Optuna's tables in a fresh database, creating the study,
  queueing its trials) happens under a lock every dlab process on that storage takes:
  an advisory lock on PostgreSQL, a file lock beside an SQLite file. Any number of
  workers may therefore start at the same moment on an empty database.
- Every running trial records a heartbeat in the storage every `heartbeat` seconds
  (Optuna's heartbeat). A trial whose heartbeat stops for `grace` seconds (its worker
  was killed, lost power or its network) is failed by whichever worker looks next and
  queued again with the same setting (Optuna's RetryHeartbeatStaleTrialCallback); the
  record names the lost trial and its retry. A worker with nothing left to claim
  watches the trials still running elsewhere for one grace period before it leaves,
  so a lost trial is taken over while any worker is alive.
- Rerunning the same study continues it: finished trials (COMPLETE, or FAIL for a
  reason other than an interruption or a lost worker) are not repeated; the others are
  run again.
- `workers=N` starts N processes (multiprocessing, spawn) that each load the study by
  name from the storage and pull trials until none is left; on CPU each process is
  pinned to its share of the cores. Other machines join a study by running the same
  command with the same `storage` URL, each with its own `--out`.
- One record per study: the process whose work leaves the study finished writes it
  (decided under the same lock). A process that runs out of trials while others still
  run raises StudyNotFinished, which says how far the study is and writes no record;
  `report_only` (`dlab study ID --report`) writes the record from the storage at any
  time, marking unfinished trials as running or waiting.
- `run_study(ID, ...)` is `dlab study ID [--workers N] [--storage URL] [--report]`: the
  same as `dlab run ID --set workers=N --set storage=URL` for a study program ID.

The package, lowest layer first (each module imports only from those above it here):
  storage.py   storage URLs, opening a storage, the shared lock, failing silent trials
  study.py     `Study` and `StudySettings`: declaring a study
  plan.py      the planned points, queueing them, how far a study is (`Progress`)
  workers.py   claims, heartbeats, one trial's run, the worker loop and processes
  results.py   `StudyResult`: the rows, the choice, the ranking against seed noise
  recording.py the record's sentences, table and plots; trials.csv and table.md
  run.py       `execute` and `run_study` (`dlab study ID`)
"""

from dlab.studies.plan import Plan, Point, Progress, make_plan
from dlab.studies.recording import plot_field, record
from dlab.studies.results import StudyNotFinished, StudyResult, chosen_and_test_choice
from dlab.studies.run import COURSE_STUDIES, execute, run_study
from dlab.studies.storage import (
    SQLITE_HEADER,
    check_storage_url,
    fail_stale,
    masked,
    open_storage,
    storage_lock,
)
from dlab.studies.study import DIRECTIONS, MODES, Study, StudySettings, Value, as_text, encode

__all__ = ["COURSE_STUDIES", "DIRECTIONS", "MODES", "SQLITE_HEADER", "Plan", "Point",
           "Progress", "Study", "StudyNotFinished", "StudyResult", "StudySettings", "Value",
           "as_text", "check_storage_url", "chosen_and_test_choice", "encode", "execute",
           "fail_stale", "make_plan", "masked", "open_storage", "plot_field", "record",
           "run_study", "storage_lock"]
