"""The sixteen experiments and their thirty-two programs.

This module is imported by `dlab list` and `dlab show`, so it must stay light: it
names each program's implementation as a string ("module:attribute") and imports it
only when the program is run.

Ids accepted everywhere: "4" or "exp04" (the experiment: both programs), "4.1"
(one program), "all" (every program).
"""

from __future__ import annotations

import importlib
import importlib.util
import re
from collections.abc import Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

from dlab.errors import UsageError


@dataclass(frozen=True)
class Implementation:
    """What an experiment module exposes for one program.

    config:   a dataclass type; its defaults are the `quick` profile.
    run:      `run(config, ctx)`; records metrics, figures and sentences on `ctx`.
    profiles: overrides of the defaults per profile: {"smoke": {...}, "full": {...}}.
    targets:  `dlab.verdicts.Target`s checked against the run's metrics when it ends.
    crippled: settings (`--set` values, at the quick profile) that leave the program
              barely trained, e.g. {"epochs": 1, "train_limit": 300}: a run with them
              must miss a target (tests/test_crippled.py runs every one), or a string
              saying why no such run exists (nothing is trained).
    """

    config: type
    run: Callable[[Any, Any], None]
    profiles: dict[str, dict[str, Any]] = field(default_factory=dict)
    targets: tuple[Any, ...] = ()
    crippled: dict[str, Any] | str | None = None


@dataclass(frozen=True)
class ProgramInfo:
    id: str  # "4.1"
    title: str
    aim: str
    entry: str | None = None  # "dlab.experiments.exp04_mnist_mlp:MNIST_MLP"
    defect: str | None = None  # what the printed manual gets wrong, when it does
    headline: str | None = None  # the metric shown in summaries
    target: str | None = None  # what the headline should reach, in words

    @property
    def experiment(self) -> int:
        return int(self.id.split(".")[0])

    @property
    def implemented(self) -> bool:
        """Whether the program's module defines it, found without importing anything.

        `dlab list` must stay fast (no torch import), so this reads the module's source
        for the line `NAME = Implementation(`.
        """
        if self.entry is None:
            return False
        module, attr = self.entry.split(":")
        try:
            spec = importlib.util.find_spec(module)
        except ModuleNotFoundError:
            return False
        if spec is None or spec.origin is None:
            return False
        return f"\n{attr} = Implementation(" in Path(spec.origin).read_text(encoding="utf-8")

    def load(self) -> Implementation:
        if not self.implemented:
            raise UsageError(
                f"program {self.id} ({self.title}) is not built yet; "
                "`dlab list` shows which programs can run"
            )
        module, attr = self.entry.split(":")
        return getattr(importlib.import_module(module), attr)


@dataclass(frozen=True)
class ExperimentInfo:
    number: int
    title: str
    programs: tuple[ProgramInfo, ...]

    @property
    def key(self) -> str:
        return f"exp{self.number:02d}"


def _p(id: str, title: str, aim: str, **kw: Any) -> ProgramInfo:
    if kw.get("defect"):
        kw["defect"] = " ".join(kw["defect"].split())
    return ProgramInfo(id=id, title=title, aim=" ".join(aim.split()), **kw)


