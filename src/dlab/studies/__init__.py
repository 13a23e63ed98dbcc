"""Hyperparameter studies on Optuna (see dlab.studies.run)."""

from dlab.studies.run import (
    COURSE_STUDIES,
    DIRECTIONS,
    MODES,
    SQLITE_HEADER,
    Plan,
    Point,
    Progress,
    Study,
    StudyNotFinished,
    StudyResult,
    StudySettings,
    Value,
    _claim,  # noqa: F401 - tests reach it here until the split
    _enqueue_missing,  # noqa: F401 - tests reach it here until the split
    _heartbeat,  # noqa: F401 - tests reach it here until the split
    _Job,  # noqa: F401 - tests reach it here until the split
    _trial_rows,  # noqa: F401 - tests reach it here until the split
    as_text,
    check_storage_url,
    chosen_and_test_choice,
    encode,
    execute,
    fail_stale,
    make_plan,
    masked,
    open_storage,
    plot_field,
    record,
    run_study,
    storage_lock,
)

__all__ = ["COURSE_STUDIES", "DIRECTIONS", "MODES", "SQLITE_HEADER", "Plan", "Point",
           "Progress", "Study", "StudyNotFinished", "StudyResult", "StudySettings", "Value",
           "as_text", "check_storage_url", "chosen_and_test_choice", "encode", "execute",
           "fail_stale", "make_plan", "masked", "open_storage", "plot_field", "record",
           "run_study", "storage_lock"]
