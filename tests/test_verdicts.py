"""Targets and comparative sentences: verdicts follow the numbers, in both directions."""

import json

import pytest

from dlab.registry import PROGRAMS, Implementation, ProgramInfo
from dlab.report.record import lab_blocks, to_markdown, verdict_of
from dlab.running import run_program
from dlab.uncertainty import Difference
from dlab.verdicts import NOT_APPLICABLE, Target, compare, judge, overall, verdict_line


def test_threshold_targets_met_and_missed():
    t = Target("acc", at_least=0.9)
    assert t.judge({"acc": 0.95})["met"] is True
    assert t.judge({"acc": 0.85})["met"] is False
    assert t.judge({"acc": 0.9})["met"] is True  # inclusive
    assert t.judge({})["met"] is False and "not measured" in t.judge({})["why"]
    assert t.judge({"acc": "nan"})["met"] is False
    assert Target("loss", at_most=1.0).judge({"loss": 1.5})["met"] is False


def test_reference_targets_compare_with_another_metric():
    t = Target("test_mse", below="pca_mse", exact="a test of the rule")
    v = t.judge({"test_mse": 0.02, "pca_mse": 0.017})
    assert v["met"] is False and v["reference_value"] == 0.017
    assert t.judge({"test_mse": 0.01, "pca_mse": 0.017})["met"] is True
    assert t.judge({"test_mse": 0.017, "pca_mse": 0.017})["met"] is False  # strict
    assert t.judge({"test_mse": 0.01})["met"] is False  # no reference measured
    assert Target("auc", above="base.auc", exact="test").judge(
        {"auc": 0.8, "base": {"auc": 0.5}})["met"]


def test_equals_profiles_and_conditions():
    assert Target("n", equals=0).judge({"n": 0})["met"] is True
    assert Target("n", equals=0).judge({"n": 1})["met"] is False
    assert Target("flag", equals=False).judge({"flag": True})["met"] is False
    quick = Target("acc", at_least=0.9, profiles=("quick",))
    assert quick.judge({"acc": 0.1}, "smoke")["met"] == NOT_APPLICABLE
    assert quick.judge({"acc": 0.1}, "quick")["met"] is False
    gated = Target("collapsed", equals=False, when=lambda m: m["judge_acc"] >= 0.95,
                   when_text="the judge reaches 95%")
    v = gated.judge({"collapsed": True, "judge_acc": 0.5})
    assert v["met"] == NOT_APPLICABLE and "95%" in v["why"]
    assert gated.judge({"collapsed": True, "judge_acc": 0.99})["met"] is False
    assert gated.judge({"collapsed": True})["met"] == NOT_APPLICABLE  # condition unmeasurable
    with pytest.raises(ValueError):
        Target("x", at_least=1, below="y")


def test_overall_and_line():
    met = {"name": "a", "rule": "a >= 1", "value": 2, "met": True}
    missed = {"name": "b", "rule": "b < c", "value": 3, "reference": "c",
              "reference_value": 2, "met": False}
    na = {"name": "c", "rule": "c = 0", "value": 1, "met": NOT_APPLICABLE}
    assert overall([met]) == "met"
    assert overall([met, missed]) == "missed"
    assert overall([na]) == "n/a" and overall([]) == "n/a"
    line = verdict_line([met, missed])
    assert line.startswith("missed") and "MISSED: b = 3 vs c = 2" in line


@pytest.mark.parametrize("a,b,better,verdict", [
    (0.8, 1.0, "lower", "better"),
    (1.2, 1.0, "lower", "worse"),
    (0.9, 0.8, "higher", "better"),
    (0.7, 0.8, "higher", "worse"),
])
def test_compare_direction_and_sign(a, b, better, verdict):
    d = a - b
    sure = Difference(d, d - 0.01, d + 0.01, "test", 10)
    sentence, word = compare("test MSE", "A", a, "B", b, diff=sure, better=better)
    assert word == verdict and sentence.endswith(f"{verdict}.")
    wide = Difference(d, -1.0, 1.0, "test", 10)  # the same gap inside its noise
    sentence, word = compare("test MSE", "A", a, "B", b, diff=wide, better=better)
    assert word == "not distinguishable" and "better" not in sentence


def test_compare_equal_values_is_not_better():
    sentence, word = compare("NLL", "A", 1.0, "B", 1.0,
                             diff=Difference.exact(1.0, 1.0, "two counts"))
    assert word == "not distinguishable" and "difference +0" in sentence


def _toy(targets, metrics, claims=()):
    from dataclasses import dataclass

    @dataclass
    class Cfg:
        epochs: int = 1

    def run(cfg, ctx):
        ctx.metrics.update(metrics)
        for text, holds, otherwise in claims:
            ctx.claim(text, holds, otherwise, value=1)

    impl = Implementation(config=Cfg, run=run, targets=tuple(targets))
    info = ProgramInfo(id="0.9", title="toy", aim="a toy", entry="tests:toy")
    object.__setattr__(info, "load", lambda: impl)  # ProgramInfo is frozen
    return info


def test_run_writes_targets_and_verdict(tmp_path):
    info = _toy([Target("score", at_least=0.5)], {"score": 0.2},
                claims=[("A beats B.", False, "A does not beat B."), ("C holds.", False, None)])
    out = run_program(info, profile="smoke", out=tmp_path, quiet=True, device="cpu")
    saved = json.loads((out.folder / "metrics.json").read_text())
    assert saved["targets"][0]["met"] is False and saved["verdict"] == "missed"
    assert verdict_of(saved) == "missed"
    analysis = saved["record"]["analysis"]
    assert "A does not beat B." in analysis and "A beats B." not in analysis
    assert "C holds." not in analysis
    record = (out.folder / "record.md").read_text()
    assert "**Targets: missed** (profile smoke)." in record
    assert "| score &gt;= 0.5 | 0.2 | 0.5 | missed |" in record  # Markdown cells are escaped


