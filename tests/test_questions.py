"""The question bank: every manual question answered, files validated, evidence links real."""

import json
import re
import string
from pathlib import Path

import pytest

from dlab.questions import (
    EvidenceError,
    QuestionFileError,
    load,
    load_all,
    load_file,
    lookup,
    parse,
)
from dlab.registry import EXPERIMENTS, PROGRAMS

# (pre-lab, viva) questions per experiment, counted in the printed manual
MANUAL_COUNTS = {1: (5, 4), 2: (3, 4), 3: (3, 4), 4: (3, 4), 5: (4, 4), 6: (4, 5), 7: (4, 4),
                 8: (4, 4), 9: (4, 4), 10: (4, 5), 11: (4, 4), 12: (5, 5), 13: (4, 5),
                 14: (4, 7), 15: (4, 5), 16: (4, 5)}
MANUAL = Path(__file__).resolve().parents[2] / "shared" / "seed" / "000_2dcb498ceddd9a60.txt"


def test_every_manual_question_is_answered_in_order():
    sets = load_all()
    assert [q.experiment for q in sets] == list(range(1, 17))
    assert sum(v[0] for v in MANUAL_COUNTS.values()) == 63
    assert sum(v[1] for v in MANUAL_COUNTS.values()) == 73
    ids = []
    for q in sets:
        pre, viva = MANUAL_COUNTS[q.experiment]
        assert (q.count("pre-lab"), q.count("viva")) == (pre, viva), q.source
        for kind, n in (("pre-lab", pre), ("viva", viva)):
            assert [e.number for e in q.entries if e.kind == kind] == list(range(1, n + 1))
        assert q.title == EXPERIMENTS[q.experiment - 1].title and len(q.aim) > 40
        for e in q.entries:
            ids.append(e.id)
            assert len(e.question) > 10 and e.question.endswith(("?", ".")), e.id
            # one to five sentences (a sentence ends with . ! or ? then a space)
            sentences = len(re.findall(r"[.!?](?:\s|$)", e.answer))
            assert len(e.answer) >= 60 and 1 <= sentences <= 6, (e.id, sentences)
            if e.kind == "ours":
                assert e.manual is None and e.section in ("pre-lab", "viva")
            else:
                assert e.section == e.kind and e.manual in ("right", "incomplete", "wrong")
                assert (e.manual_note is None) == (e.manual == "right"), e.id
    assert len(ids) == len(set(ids))
    assert sum(q.count("ours") for q in sets) >= 16  # at least one of ours per experiment


def _verdicts():
    return {e.id: e.manual for q in load_all() for e in q.entries if e.manual}


def test_verdicts_include_the_known_wrong_answers():
    verdict = _verdicts()
    # NOT with threshold 0 always fires and "NAND" with weights 1, threshold 2 is AND
    assert verdict["1.V4"] == "wrong"
    assert verdict["14.V4"] == "wrong"  # calls NADE's sequential sampling efficient
    note = load(1).entries[8].manual_note
    assert "AND" in note and "threshold 0" in note


def test_verdicts_neither_too_harsh_nor_too_kind():
    """Slips and half-answers are incomplete, not wrong; answers that say what matters are
    right; answers that claim something false as their reason are not right."""
    verdict = _verdicts()
    for entry in ("4.V4", "14.V5", "14.V7", "15.V3", "9.P4", "11.V1"):
        assert verdict[entry] == "incomplete", entry
    for entry in ("1.P2", "3.P3", "6.V2"):
        assert verdict[entry] == "right", entry
    counts = {v: list(verdict.values()).count(v) for v in ("right", "incomplete", "wrong")}
    assert counts == {"right": 106, "incomplete": 27, "wrong": 3}


def test_questions_keep_the_manual_s_question():
    """A reworded question still asks what the manual asks, false premise included; the
    answer says where the premise is false."""
    by_id = {e.id: e for q in load_all() for e in q.entries}
    assert "faster during inference" in by_id["15.V3"].question
    assert "MADE" in by_id["14.V7"].question and "premise is false" in by_id["14.V7"].answer
    assert "both symbolic and numerical" in by_id["4.V1"].question
    assert "numerical computation only" in by_id["4.V1"].answer


def test_corrected_answers_say_the_corrected_thing():
    by_id = {e.id: e for q in load_all() for e in q.entries}
    assert "Row LSTM's" in by_id["15.P2"].answer and "triangle" in by_id["15.P2"].answer
    assert "ReLU after its first" in by_id["15.O1"].question
    assert "Adam" in by_id["9.O2"].answer and "grow ever larger" not in by_id["9.O2"].answer
    assert "hardly move" not in by_id["5.O1"].answer
    assert "bounded range" in by_id["1.V2"].answer
    assert "∂a_1/∂W_1" in by_id["2.P2"].answer and "W_l" in by_id["2.P2"].answer
    assert "saturating" in by_id["16.V2"].answer
    assert "1,143,242" in by_id["8.O1"].answer and "356,810" in by_id["8.O1"].answer
    for entry in ("16.P3", "16.O1"):  # the run's label is not quoted as a finding
        assert "stability" not in str(by_id[entry].evidence.keys)



