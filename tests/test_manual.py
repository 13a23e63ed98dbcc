"""The manual's programs against dlab's (dlab.manual): every program has its facts, and
every parameter count in them is the count of a network built here, the manual's from
its layer lists and dlab's from the experiments' and models' public builders."""

import numpy as np
import pytest
import torch
from torch import nn

from dlab.manual import ASPECTS, FIDELITY, UNEXPLAINED, fidelity, table
from dlab.models import count_parameters
from dlab.registry import PROGRAMS


def _count(model) -> int:
    if isinstance(model, dict):  # exp02's NumPy parameters
        return int(sum(np.asarray(v).size for v in model.values()))
    if callable(getattr(model, "count_params", None)):  # Keras and dlab.scratch
        return int(model.count_params())
    return count_parameters(model)


def _seq(*layers):
    return nn.Sequential(*layers)


def _keras():
    from dlab.keras_programs import load_keras

    return load_keras()


# ------------------------------------------------ the manual's networks, from its code

def _conv(c_in, c_out, k=3, **kw):
    return nn.Conv2d(c_in, c_out, k, **kw)


def _manual_convnet(size):  # Experiment 8: 'same' padding, three conv blocks
    keras = _keras()
    L = keras.layers
    layers = [keras.Input((size, size, 3))]
    for f in (32, 64, 128):
        layers += [L.Conv2D(f, (3, 3), padding="same", activation="relu"), L.MaxPooling2D()]
    layers += [L.Flatten(), L.Dense(128, activation="relu"), L.Dense(10, activation="softmax")]
    return keras.Sequential(layers)


def _manual_weather():
    keras = _keras()
    L = keras.layers
    return keras.Sequential([keras.Input((60, 1)), L.LSTM(50, return_sequences=True),
                             L.LSTM(50), L.Dense(25), L.Dense(1)])


def _manual_dae():
    keras = _keras()
    L = keras.layers
    inp = keras.Input((28, 28, 1))
    x = L.Conv2D(32, 3, padding="same")(inp)
    x = L.Conv2D(64, 3, padding="same", strides=2)(x)
    x = L.Conv2D(128, 3, padding="same", strides=2)(x)
    x = L.Conv2DTranspose(64, 3, padding="same", strides=2)(x)
    x = L.Conv2DTranspose(32, 3, padding="same", strides=2)(x)
    return keras.Model(inp, L.Conv2D(1, 3, padding="same")(x))


class _Recurrent(nn.Module):  # experiments 10 and 11: a recurrent layer and a linear head
    def __init__(self, cell, hidden, layers=1):
        super().__init__()
        self.rnn = cell(1, hidden, layers, batch_first=True)
        self.fc = nn.Linear(hidden, 1)


class _Pair(nn.Module):  # two models counted together
    def __init__(self, a, b):
        super().__init__()
        self.a, self.b = a, b


class _ManualNADE(nn.Module):  # experiment 14's "NADE": W, V and an extra bias b
    def __init__(self):
        super().__init__()
        self.W, self.V = nn.Linear(2, 10), nn.Linear(10, 2)
        self.b = nn.Parameter(torch.zeros(2))


