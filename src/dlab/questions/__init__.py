"""The manual's pre-lab and viva-voce questions, answered; one TOML file per experiment."""

from dlab.questions.bank import (
    Entry,
    Evidence,
    EvidenceError,
    QuestionFileError,
    QuestionSet,
    experiment_number,
    load,
    load_all,
    load_file,
    lookup,
    parse,
)

__all__ = ["Entry", "Evidence", "EvidenceError", "QuestionFileError", "QuestionSet",
           "experiment_number", "load", "load_all", "load_file", "lookup", "parse"]