def test_lab_summary_counts_verdicts(tmp_path):
    runs = tmp_path / "runs"
    for pid, met in (("1.1", True), ("1.2", False)):
        folder = runs / pid / "20260101-000000-smoke-seed0"
        folder.mkdir(parents=True)
        summary = {"program": pid, "status": "ok", "profile": "smoke", "seed": 0,
                   "device": "cpu", "timings": {"seconds": 1.0, "started": "2026-01-01"},
                   "metrics": {}, "targets": [{"name": "x", "rule": "x >= 1", "value": 1,
                                               "threshold": 1, "met": met, "why": ""}],
                   "record": {}}
        (folder / "metrics.json").write_text(json.dumps(summary))
    latest = {pid: next((runs / pid).iterdir()) for pid in ("1.1", "1.2")}
    md = to_markdown(lab_blocks(runs, latest))
    assert f"**1 of {len(PROGRAMS)} programs meet their targets**; 1 missed" in md
    assert "| [1.2](#p1-2) | " in md and "| ok | smoke | missed |" in md


def test_judge_keeps_order():
    ts = [Target("a", at_least=1), Target("b", at_most=1)]
    assert [v["name"] for v in judge(ts, {"a": 2, "b": 2})] == ["a", "b"]


def _studies():
    """Every study the five study programs build, at every profile."""
    from dlab.config import build
    from dlab.experiments import exp12_autoencoder as e12
    from dlab.experiments import exp13_denoising as e13
    from dlab.experiments import exp14_nade_made as e14
    from dlab.experiments import exp15_pixel as e15
    from dlab.experiments import exp16_gan as e16

    makers = {"12.2": lambda c: [e12.ae_study(c)], "13.2": lambda c: [e13.dae_study(c)],
              "14.2": lambda c: [e14.density_study(c)],
              "15.2": lambda c: list(e15.pixel_studies(c).values()),
              "16.2": lambda c: [e16.gan_study(c)]}
    for pid, make in makers.items():
        impl = PROGRAMS[pid].load()
        for profile in ("smoke", "quick", "full"):
            for study in make(build(impl.config, impl.profiles, profile, None, pid)):
                yield pid, profile, study


def test_every_study_chooses_on_a_validation_metric():
    seen = set()
    for pid, profile, study in _studies():
        assert study.metric.startswith("val_"), (pid, profile, study.metric)
        seen.add(pid)
    assert seen == {"12.2", "13.2", "14.2", "15.2", "16.2"}


def test_a_study_whose_validation_and_test_disagree_picks_by_validation():
    from dlab.studies import Study, StudyResult, chosen_and_test_choice

    rows = [{"trial": 0, "status": "ok", "val_nll": 1.0, "test_nll": 3.0},
            {"trial": 1, "status": "ok", "val_nll": 2.0, "test_nll": 0.5}]
    chosen, by_test = chosen_and_test_choice(rows, "val_nll", "test_nll")
    assert chosen["trial"] == 0 and by_test["trial"] == 1
    study = Study(program="14.1", base_profile="smoke", base={}, space={"x": (1, 2)},
                  metric="val_nll", direction="minimize", report=("test_nll",))
    result = StudyResult(study=study, name="s", folder=None, storage="", plan=None, rows=rows,
                         trials=[], ran=2, seconds=0.0, workers=1)
    assert result.best["trial"] == 0
    assert result.column("test_nll") == "test_nll (not used for selection)"


def test_record_shows_a_comparison_inside_its_noise_as_not_shown(tmp_path):
    from dataclasses import dataclass

    @dataclass
    class Cfg:
        epochs: int = 1

    def run(cfg, ctx):
        ctx.metrics.update({"acc": 0.80, "base": 0.78})
        diff = Difference(0.02, -0.01, 0.05, "paired bootstrap over 300 test examples", 300)
        ctx.metrics["acc_vs_base"] = diff.as_dict()
        ctx.compare("accuracy", "The net", 0.80, "the baseline", 0.78, diff=diff,
                    better="higher")
        ctx.background("Deeper nets can fit more.", "Goodfellow et al. 2016, ch. 6")

    impl = Implementation(config=Cfg, run=run, targets=(
        Target("acc", above="base", interval="acc_vs_base"),))
    info = ProgramInfo(id="0.9", title="toy", aim="a toy", entry="tests:toy")
    object.__setattr__(info, "load", lambda: impl)
    out = run_program(info, profile="smoke", out=tmp_path, quiet=True, device="cpu")
    saved = json.loads((out.folder / "metrics.json").read_text())
    assert saved["verdict"] == "missed" and saved["targets"][0]["shown"] is False
    claim = saved["record"]["claims"][0]
    assert claim["verdict"] == "not distinguishable" and claim["holds"] is False
    record = (out.folder / "record.md").read_text()
    assert "| not shown |" in record and "95% CI -0.01 to +0.05" in record
    assert ("**Background** (not measured by this run; Goodfellow et al. 2016, ch. 6): "
            "Deeper nets can fit more.") in record
    assert "not distinguishable" in " ".join(saved["record"]["analysis"])