MANUAL = {
    "14.1": lambda: _Pair(_ManualNADE(), _seq(nn.Linear(2, 10), nn.Linear(10, 2))),
    "2.1": lambda: _seq(nn.Linear(2, 4), nn.Linear(4, 1)),
    "2.2": lambda: _seq(nn.Linear(2, 4), nn.Linear(4, 1)),
    "4.1": lambda: _seq(nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 10)),
    "5.1": lambda: _seq(nn.Linear(4, 2), nn.Linear(2, 2)),
    "5.2": lambda: nn.Linear(4, 3),
    "6.1": lambda: _seq(nn.Linear(4, 2), nn.Linear(2, 2), nn.Linear(2, 2)),
    "6.2": lambda: _seq(nn.Linear(30, 32), nn.Linear(32, 16), nn.Linear(16, 1)),
    "7.1": lambda: _seq(nn.Linear(2, 2), nn.Linear(2, 1)),
    "7.2": lambda: _seq(nn.Linear(3, 4, bias=False), nn.Linear(4, 4, bias=False),
                        nn.Linear(4, 1, bias=False)),
    "8.1": lambda: _manual_convnet(64),
    "8.2": lambda: _manual_convnet(32),
    "9.1": lambda: _seq(_conv(3, 32, padding=1), _conv(32, 64, padding=1),
                        _conv(64, 128, padding=1), nn.Linear(128 * 4 * 4, 256),
                        nn.Linear(256, 10)),
    "9.2": lambda: _seq(_conv(3, 32, padding=1), _conv(32, 64, padding=1),
                        nn.Linear(64 * 32 * 32, 128), nn.Linear(128, 2)),
    "10.1": lambda: _Recurrent(nn.RNN, 16),
    "10.2": lambda: _Recurrent(nn.LSTM, 16),
    "11.1": _manual_weather,
    "11.2": lambda: _Recurrent(nn.LSTM, 50, 2),
    "12.1": lambda: _seq(nn.Linear(784, 128), nn.Linear(128, 64), nn.Linear(64, 32),
                         nn.Linear(32, 64), nn.Linear(64, 128), nn.Linear(128, 784)),
    "13.1": _manual_dae,
    "15.1": lambda: _seq(_conv(1, 64, 7), *[_conv(64, 64, 7) for _ in range(5)],
                         _conv(64, 1, 1)),
    "16.1": lambda: _seq(nn.Linear(100, 128), nn.Linear(128, 256), nn.Linear(256, 512),
                         nn.Linear(512, 784), nn.Linear(784, 512), nn.Linear(512, 256),
                         nn.Linear(256, 1)),
}


# ------------------------------------------ dlab's networks, from its public builders

def _exp(name):
    import importlib

    return importlib.import_module(f"dlab.experiments.{name}")


def _dlab(program):
    """dlab's network for `program`, each import only where it is needed."""
    from dlab.models.mlp import MLP

    builders = {
        "2.1": lambda: (e := _exp("exp02_mlp")).xor_net(e.XORConfig(), 0, 0),
        "4.1": lambda: MLP((784, *_exp("exp04_mnist_mlp").MLPConfig().hidden, 10)),
        "5.1": lambda: (e := _exp("exp05_gradient_descent")).gd_net(e.GDConfig(), 0, 0),
        "5.2": lambda: MLP((e := _exp("exp05_gradient_descent")).iris_sizes(e.IrisConfig()),
                           "relu"),
        "6.1": lambda: MLP((30, _exp("exp06_sgd").SGDConfig().hidden, 2), "tanh"),
        "6.2": _dlab_62,
        "7.1": lambda: (e := _exp("exp07_backprop")).manual_net(e.KerasLikeConfig(), 0, 0,
                                                                 "manual"),
        "7.2": lambda: (e := _exp("exp07_backprop")).depth_nets(e.TwoHiddenConfig(), 0,
                                                                 0)["2-4-4-1"],
        "8.1": lambda: _dlab_convnet(64),
        "8.2": lambda: _dlab_convnet(32),
        "9.1": _dlab_cnn,
        "10.1": lambda: _sequence("rnn", _exp("exp10_rnn").SineConfig().hidden),
        "10.2": lambda: _sequence("lstm", _exp("exp10_rnn").LongMemoryConfig().manual_hidden),
        "11.1": _dlab_weather,
        "11.2": lambda: _sequence("lstm", 50, 2),
        "12.1": _dlab_autoencoder,
        "13.1": _dlab_denoiser,
        "14.1": _dlab_density,
        "15.1": _dlab_manual_pixelcnn,
        "16.1": lambda: __import__("dlab.models.gan", fromlist=["x"]).build_gan("mlp"),
    }
    builders["4.2"], builders["9.2"] = builders["4.1"], builders["9.1"]
    return builders[program]()


def _sequence(cell, hidden, layers=1):
    from dlab.models.rnn import SequenceConfig, SequenceRegressor

    return SequenceRegressor(SequenceConfig(cell=cell, hidden=hidden, num_layers=layers))


def _dlab_62():
    from dlab.keras_programs import breast_cancer
    from dlab.models.mlp import MLP

    widths = _exp("exp06_sgd").NormConfig().widths
    return breast_cancer.build_model(30, widths), MLP((30, *widths, 1), "relu")


def _dlab_convnet(size):
    from dlab.keras_programs import convnet
    from dlab.models.cnn import ConvNet

    return convnet.build_convnet(size), ConvNet(size, 3, 10)


def _dlab_cnn():
    from dlab.models.cnn import AnySizeCNN

    return AnySizeCNN(32, 3, 2)