EXPERIMENTS: tuple[ExperimentInfo, ...] = (
    ExperimentInfo(1, "McCulloch-Pitts neuron and tensor basics", (
        _p("1.1", "McCulloch-Pitts threshold units",
           """Build logic gates from threshold units with binary inputs, integer weights
           and a threshold; show by exhaustive search that no single unit computes XOR,
           and that two layers of units do.""",
           entry="dlab.experiments.exp01_mcculloch_pitts:MCCULLOCH_PITTS",
           defect="""The manual's NAND unit (weights 1, 1 and threshold 2) fires only when
           both inputs are 1: it computes AND, not NAND.""",
           headline="xor_single_unit_solutions",
           target="0 single-unit XOR solutions; every gate and the two-layer XOR right; "
                  "the manual's NAND shown to be AND"),
        _p("1.2", "Quadratic roots with tensor operations",
           """Solve a x^2 + b x + c = 0 with tensor operations for real, repeated and
           complex roots and the degenerate a = 0 case, check against numpy.roots, and
           find roots of polynomials of any degree with Newton steps whose derivative
           comes from automatic differentiation.""",
           entry="dlab.experiments.exp01_mcculloch_pitts:QUADRATIC",
           headline="max_rel_error_vs_numpy",
           target="every root within 1e-8 (relative) of numpy.roots"),
    )),
    ExperimentInfo(2, "Multi-layer perceptron", (
        _p("2.1", "XOR with a 2-4-1 network written from scratch",
           """Train a 2-4-1 sigmoid network on XOR with hand-written initialisation,
           forward pass, backward pass and loss; verify the gradients by finite
           differences and report how often training succeeds over ten seeds.""",
           entry="dlab.experiments.exp02_mlp:XOR_SCRATCH",
           headline="success_rate", target="every seed solves XOR; gradients match finite differences to 1e-6; dlab.scratch agrees to 1e-10"),
        _p("2.2", "Credit-risk MLP with layer weights shown",
           """Classify good and bad credit risks in the German credit data with an MLP,
           showing every layer's weights as the network trains, and compare test
           accuracy and ROC AUC with a majority-class baseline and logistic regression.""",
           entry="dlab.experiments.exp02_mlp:CREDIT",
           headline="test_auc", target="mean test accuracy over 5 splits above the majority class's and AUC above 0.5, each by its paired interval (quick, full)",
           defect="""The manual feeds raw, unstandardised features (ages, credit amounts
           in the thousands) to sigmoid units."""),
    )),
    ExperimentInfo(3, "Regression with a deep network", (
        _p("3.1", "Regression pipeline (Keras)",
           """Impute, standardise and split a regression table (Auto MPG) with the
           preprocessing fit on the training rows only, and fit a 64-32-1 network in
           Keras 3; report test error in the target's own units.""",
           entry="dlab.experiments.exp03_regression:REGRESSION_KERAS",
           headline="test_rmse", target="test MSE below the linear-regression baseline's by its paired bootstrap interval (quick, full)",
           defect="""The manual scales the target together with the features before
           splitting, leaking test rows into training and reporting MSE in standardised
           units."""),
        _p("3.2", "Regression network in PyTorch with early stopping",
           """Train the same network in PyTorch with mini-batches and early stopping on
           a validation split; report test MSE, MAE and R^2 in miles per gallon next to
           a linear-regression baseline.""",
           entry="dlab.experiments.exp03_regression:REGRESSION_TORCH",
           headline="test_rmse", target="test MSE below the linear-regression baseline's by its paired bootstrap interval (quick, full)"),
    )),
    ExperimentInfo(4, "MLP image classifier", (
        _p("4.1", "784-128-64-10 MLP on MNIST",
           """Train a 784-128-64-10 multi-layer perceptron on MNIST digits with
           cross-entropy and Adam for five epochs, and measure test accuracy.""",
           entry="dlab.experiments.exp04_mnist_mlp:MNIST_MLP",
           headline="test_accuracy",
           target="above the majority class; >= 0.90 on the bundled digits, >= 0.97 on full "
                  "MNIST (quick, full); the manual's optimizer stays near chance (<= 0.2)",
           defect="""The manual creates the optimizer from `model.parameters()` in the
           same statement that creates `model`: a NameError in a fresh interpreter; in a
           notebook that still holds an older `model`, the optimizer holds that one. The
           manual printed a flat loss of 2.30 and 11.81% accuracy."""),
        _p("4.2", "Measured learning curves",
           """Record training and test loss and accuracy after every epoch and plot the
           measured curves.""",
           entry="dlab.experiments.exp04_mnist_mlp:CURVES",
           headline="test_accuracy",
           target="measured curves; test accuracy >= 0.89 and above the majority class "
                  "by its paired interval",
           defect="The manual plots invented numbers instead of measured ones."),
    )),
    ExperimentInfo(5, "Gradient descent", (
        _p("5.1", "Gradient-descent updates from backpropagation",
           """Apply W -= a dW and b -= a db to every layer of a small network with
           gradients from backpropagation on real data, and compare a too-small, a good
           and a too-large learning rate on one plot.""",
           entry="dlab.experiments.exp05_gradient_descent:GD_SCRATCH",
           headline="best_lr", target="over 5 initialisations: the good rate ends below the start and below the too-small rate, and its mean loss <= 0.15; the too-large rate's loss rises more often (paired intervals)",
           defect="""The manual's bias update uses the square of the learning rate, and
           its gradients are random numbers rather than backpropagated ones."""),
        _p("5.2", "Full-batch gradient descent on Iris (PyTorch)",
           """Train the manual's softmax regression (one Linear(4, 3) layer) on Iris with
           full-batch torch.optim.SGD and report test accuracy and the confusion matrix.""",
           entry="dlab.experiments.exp05_gradient_descent:GD_IRIS",
           headline="test_accuracy", target="mean accuracy over 6 splits >= 0.85, and its interval not wholly below the manual's 0.9333 (quick, full)"),
    )),
    ExperimentInfo(6, "Stochastic gradient descent", (
        _p("6.1", "SGD, mini-batch and full-batch descent compared",
           """Train one network on one data set with single-sample, mini-batch and
           full-batch gradient descent; compare loss against epochs and against wall
           time, and draw the weights before and after.""",
           entry="dlab.experiments.exp06_sgd:SGD_COMPARE",
           headline="sgd_final_loss", target="each method's final loss below its loss after one epoch (paired interval over 3 starts); the worst mean final loss <= 0.06",
           defect="""The manual applies one update of random weights with random
           'gradients': no data, no loss, nothing stochastic."""),
        _p("6.2", "Normalisation for a binary classifier (Keras and PyTorch)",
           """Classify breast-cancer cases with a 32-16-1 network with and without
           feature standardisation (fit on the training split) and compare test
           accuracy.""",
           entry="dlab.experiments.exp06_sgd:NORMALISATION",
           headline="torch.standardised_accuracy", target="standardised accuracy >= 0.94 and above raw inputs by the interval over seeds, PyTorch and Keras (quick, full)"),
    )),
    ExperimentInfo(7, "Backpropagation: forward and backward pass", (
        _p("7.1", "A Keras-like network library in NumPy",
           """Use dlab.scratch (Sequential, Dense, losses, optimizers, fit, evaluate) to
           train XOR, plot the loss and check gradients by finite differences.""",
           entry="dlab.experiments.exp07_backprop:KERAS_LIKE",
           headline="success_rate",
           target="gradcheck <= 1e-6; XOR solved in >= 90% of seeds (quick, full); the "
                  "manual's 2-2-1 network shown to stay at 0.5",
           defect="""The manual calls backward() before any forward() (AttributeError),
           and starts its 2-2-1 network from 0.01-scale weights."""),
        _p("7.2", "A second hidden layer",
           """Write out and check the forward and backward equations for two hidden
           layers, and compare one and two hidden layers on the same task.""",
           entry="dlab.experiments.exp07_backprop:TWO_HIDDEN",
           headline="fd_max_rel_error",
           target="finite differences <= 1e-6; dlab.scratch's gradients <= 1e-12; one and "
                  "two hidden layers each solve XOR in >= 90% of seeds",
           defect="The manual's version defines a training function it never calls."),
    )),
    ExperimentInfo(8, "Convolutional network", (
        _p("8.1", "Three-block ConvNet and its parameter count",
           """Build the 3 x (conv 3x3, ReLU, max-pool) network with 32/64/128 filters,
           dense 128 and softmax 10 for 64x64x3 input in Keras and PyTorch, and check
           the parameter counts against a hand count.""",
           entry="dlab.experiments.exp08_convnet:CONVNET_SUMMARY",
           headline="parameters_torch",
           target="hand count (1,143,242, the manual's 'same' padding), Keras and PyTorch equal; outputs with copied "
                  "weights within 1e-5"),
        _p("8.2", "Training the ConvNet on colour images",
           """Train the ConvNet on 32x32 colour images in ten classes for ten epochs with
           batch 64 and Adam; report test accuracy and the training and validation
           curves.""",
           entry="dlab.experiments.exp08_convnet:CONVNET_TRAIN",
           headline="test_accuracy",
           target="above a tuned logistic regression on the same images by the paired interval (quick, full); >= 0.65 on CIFAR-10 (full)"),
    )),
    ExperimentInfo(9, "Cats and dogs", (
        _p("9.1", "A CNN for any input size",
           """Build a three-convolution CNN with pooling, dropout and two dense layers
           whose flatten size follows the input size.""",
           entry="dlab.experiments.exp09_cats_dogs:ANY_SIZE_CNN",
           headline="all_shapes_right",
           target="right shapes at every input size; the manual's network only at 32x32",
           defect="The manual hard-codes 128*4*4, which fits only 32x32 input."),
        _p("9.2", "Training from an image folder",
           """Load a root/<class>/*.jpg folder, augment, split, train with a correct loop
           and report validation accuracy, the confusion matrix and the misclassified
           images.""",
           entry="dlab.experiments.exp09_cats_dogs:IMAGE_FOLDER",
           headline="val_accuracy", target="above the majority class and the nearest class-mean image, each by its paired interval (quick, full)",
           defect="""The manual's loop never zeroes gradients and uses an undefined
           name."""),
    )),
    ExperimentInfo(10, "Recurrent networks", (
        _p("10.1", "Next-value prediction of a noisy sine",
           """Predict the next value of a noisy sine wave from a window of 20 with a
           simple RNN; chronological split; compare test MSE with repeating the last
           value and with the noise variance.""",
           entry="dlab.experiments.exp10_rnn:SINE_RNN",
           headline="test_mse", target="test_mse below naive_mse (repeat the last value) by its paired interval and at most 2 times the noise variance, at quick and full"),
        _p("10.2", "RNN, LSTM and GRU on long-memory tasks",
           """Compare RNN, LSTM and GRU of equal width on tasks that need long memory,
           over several seeds, with the mean and spread of test MSE.""",
           entry="dlab.experiments.exp10_rnn:LONG_MEMORY",
           headline="longest_adding_best_gated_over_baseline",
           target="a gated cell's mean test MSE on the longest adding problem at most a tenth of predicting 1, at quick and full",
           defect="""The manual's data generator uses X in its own assignment (a crash);
           it trains for 20 full-batch steps and scores on its training data."""),
    )),
    ExperimentInfo(11, "LSTM", (
        _p("11.1", "Forecasting daily temperature",
           """Forecast Seattle's daily maximum temperature from the previous 60 days with
           two LSTM(50) layers in Keras and PyTorch, with the scaler fit on the training
           period; compare RMSE and MAE in degrees with persistence and seasonal
           baselines.""",
           entry="dlab.experiments.exp11_lstm:WEATHER",
           headline="pytorch_rmse", target="pytorch_rmse below persistence_rmse (tomorrow = today) and seasonal_rmse; keras_rmse below persistence_rmse; each by its bootstrap interval over test days; at quick and full",
           defect="""The manual fits the scaler on all data, test period included, and
           does not compare its forecast with 'tomorrow equals today'."""),
        _p("11.2", "LSTM sequence model with a DataLoader",
           """Train a two-layer LSTM of width 50 on a synthetic sequence task through a
           DataLoader and compare held-out predictions with the truth.""",
           entry="dlab.experiments.exp11_lstm:SEQUENCE_LSTM",
           headline="test_mse", target="test_mse below mean_prediction_mse by its paired interval and at most a tenth of it, at quick and full",
           defect="""The manual never compares its model with predicting the mean of the
           targets."""),
    )),
    ExperimentInfo(12, "Autoencoder", (
        _p("12.1", "A 784-128-64-32 autoencoder",
           """Train a 784-128-64-32-64-128-784 autoencoder on MNIST, measure test
           reconstruction error against PCA with 32 components, and show originals next
           to reconstructions.""",
           entry="dlab.experiments.exp12_autoencoder:AUTOENCODER",
           headline="test_mse", target="test_mse below pca_test_mse (PCA with as many components as the code) by its paired interval, at quick and full"),
        _p("12.2", "Autoencoder hyperparameter study",
           """Vary depth, width, activation, latent size and learning rate; choose by
           reconstruction error on validation digits and report the test error.""",
           entry="dlab.experiments.exp12_autoencoder:AE_STUDY",
           headline="best_test_mse", target="the chosen setting (by val_mse) beats the worst beyond the seed-noise band and the mean image by its interval; whether any setting beats PCA"),
    )),
    ExperimentInfo(13, "Denoising autoencoder", (
        _p("13.1", "Convolutional denoising autoencoder",
           """Train a convolutional autoencoder from noisy to clean digits; measure PSNR
           before and after denoising and the quality of its bottleneck features with a
           linear probe.""",
           entry="dlab.experiments.exp13_denoising:DENOISING",
           headline="psnr_denoised", target="psnr_denoised above psnr_noisy and a Gaussian/median filter; probe_encoder above probe_pca; each by its paired interval, at quick and full",
           defect="""The manual's 'features' are 7x7x128 = 6,272 numbers per image, more
           than the 784 pixels: there is no bottleneck."""),
        _p("13.2", "Denoising autoencoder study",
           """Vary bottleneck size, depth and activation; choose by reconstruction
           error on validation digits; tabulate test error and linear-probe accuracy.""",
           entry="dlab.experiments.exp13_denoising:DAE_STUDY",
           headline="best_test_mse", target="the setting chosen by val_mse beats the filter's PSNR by its interval; the seed-noise band says what the study can rank"),
    )),
    ExperimentInfo(14, "NADE and MADE", (
        _p("14.1", "Autoregressive density estimation with NADE and MADE",
           """Fit NADE and MADE to binarised MNIST and to binary data of known entropy;
           report exact test negative log-likelihood in nats against an
           independent-Bernoulli baseline and draw samples.""",
           entry="dlab.experiments.exp14_nade_made:DENSITY",
           headline="made_test_nll",
           target="NADE and MADE below the Bernoulli test NLL (paired intervals), <= 125 nats at quick, within 0.1 "
                  "nats of the true Markov chain; each sums to 1 (to 1e-5); at most 90 nats "
                  "on full MNIST",
           defect="""The manual's 'NADE' and 'MADE' are plain autoencoders trained with
           MSE: no masks and no likelihood."""),
        _p("14.2", "NADE and MADE study",
           """Vary depth, width, activation and masking strategy (order, number of masks)
           and tabulate test NLL.""",
           entry="dlab.experiments.exp14_nade_made:DENSITY_STUDY",
           headline="best_val_made_nll",
           target="the setting chosen on validation NLL beats 14.1's default at the same budget (interval widened by the seed band) and reaches <= 125 nats"),
    )),
    ExperimentInfo(15, "PixelRNN and PixelCNN", (
        _p("15.1", "PixelCNN and PixelRNN on binarised MNIST",
           """Fit a PixelCNN with masked convolutions and a Row LSTM PixelRNN; report
           test NLL in nats and draw images pixel by pixel.""",
           entry="dlab.experiments.exp15_pixel:PIXEL",
           headline="pixelcnn_test_nll",
           target="PixelCNN and PixelRNN below the Bernoulli test NLL (paired intervals), <= 115 nats at quick; PixelCNN below the "
                  "manual's PixelCNN (paired interval); at most 85 nats on full MNIST",
           defect="""The manual has no PixelRNN, no sampling and no likelihood; its
           PixelCNN has one ReLU, after its first masked layer, and none between its five
           mask-B layers, and is trained against grey levels."""),
        _p("15.2", "PixelCNN and PixelRNN study",
           """Vary depth and kernel size (PixelCNN) and the recurrent unit (PixelRNN);
           report NLL, time per epoch and samples.""",
           entry="dlab.experiments.exp15_pixel:PIXEL_STUDY",
           headline="best_val_pixelcnn_nll",
           target="the settings chosen on validation NLL beat 15.1's default at the same budget (interval widened by the seed band) and reach <= 115 nats"),
    )),
    ExperimentInfo(16, "Generative adversarial network", (
        _p("16.1", "MLP GAN and DCGAN on MNIST",
           """Train the manual's MLP GAN, the same GAN stabilised (batch norm in G,
           spectral norm in D, one-sided label smoothing) and a DCGAN on MNIST; draw
           samples from fixed noise each epoch and score them with a Frechet distance in the features of an
           MNIST classifier and with the spread of generated classes.""",
           entry="dlab.experiments.exp16_gan:GAN",
           headline="dcgan.frechet",
           target=("judge at 95% (bundled) / 99% (full) accuracy and calibrated on real "
                   "digits, noise and a synthetic collapsed set; DCGAN judged near real with "
                   "a recognisable rate >= 0.7 (quick, full); stabilised MLP GAN beats the "
                   "manual's by its interval"),
           defect="""The manual measures no quality at all: no score of its samples and no
           check for mode collapse."""),
        _p("16.2", "GAN study",
           """Vary learning rate, batch size and the two architectures; tabulate the
           quality score and stability.""",
           entry="dlab.experiments.exp16_gan:GAN_STUDY",
           headline="best_frechet",
           target=("a table of Frechet distance, recognisable rate and verdict that separates "
                   "settings (at least one stable and one collapsed or diverged, quick and "
                   "full); the "
                   "setting chosen on validation digits, its test Frechet reported")),
    )),
)