@pytest.mark.skipif(not MANUAL.is_file(), reason="the printed manual is not beside the repository")
def test_written_in_our_own_words():
    """No run of 7 words from the manual's questions and answers appears in ours."""

    def words(text):
        return re.findall(r"[a-z0-9']+", text.lower())

    def shingles(ws, n=7):
        return {" ".join(ws[i:i + n]) for i in range(len(ws) - n + 1)}

    manual = set()
    for line in MANUAL.read_text(encoding="utf-8").splitlines():
        if "TO BE FILLED" not in line and not line.startswith(("Course", "import", "from")):
            manual |= shingles(words(line))
    copied = []
    for q in load_all():
        for e in q.entries:
            for field in (e.question, e.answer):
                copied += [(e.id, s) for s in shingles(words(field)) & manual]
    assert copied == []


# ------------------------------------------------------------------------ validation

GOOD = '''
experiment = 3
aim = "An aim long enough to say what the experiment is for, in a sentence or two."

[[entry]]
kind = "pre-lab"
number = 1
question = "Why?"
answer = "Because."
manual = "right"

[[entry]]
kind = "viva"
number = 1
question = "How?"
answer = "Like this."
manual = "wrong"
manual_note = "It says otherwise."

[entry.evidence]
program = "3.2"
keys = { rmse = "metrics.test_rmse" }
text = "RMSE {rmse:.2f}."
'''


def test_a_good_file_parses():
    q = parse(GOOD, "exp03.toml")
    assert [e.id for e in q.entries] == ["3.P1", "3.V1"]
    assert q.entries[1].evidence.fill({"metrics": {"test_rmse": 3.14159}}) == "RMSE 3.14."


@pytest.mark.parametrize("old, new, message", [
    ('answer = "Because."', 'answer = ""', "entry 1: `answer` must be a non-empty string"),
    ('manual = "right"', 'manual = "fine"', "entry 1.manual: 'fine' must be one of"),
    ('manual_note = "It says otherwise."', "", "entry 2: `manual_note` must be"),
    ('number = 1\nquestion = "How?"', 'number = 2\nquestion = "How?"',
     "viva numbers are [2], expected 1 to 1"),
    ('program = "3.2"', 'program = "3.3"', "entry 2.evidence.program: '3.3' is not"),
    ('text = "RMSE {rmse:.2f}."', 'text = "RMSE {mse:.2f}."', "must be exactly the names"),
    ('keys = { rmse = "metrics.test_rmse" }', 'keys = { rmse = "test_rmse" }',
     "keys.rmse: the path must start with"),
    ('kind = "pre-lab"', 'kind = "prelab"', "entry 1.kind: 'prelab' must be one of"),
    ('question = "Why?"', 'question = "Why?"\nsection = "viva"', "only questions of ours"),
    ("experiment = 3", "experiment = 17", "`experiment` must be a number from 1 to 16"),
    ("experiment = 3", "experiment = 3\ncolour = 1", "unknown field `colour`"),
    ("[[entry]]", "[[entry]", "not valid TOML"),
])
def test_a_bad_file_names_the_file_and_field(old, new, message):
    assert old in GOOD
    with pytest.raises(QuestionFileError) as err:
        parse(GOOD.replace(old, new, 1), "exp03.toml")
    assert str(err.value).startswith("exp03.toml"), str(err.value)
    assert message in str(err.value)


def test_load_file_reports_the_path(tmp_path):
    bad = tmp_path / "exp03.toml"
    bad.write_text(GOOD.replace('manual = "right"', ""))
    with pytest.raises(QuestionFileError, match=re.escape(f"{bad}: entry 1.manual")):
        load_file(bad)


def test_lookup_finds_keys_with_dots_spaces_and_patterns():
    run = {"metrics": {"final_loss": {"0.01": 0.5, "30": 0.9},
                       "train": {"SGD (batch 1)": 1.0, "full batch (426)": 2.0},
                       "none": None}}
    assert lookup(run, "metrics.final_loss.0.01") == 0.5
    assert lookup(run, "metrics.final_loss.30") == 0.9
    assert lookup(run, "metrics.train.full batch*") == 2.0
    for path in ("metrics.final_loss.0.1", "metrics.train.*", "metrics.none",
                 "metrics.final_loss.30.x"):
        with pytest.raises(EvidenceError):
            lookup(run, path)


# ---------------------------------------------------------- evidence against real runs


