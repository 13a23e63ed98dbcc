from dataclasses import dataclass

import pytest

from dlab import config
from dlab.errors import UsageError
from dlab.registry import EXPERIMENTS, PROGRAMS, resolve


def test_sixteen_experiments_thirty_two_programs():
    assert len(EXPERIMENTS) == 16
    assert len(PROGRAMS) == 32
    assert [e.number for e in EXPERIMENTS] == list(range(1, 17))
    assert list(PROGRAMS) == [f"{n}.{k}" for n in range(1, 17) for k in (1, 2)]
    titles = [p.title for p in PROGRAMS.values()]
    assert len(set(titles)) == 32
    assert all(len(p.aim) > 40 for p in PROGRAMS.values())


@pytest.mark.parametrize("ids, expected", [
    (["4"], ["4.1", "4.2"]),
    (["exp04"], ["4.1", "4.2"]),
    (["EXP4"], ["4.1", "4.2"]),
    (["4.2", "1"], ["1.1", "1.2", "4.2"]),
    (["16.1", "16.1"], ["16.1"]),
])
def test_resolve_ids(ids, expected):
    assert [p.id for p in resolve(ids)] == expected


def test_resolve_all_and_unknown():
    assert len(resolve(["all"])) == 32
    for bad in ["17", "0", "4.3", "x", "exp", ""]:
        with pytest.raises(UsageError, match="unknown program id"):
            resolve([bad])


def test_unbuilt_program_says_so():
    import dataclasses

    built = PROGRAMS["1.1"]
    assert built.implemented
    unbuilt = dataclasses.replace(built, entry="dlab.experiments.exp01_mcculloch_pitts:NOT_BUILT")
    missing = dataclasses.replace(built, entry="dlab.experiments.exp99_none:X")
    for p in (unbuilt, missing):
        assert not p.implemented
        with pytest.raises(UsageError, match="not built yet"):
            p.load()


@dataclass
class Cfg:
    epochs: int = 5
    lr: float = 0.01
    widths: tuple[int, ...] = (64, 32)
    name: str = "a"
    flag: bool = False
    limit: int | None = None


def test_build_applies_profile_then_sets_with_types():
    cfg = config.build(Cfg, {"smoke": {"epochs": 1}}, "smoke",
                       {"lr": "0.5", "widths": "8,4,2", "flag": "true", "limit": "none"})
    assert cfg == Cfg(epochs=1, lr=0.5, widths=(8, 4, 2), flag=True, limit=None)
    assert config.build(Cfg, {}, "quick").epochs == 5
    assert config.build(Cfg, {}, "full", {"limit": "3"}).limit == 3


@pytest.mark.parametrize("sets, message", [
    ({"lr": "abc"}, "expected float"),
    ({"epochs": "2.5"}, "expected int"),
    ({"flag": "maybe"}, "expected bool"),
    ({"widths": "8,four"}, "expected a list of int values with commas, e.g. --set widths=64,32"),
    ({"nope": "1"}, "no setting 'nope'"),
    ({"epochs": "-1"}, "epochs must be positive"),
    ({"epochs": "0"}, "epochs must be positive"),
    ({"lr": "0"}, "lr must be positive"),
])
def test_build_rejects_bad_values(sets, message):
    with pytest.raises(UsageError, match=message):
        config.build(Cfg, {}, "quick", sets)


def test_lists_as_dlab_show_prints_them_are_accepted():
    for text in ("(8, 4, 2)", "[8,4,2]", "8, 4, 2", "8,4,2"):
        assert config.build(Cfg, {}, "quick", {"widths": text}).widths == (8, 4, 2)


def test_a_bad_choice_in_a_list_names_the_choices():
    from dlab.registry import PROGRAMS

    impl = PROGRAMS["10.2"].load()
    with pytest.raises(UsageError, match="cells=lsmt: must be one of rnn, lstm, gru"):
        config.build(impl.config, impl.profiles, "quick", {"cells": "rnn,lsmt"}, "10.2")


def test_unknown_profile_and_bad_pairs():
    with pytest.raises(UsageError, match="unknown profile"):
        config.build(Cfg, {}, "huge")
    with pytest.raises(UsageError, match="key=value"):
        config.parse_sets(["epochs"])
    assert config.parse_sets(["a=1", "b = x=y"]) == {"a": "1", "b": "x=y"}


def test_from_dict_restores_tuples():
    saved = config.to_dict(Cfg(widths=(3, 2)))
    saved["widths"] = list(saved["widths"])  # as JSON stores it
    assert config.from_dict(Cfg, saved) == Cfg(widths=(3, 2))