PROGRAMS: dict[str, ProgramInfo] = {p.id: p for e in EXPERIMENTS for p in e.programs}

_EXP_ID = re.compile(r"^(?:exp)?0*(\d{1,2})$", re.IGNORECASE)
_PROG_ID = re.compile(r"^(?:exp)?0*(\d{1,2})\.([12])$", re.IGNORECASE)


def experiment(number: int) -> ExperimentInfo:
    return EXPERIMENTS[number - 1]


def resolve(ids: list[str] | tuple[str, ...]) -> list[ProgramInfo]:
    """Turn ids ("all", "4", "exp04", "4.1") into programs, in course order, once each."""
    if not ids:
        raise UsageError("no program id given; try `dlab run 1` or `dlab list`")
    chosen: dict[str, ProgramInfo] = {}
    for raw in ids:
        text = raw.strip()
        if text.lower() == "all":
            chosen.update(PROGRAMS)
            continue
        m = _PROG_ID.match(text)
        if m and 1 <= int(m.group(1)) <= len(EXPERIMENTS):
            pid = f"{int(m.group(1))}.{m.group(2)}"
            chosen[pid] = PROGRAMS[pid]
            continue
        m = _EXP_ID.match(text)
        if m and 1 <= int(m.group(1)) <= len(EXPERIMENTS):
            for p in experiment(int(m.group(1))).programs:
                chosen[p.id] = p
            continue
        raise UsageError(
            f"unknown program id {raw!r}; use 1-16, exp01-exp16, 1.1-16.2 or 'all' "
            "(see `dlab list`)"
        )
    order = list(PROGRAMS)
    return sorted(chosen.values(), key=lambda p: order.index(p.id))