def _linked():
    return [(q.experiment, e) for q in load_all() for e in q.entries if e.evidence]


@pytest.fixture(scope="session")
def smoke_runs(tmp_path_factory):
    """One smoke run of every program an evidence link reads."""
    from dlab.running import run_program

    root = tmp_path_factory.mktemp("question-runs")
    for pid in sorted({e.evidence.program for _, e in _linked()}):
        run_program(PROGRAMS[pid], profile="smoke", out=root, quiet=True, device="cpu")
    return root


def test_every_evidence_link_fills_from_a_smoke_run(smoke_runs):
    from dlab.runs import latest_run

    root = smoke_runs
    linked = _linked()
    assert len(linked) >= 40
    for _, e in linked:
        folder = latest_run(root, e.evidence.program, status="ok")
        assert folder is not None, f"{e.id}: program {e.evidence.program} has no ok smoke run"
        summary = json.loads((folder / "metrics.json").read_text())
        try:
            text = e.evidence.fill(summary)
        except EvidenceError as exc:
            pytest.fail(f"{e.id}: {exc}")
        assert "{" not in text and text.startswith(f"In your run of {e.evidence.program}")
        # every value the run wrote shows up in the sentence, formatted as the template says
        for name, path in e.evidence.keys.items():
            value = lookup(summary, path)
            spec = next(f[2] for f in string.Formatter().parse(e.evidence.text) if f[1] == name)
            shown = ("yes" if value else "no") if isinstance(value, bool) else format(value, spec)
            assert shown in text, (e.id, name, shown, text)



# ------------------------------------------- which metric each evidence sentence quotes

# Every evidence-backed answer and the keys its sentence is filled from (program, then
# metrics.json paths without "metrics."; "config." paths are settings). Reviewed: each
# metric bears on the answer it backs.
EVIDENCE = {
    "1.P3": "1.1 all_gates_correct n_inputs",
    "1.V2": "1.1 xor_candidates_tried xor_single_unit_solutions config.max_weight",
    "1.V4": "1.1 manual_nand_computes_and xor_single_unit_solutions two_layer_xor_correct",
    "1.O1": "1.1 functions_by_one_unit.1 functions_by_one_unit.2",
    "1.O2": "1.2 equation kind quadratics_checked quadratic_max_rel_error",
    "2.V4": "2.1 gradcheck_max_rel_error",
    "2.O1": "2.2 raw_features.largest_raw_input raw_features.saturated_fraction "
            "raw_features.first_layer_change raw_features.standardised_first_layer_change",
    "2.O2": "2.2 test_accuracy test_auc majority_accuracy logreg_accuracy logreg_auc",
    "3.V3": "3.2 test_rmse test_r2 unit baseline_linear.rmse baseline_mean.rmse",
    "3.O1": "3.1 manual_mse_standardised manual_mse_in_units",
    "4.V3": "1.2 newton_polynomials_checked newton_max_rel_error",
    "4.V4": "1.2 config.max_degree newton_polynomials_checked newton_max_rel_error",
    "4.O1": "4.1 manual_defect.train_loss manual_defect.test_accuracy test_accuracy",
    "4.O2": "4.1 parameters",
    "5.P2": "5.1 final_loss.0.01 final_loss.0.5 final_loss.30",
    "5.P4": "5.1 rising_steps.0.01 rising_steps.30",
    "5.V4": "5.1 test_accuracy.0.01 test_accuracy.0.5 test_accuracy.30",
    "5.O1": "5.1 config.bias_lr_demo bias_a_moved bias_a2_moved bias_a_final_loss "
            "bias_a2_final_loss",
    "5.O2": "5.2 test_accuracy n_test repeat_accuracy_mean repeat_accuracy_sd",
    "6.P4": "6.1 final_loss.SGD* final_loss.mini-batch* final_loss.full batch*",
    "6.V2": "6.1 config.epochs config.minibatch sgd_final_loss minibatch_final_loss "
            "fullbatch_final_loss train_seconds.SGD* train_seconds.mini-batch* "
            "train_seconds.full batch*",
    "6.O1": "6.2 largest_raw_input torch.raw_accuracy torch.standardised_accuracy",
    "7.V3": "5.1 small_lr good_lr large_lr small_final_loss good_final_loss "
            "large_final_loss large_rising_steps",
    "7.O1": "7.1 gradcheck_max_rel_error",
    "7.O2": "7.1 manual_net.max_abs_output_minus_half manual_net.gradient_norm_at_start "
            "manual_net.glorot_gradient_norm_at_start",
    "7.O3": "7.2 fd_max_rel_error 2-4-1.solved 2-4-4-1.solved config.n_seeds",
    "8.V2": "8.1 flatten_size config.input_size",
    "8.O1": "8.1 parameters_by_hand parameters_keras parameters_torch",
    "9.O1": "9.1 all_shapes_right flatten_sizes.32 flatten_sizes.64",
    "9.O3": "9.2 val_accuracy majority_baseline confusion_matrix",
    "10.V3": "10.2 longest_adding input_gradient_early_over_late.@longest_adding.rnn."
             "early_over_late input_gradient_early_over_late.@longest_adding.lstm."
             "early_over_late",
    "10.O1": "10.1 test_mse naive_mse noise_variance",
    "11.V1": "10.2 config.forget_bias longest_adding input_gradient_early_over_late."
             "@longest_adding.lstm.early_over_late input_gradient_early_over_late."
             "@longest_adding.rnn.early_over_late",
    "11.O1": "11.1 pytorch_rmse persistence_rmse seasonal_rmse test_days_scored",
    "11.O2": "11.2 test_mse mean_prediction_mse noise_floor_mse",
    "12.O1": "12.1 test_mse pca_test_mse mean_image_test_mse config.latent",
    "13.V1": "13.1 probe_encoder probe_pixels probe_pca probe_train_digits",
    "13.O1": "13.1 psnr_noisy psnr_denoised psnr_gain",
    "13.O2": "13.1 manual_features_per_image pixels_per_image bottleneck",
    "14.P4": "14.1 made_single_mask_nll made_test_nll config.made_masks",
    "14.V5": "14.1 nade_seconds made_seconds nade_epochs_run made_epochs_run nade_params "
             "made_params",
    "14.O1": "14.1 markov_made_mass autoencoder_mass markov_entropy markov_made_test_nll",
    "15.V1": "15.1 pixelcnn_test_nll pixelrnn_test_nll bernoulli_test_nll",
    "15.V3": "15.1 pixelcnn_seconds_per_epoch pixelrnn_seconds_per_epoch "
             "pixelcnn_sample_seconds pixelrnn_sample_seconds",
    "15.O1": "15.1 manual_pixelcnn_test_nll pixelcnn_test_nll config.manual_channels",
    "16.P3": "16.1 mlp.frechet_relative mlp.d_fake dcgan.frechet_relative",
    "16.V2": "16.1 mlp.d_real mlp.d_fake dcgan.d_real dcgan.d_fake",
    "16.V3": "16.1 mlp.frechet dcgan.frechet frechet_floor",

    "16.O1": "16.1 mlp.frechet frechet_floor frechet_ceiling mlp.mean_confidence "
             "real_confidence mlp.class_entropy_fraction",
}


