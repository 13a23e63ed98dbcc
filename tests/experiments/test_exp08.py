import json
import pickle

import numpy as np
import pytest
import torch

from dlab.errors import DataError
from dlab.models import count_parameters
from dlab.models.cnn import ConvNet, convnet_hand_count
from dlab.registry import PROGRAMS
from dlab.running import run_program

# Counted by hand for the manual's network: 64x64x3 input, 3x3 convolutions with
# padding='same' (the size is kept) and 2x2 pooling (halved):
# 64 -conv-> 64 -pool-> 32 -conv-> 32 -pool-> 16 -conv-> 16 -pool-> 8; 8 * 8 * 128 = 8192.
HAND_64 = {
    "conv1": (3 * 3 * 3 + 1) * 32,       # 896
    "conv2": (3 * 3 * 32 + 1) * 64,      # 18,496
    "conv3": (3 * 3 * 64 + 1) * 128,     # 73,856
    "dense": (8192 + 1) * 128,           # 1,048,704
    "out": (128 + 1) * 10,               # 1,290
}
TOTAL_64 = 1_143_242
# 32x32x3 (8.2): 32 -> 16 -> 8 -> 4; 4 * 4 * 128 = 2048 inputs to the dense layer.
TOTAL_32 = 896 + 18_496 + 73_856 + (2048 + 1) * 128 + 1_290  # 356,810


def test_hand_count_constants():
    assert sum(HAND_64.values()) == TOTAL_64
    assert HAND_64["dense"] == 1_048_704
    assert TOTAL_32 == 356_810


def test_torch_convnet_counts_and_shapes():
    net = ConvNet(64, 3, 10)
    assert count_parameters(net) == TOTAL_64
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    denses = [m for m in net.classifier if isinstance(m, torch.nn.Linear)]
    counts = [sum(p.numel() for p in m.parameters()) for m in convs + denses]
    assert counts == list(HAND_64.values())
    assert net.feature_shape == (128, 8, 8)
    assert net(torch.zeros(2, 3, 64, 64)).shape == (2, 10)
    assert count_parameters(ConvNet(32, 3, 10)) == TOTAL_32
    rows = convnet_hand_count(64)
    assert [r[2] for r in rows if r[2]] == list(HAND_64.values())
    assert rows[-3] == ("flatten", (8192,), 0)
    assert [r[1][0] for r in rows if r[0].startswith(("conv", "pool"))] == [64, 32, 32, 16,
                                                                             16, 8]


def test_keras_convnet_equals_torch_with_copied_weights():
    from dlab.keras_programs import convnet as kc

    model = kc.build_convnet(64, 3, 10)
    assert model.count_params() == TOTAL_64
    assert kc.build_convnet(32, 3, 10).count_params() == TOTAL_32
    # the manual's layers: 'same' convolutions, ReLU and softmax as separate Activation layers
    assert [c.padding for c in model.layers if type(c).__name__ == "Conv2D"] == ["same"] * 3
    assert [type(c).__name__ for c in model.layers].count("Activation") == 5
    assert [r[2] for r in kc.layer_rows(model) if r[2]] == list(HAND_64.values())
    net = ConvNet(64, 3, 10)
    kc.copy_to_torch(model, net)
    x = np.random.default_rng(0).random((3, 64, 64, 3), dtype=np.float32)
    assert kc.compare_outputs(model, net, x) < 1e-5
    other = ConvNet(64, 3, 10)  # different random weights: clearly different outputs
    assert kc.compare_outputs(model, other, x) > 1e-3


def test_keras_weights_do_not_depend_on_when_keras_was_imported():
    """Importing Keras imports rich, which draws from Python's `random`; the layers' initial
    weights are seeded from `random`. A model built right after seeding must get the same
    weights in a fresh process (a notebook kernel) as in one that imported Keras earlier."""
    import random
    import subprocess
    import sys

    from dlab.keras_programs import convnet as kc
    from dlab.keras_programs.regression import to_numpy

    code = ("import random; random.seed(0)\n"
            "from dlab.keras_programs import convnet as kc\n"
            "from dlab.keras_programs.regression import to_numpy\n"
            "print(repr(float(to_numpy(kc.build_convnet(32).layers[0].weights[0].value).sum())))")
    fresh = subprocess.run([sys.executable, "-c", code], capture_output=True, text=True,
                           check=True).stdout.split()[-1]
    kc.build_convnet(32)                                  # Keras imported in this process
    random.seed(0)
    here = float(to_numpy(kc.build_convnet(32).layers[0].weights[0].value).sum())
    assert float(fresh) == here


def test_summary_program_smoke(tmp_path):
    out = run_program(PROGRAMS["8.1"], profile="smoke", out=tmp_path, quiet=True, device="cpu")
    assert out.status == "ok"
    m = out.metrics
    assert m["parameters_by_hand"] == m["parameters_keras"] == m["parameters_torch"] == TOTAL_64
    assert m["counts_equal"] is True and m["max_probability_difference"] < 1e-5
    assert m["max_probability_difference_own_weights"] > 1e-3  # the check can tell them apart
    assert m["parameters_at_32x32"] == TOTAL_32
    assert [t["met"] for t in out.targets] == [True, True]
    summary = (out.folder / "keras_summary.txt").read_text()
    assert "1,143,242" in summary and "1,048,704" in summary  # no column cropped
    assert max(len(line) for line in summary.splitlines()) <= 80
    assert "the two are the same network" in (out.folder / "record.md").read_text()