def _dlab_weather():
    from dlab.keras_programs import weather_lstm

    return weather_lstm.build_forecaster(60, 1, 50, 25)


def _dlab_autoencoder():
    from dlab.models.autoencoder import DenseAutoencoder, halving_widths

    c = _exp("exp12_autoencoder").AutoencoderConfig()
    return DenseAutoencoder(784, halving_widths(c.width, c.depth), c.latent)


def _dlab_denoiser():
    from dlab.models.autoencoder import ConvDenoisingAutoencoder

    c = _exp("exp13_denoising").DenoisingConfig()
    return ConvDenoisingAutoencoder(28, c.channels, c.depth, c.bottleneck)


def _dlab_density():
    e = _exp("exp14_nade_made")
    c = e.DensityConfig()
    return _Pair(e.build_model("nade", c, 784, 0), e.build_model("made", c, 784, 0))


def _dlab_manual_pixelcnn():
    e = _exp("exp15_pixel")
    c = e.PixelConfig()
    return e.ManualPixelCNN(c.manual_channels, c.manual_layers, c.manual_kernel)


def test_every_program_has_its_facts_in_words():
    assert list(FIDELITY) == list(PROGRAMS)
    for f in FIDELITY.values():
        assert tuple(a.name for a in f.aspects) == ASPECTS, f.program
        for a in f.aspects:
            assert a.manual.strip() and a.dlab.strip(), (f.program, a.name)
            assert a.why is None or len(a.why) > 10, (f.program, a.name)
        lines = f.lines()
        assert len(lines) == 4 and all(("as in the manual" in line) == a.same
                                       for line, a in zip(lines, f.aspects, strict=True))
    assert len(table()) == 32
    assert fidelity("8.1").same and not fidelity("14.1").same
    assert [a.same for a in fidelity("4.1").aspects] == [True, True, True, False]


@pytest.mark.parametrize("program", sorted(MANUAL, key=lambda p: [int(x) for x in p.split(".")]))
def test_the_manual_s_network_has_the_count_recorded(program):
    assert _count(MANUAL[program]()) == fidelity(program).manual_parameters


@pytest.mark.parametrize("program", ["2.1", "4.1", "4.2", "5.1", "5.2", "6.1", "6.2", "7.1",
                                     "7.2", "8.1", "8.2", "9.1", "9.2", "10.1", "10.2",
                                     "11.1", "11.2", "12.1", "13.1", "14.1", "15.1",
                                     "16.1"])

def test_dlab_s_network_has_the_count_recorded(program):
    """Every framework's build of it (Keras and PyTorch where both exist) has the count;
    where the parameters are as in the manual, that is the manual's count."""
    built = _dlab(program)
    f = fidelity(program)
    for model in built if isinstance(built, tuple) else (built,):
        assert _count(model) == f.dlab_parameters, (program, type(model).__name__)
    if next(a for a in f.aspects if a.name == "parameters").same:
        assert f.dlab_parameters == f.manual_parameters


def test_the_convnet_of_experiment_8_is_the_manual_s():
    """8.1 at 64x64: 8,192 numbers flattened, 1,143,242 parameters in Keras and PyTorch;
    356,810 at 32x32 (8.2)."""
    from dlab.models.cnn import ConvNet

    assert fidelity("8.1").manual_parameters == 1_143_242
    assert fidelity("8.2").manual_parameters == 356_810
    assert ConvNet(64, 3, 10).feature_shape == (128, 8, 8)


def test_the_regression_network_count_follows_the_formula():
    from dlab.keras_programs.regression import build_regressor, count_params
    from dlab.models.mlp import MLP

    for n in (5, 9):
        assert count_params(build_regressor(n)) == 64 * n + 2177
        assert count_parameters(MLP((n, 64, 32, 1))) == 64 * n + 2177


def test_unexplained_changes_are_marked_and_listed():
    flagged = {f.program for f in FIDELITY.values() if f.unexplained}
    assert flagged == set()
    for f in FIDELITY.values():
        for a in f.unexplained:
            assert a.why.startswith(UNEXPLAINED) and not a.same


def test_show_says_as_in_the_manual_or_why_not():
    from dlab.lab import show

    view = show("4.1")
    assert any(line.startswith("parameters: as in the manual (109,386)")
               for line in view.manual)
    assert "The manual's program" in view._repr_markdown_()
    changed = show("14.1").manual
    assert any("changed because" in line and "no density estimators" in line
               for line in changed)