def _quoted(entry):
    paths = [p.removeprefix("metrics.") for p in entry.evidence.keys.values()]
    return f"{entry.evidence.program} {' '.join(paths)}"


def test_every_evidence_sentence_quotes_the_listed_metrics():
    linked = {e.id: _quoted(e) for q in load_all() for e in q.entries if e.evidence}
    assert linked == EVIDENCE


def _module_names(program: str) -> tuple[list[re.Pattern], set[str]]:
    """Read from the source of the program's module, without importing it: every string
    it could write as a metrics key (its string literals, and its f-strings with each
    {...} read as any text), and every field of its classes (the settings)."""
    import ast
    import importlib.util

    module = PROGRAMS[program].entry.split(":")[0]
    tree = ast.parse(Path(importlib.util.find_spec(module).origin).read_text("utf-8"))
    names, fields = [], set()
    for node in ast.walk(tree):
        if isinstance(node, ast.Constant) and isinstance(node.value, str):
            names.append(re.compile(re.escape(node.value)))
        elif isinstance(node, ast.JoinedStr):  # 3+ characters of its own: "{kind}_nll"
            fixed = "".join(v.value for v in node.values if isinstance(v, ast.Constant))
            if len(fixed.replace(" ", "")) >= 3:

                names.append(re.compile("".join(
                    re.escape(v.value) if isinstance(v, ast.Constant) else "[^ ]+"
                    for v in node.values)))
        elif isinstance(node, ast.ClassDef):
            fields |= {n.target.id for n in node.body
                       if isinstance(n, ast.AnnAssign) and isinstance(n.target, ast.Name)}
    return names, fields


def test_every_quoted_metric_is_one_its_program_writes():
    """Each name in a quoted path (numbers, patterns and @references aside) is a string
    the program's module writes, and each config path a field of its settings."""
    for entry_id, line in EVIDENCE.items():
        program, *paths = line.split(" ")
        names, fields = _module_names(program)
        assert not any(n.fullmatch("no_such_metric") for n in names), program

        for path in paths:
            if path.startswith("config."):
                assert path.removeprefix("config.") in fields, (entry_id, path)
                continue
            for part in path.split("."):
                if part.startswith("@") or "*" in part or part.isdigit():
                    continue
                assert any(n.fullmatch(part) for n in names), (entry_id, program, part)