def test_summary_record_without_copied_weights(tmp_path, monkeypatch):
    from dlab.keras_programs import convnet as kc

    monkeypatch.setattr(kc, "copy_to_torch", lambda model, net: None)  # weights not copied
    out = run_program(PROGRAMS["8.1"], profile="smoke", out=tmp_path, quiet=True, device="cpu")
    m = out.metrics
    assert m["counts_equal"] is True and m["max_probability_difference"] > 1e-3
    assert [t["met"] for t in out.targets] == [True, False]
    record = (out.folder / "record.md").read_text()
    assert "the two are the same network" not in record
    assert "not shown to be the same network" in record


def test_train_program_on_digit_stand_in(tmp_path):
    out = run_program(PROGRAMS["8.2"], profile="smoke", out=tmp_path, quiet=True, device="cpu",
                      sets={"source": "mnist", "epochs": "2", "train_limit": "300"})
    assert out.status == "ok"
    meta = json.loads((out.folder / "metrics.json").read_text())
    assert "MNIST" in meta["record"]["stand_in"] and "CIFAR-10" in meta["record"]["stand_in"]
    assert "stand" in (out.folder / "record.md").read_text().split("\n## ")[0].lower()
    m = meta["metrics"]
    assert m["stand_in"] is True and m["train_size"] + m["val_size"] == 300
    assert m["val_size"] == 30                            # 10%, stratified: 3 a class
    # the bundled test digits are sorted by class: a stratified sample keeps every class
    assert m["test_size"] == 200 and set(m["test_class_counts"].values()) == {20}
    assert m["majority_test_accuracy"] == pytest.approx(0.1)
    assert m["test_accuracy"] > m["majority_test_accuracy"] + 0.15
    assert m["parameters"] == TOTAL_32                    # the manual's 'same' network
    # the baseline: logistic regression on the same 270 training images, C on validation
    assert m["logreg_C"] in (0.01, 0.1) and m["logreg_test_accuracy"] > 0.6
    for key, ref in (("test_accuracy_vs_logreg", "logreg_test_accuracy"),
                     ("test_accuracy_vs_majority", "majority_test_accuracy")):
        diff = m[key]
        assert diff["estimate"] == pytest.approx(m["test_accuracy"] - m[ref])
        assert diff["low"] <= diff["estimate"] <= diff["high"] and diff["n"] == 200
    analysis = " ".join(meta["record"]["analysis"])
    assert "against the pixel logistic regression's" in analysis and "95% CI" in analysis
    assert [t["met"] for t in meta["targets"]] == ["not applicable"] * 3  # smoke: none apply
    model = json.loads((out.folder / "model.json").read_text())
    assert model["input"]["size"] == [32, 32] and model["input"]["channels"] == 3
    assert model["input"]["source_size"] == [28, 28]
    # pixels / 255 and nothing else, as the manual's program
    assert model["input"]["mean"] == [0.0] * 3 and model["input"]["std"] == [1.0] * 3
    assert (out.folder / "examples.png").is_file()        # the data step's example images


def _fake_cifar(root, n=40):
    folder = root / "cifar-10-batches-py"
    folder.mkdir(parents=True)
    rng = np.random.default_rng(0)
    for name in [f"data_batch_{i}" for i in range(1, 6)] + ["test_batch"]:
        with open(folder / name, "wb") as fh:
            pickle.dump({b"data": rng.integers(0, 256, (n, 3072), dtype=np.uint8),
                         b"labels": (np.arange(n) % 10).tolist()}, fh)
    with open(folder / "batches.meta", "wb") as fh:
        pickle.dump({b"label_names": [f"c{i}".encode() for i in range(10)]}, fh)


def test_train_program_uses_cifar10_when_present(tmp_path):
    with pytest.raises(DataError, match="CIFAR-10 not found"):
        run_program(PROGRAMS["8.2"], profile="smoke", out=tmp_path / "runs", quiet=True,
                    device="cpu", data_dir=tmp_path / "empty", sets={"source": "cifar10"})
    _fake_cifar(tmp_path / "data")
    out = run_program(PROGRAMS["8.2"], profile="smoke", out=tmp_path / "runs", quiet=True,
                      device="cpu", data_dir=tmp_path / "data")
    meta = json.loads((out.folder / "metrics.json").read_text())
    assert meta["record"]["stand_in"] is None and meta["metrics"]["data"] == "CIFAR-10"
    assert meta["metrics"]["train_size"] + meta["metrics"]["val_size"] == 200
    model = json.loads((out.folder / "model.json").read_text())
    assert model["input"]["source_size"] is None and model["classes"][0] == "c0"
