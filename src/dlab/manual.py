"""The printed manual's programs against dlab's, program by program.

For each of the 32 programs: what the manual's code builds or implies (its network, the
parameter count that network has, its training settings and its data), what dlab builds,
and for every aspect either "as in the manual" or why dlab differs. The manual's facts
were read from its code; the parameter counts are the ones its networks have (the manual
prints none), and tests/test_manual.py builds dlab's networks with the public builders
and the manual's networks from its layer lists and checks every count.

    from dlab.manual import fidelity, FIDELITY
    fidelity("8.1").lines()        # what `dlab show 8.1` prints under "The manual's program"
    [f.program for f in FIDELITY.values() if f.unexplained]   # changes with no reason yet

A `why` of None means dlab does what the manual does. A why that starts with
`UNEXPLAINED` marks a difference the program's code gives no reason for: either a reason
is recorded or the manual's setting comes back.
"""

from __future__ import annotations

from dataclasses import dataclass

UNEXPLAINED = "UNEXPLAINED"
ASPECTS = ("network", "parameters", "training", "data")


@dataclass(frozen=True)
class Aspect:
    name: str  # one of ASPECTS
    manual: str  # what the manual's program has
    dlab: str  # what dlab's program has
    why: str | None = None  # None: as in the manual; else why dlab differs

    @property
    def same(self) -> bool:
        return self.why is None


@dataclass(frozen=True)
class Fidelity:
    """One program's manual and dlab facts. `manual_parameters` / `dlab_parameters`: the
    parameter count of the manual's network and of dlab's version of it (None where the
    program has no network); `counted` says which network was counted."""

    program: str
    aspects: tuple[Aspect, ...]
    manual_parameters: int | None = None
    dlab_parameters: int | None = None
    counted: str = ""

    @property
    def same(self) -> bool:
        return all(a.same for a in self.aspects)

    @property
    def unexplained(self) -> list[Aspect]:
        return [a for a in self.aspects if a.why and a.why.startswith(UNEXPLAINED)]

    def lines(self) -> list[str]:
        """The comparison in words, one line per aspect."""
        out = []
        for a in self.aspects:
            if a.same:
                out.append(f"{a.name}: as in the manual ({a.manual})")
            elif a.why.startswith(UNEXPLAINED):
                out.append(f"{a.name}: changed with no reason recorded yet "
                           f"({a.why.removeprefix(UNEXPLAINED).lstrip(': ')}). The "
                           f"manual: {a.manual}. dlab: {a.dlab}.")
            else:
                out.append(f"{a.name}: changed because {a.why}. The manual: {a.manual}. "
                           f"dlab: {a.dlab}.")
        return out


    def row(self) -> tuple[str, str, str, str]:
        """(program, manual's facts, dlab's, same or changed-and-why) for a table."""
        manual = "; ".join(f"{a.name}: {a.manual}" for a in self.aspects)
        dlab = "; ".join(f"{a.name}: {a.dlab if not a.same else 'same'}" for a in self.aspects)
        verdict = ("same" if self.same else "changed: " + "; ".join(
            f"{a.name}: {a.why}" for a in self.aspects if not a.same))
        return self.program, manual, dlab, verdict


def _f(program: str, *aspects: tuple[str, str, str, str | None], manual_parameters=None,
       dlab_parameters=None, counted: str = "") -> Fidelity:
    return Fidelity(program, tuple(Aspect(*a) for a in aspects), manual_parameters,
                    dlab_parameters, counted)


KERAS3 = ("Keras 3 runs on the PyTorch backend (no TensorFlow install); layers and defaults "
          "are tf.keras's")
SEE_DEFECT = "the manual's program is wrong here (see its defect)"

FIDELITY: dict[str, Fidelity] = {f.program: f for f in (
    _f("1.1",
       ("network", "threshold units: AND weights 1, 1 threshold 2; OR weights 1, 1 "
        "threshold 1", "the same AND and OR units", None),
       ("parameters", "none learned", "none learned", None),
       ("training", "none; NOT 'threshold 0' and NAND 'weights 1, threshold 2' in its viva "
        "answer", "none; NOT and NAND built correctly and every unit found by search",
        "its NOT always fires and its NAND computes AND"),
       ("data", "the four input pairs", "the four pairs, and all 2^n inputs for n up to "
        "the setting n_inputs", "the search over units needs every truth table")),
    _f("1.2",
       ("network", "the quadratic formula on x^2 - 4x + 4 in TensorFlow",
        "the same formula with tensor operations in PyTorch, the same default quadratic",
        "dlab runs on PyTorch; the arithmetic is the same"),
       ("parameters", "none", "none", None),
       ("training", "none; prints the double root 2", "none; also complex, repeated and "
        "a = 0 roots, and Newton steps with autograd for any degree",
        "the formula alone fails for complex roots and a = 0"),
       ("data", "one equation", "the manual's equation and random ones checked against "
        "numpy.roots", "one equation shows nothing about accuracy")),
    _f("2.1",
       ("network", "2-4-1 sigmoid, standard-normal initial weights", "the same 2-4-1 "
        "sigmoid network written in NumPy", None),
       ("parameters", "17", "17", None),
       ("training", "full-batch gradient descent on the summed half squared error, lr 0.1, "
        "10,000 epochs, one seed", "the same steps written on the mean squared error of "
        "the 4 rows (lr 0.2 there is the manual's lr 0.1), 10,000 epochs, ten seeds",
        "seeds measure how often XOR is solved; the loss is written as a mean so that its "
        "value does not depend on the number of rows"),
       ("data", "the XOR truth table", "the XOR truth table", None),
       manual_parameters=17, dlab_parameters=17, counted="the 2-4-1 sigmoid network"),
    _f("2.2",
       ("network", "2-4-1 sigmoid on raw inputs", "a 16-8-1 ReLU MLP on standardised "
        "inputs, and the manual's all-sigmoid network on raw and standardised inputs",
        "raw amounts in the thousands saturate sigmoid units (the defect, measured)"),
       ("parameters", "17 (two inputs)", "depends on the German credit columns", "the data "
        "differ"),
       ("training", "gradient descent, lr 0.1, 10,000 epochs, summed squared error",
        "Adam lr 0.001, batch 32, up to 100 epochs with early stopping, cross-entropy",
        "a classifier trained with its own loss on a real table, stopped on validation "
        "rows"),
       ("data", "six invented rows (age, amount), no test rows", "the German credit data, "
        "25% stratified test rows, 20% of the rest for validation", "six rows cannot "
        "show that a credit model works"),
       manual_parameters=17, counted="the manual's 2-4-1 network"),
    _f("3.1",
       ("network", "Keras Dense 64 ReLU, 32 ReLU, 1", "the same", None),
       ("parameters", "64 n + 2,177 for n input columns", "the same", None),
       ("training", "Adam (lr 0.001), MSE, 100 epochs, batch 32", "the same in " + KERAS3,
        None),
       ("data", "a CSV imputed and standardised (target too) before an 80/20 split; the "
        "test rows as validation", "Auto MPG (or any CSV); 20% test rows; imputer and "
        "scaler fit on the training rows; validation carved from them; errors in the "
        "target's units", "the manual leaks test rows into training and reports "
        "standardised MSE (its defect, measured)")),
    _f("3.2",
       ("network", "PyTorch Linear 64, ReLU, 32, ReLU, 1", "the same", None),
       ("parameters", "64 n + 2,177 for n input columns", "the same", None),
       ("training", "Adam lr 0.001, MSE, 100 full-batch steps", "Adam lr 0.001, MSE, "
        "mini-batches of 32, up to 100 epochs with early stopping (patience 10)",
        "dlab's 3.2 adds mini-batches and early stopping on a validation split, which "
        "the manual's program never holds out"),
       ("data", "as 3.1 (scaled before the split)", "as dlab's 3.1", SEE_DEFECT)),
    _f("4.1",
       ("network", "784-128-64-10 ReLU MLP", "the same", None),
       ("parameters", "109,386", "109,386", None),
       ("training", "Adam lr 0.001, cross-entropy, batch 64, 5 epochs", "the same", None),
       ("data", "MNIST, pixels mapped by (x - 0.5) / 0.5", "full MNIST when present, else "
        "the bundled digits; pixels standardised with the training images' mean and "
        "standard deviation", "the bundled digits keep the quick profile offline; the "
        "scaling is another affine map of the pixels"),
       manual_parameters=109_386, dlab_parameters=109_386, counted="the 784-128-64-10 MLP"),
    _f("4.2",
       ("network", "none: the curves are invented numbers over 20 epochs", "4.1's MLP",
        "the manual plots no measurement (its defect)"),
       ("parameters", "none", "109,386", "a measured curve needs a trained network"),
       ("training", "none", "as 4.1, curves recorded after every epoch",
        "the manual plots no measurement"),
       ("data", "none", "as 4.1, with 10% of the training images held out for validation",
        "validation curves must not use the test images"),
       dlab_parameters=109_386, counted="4.1's MLP"),
    _f("5.1",
       ("network", "4-2-2 layers, weights 0.01 N(0, 1), zero biases", "a 4-2-2 network "
        "(tanh hidden layer)", "the manual never runs a forward pass, so it names no "
        "activation"),
       ("parameters", "16", "16", None),
       ("training", "one update with random 'gradients', lr 0.01, bias step lr^2 db",
        "gradient descent with back-propagated gradients at three rates; bias step lr db, "
        "the manual's lr^2 db measured beside it", "random numbers are not gradients and "
        "lr^2 is not the rule (its defect)"),
       ("data", "none", "Iris, versicolor against virginica, 30% stratified test rows",
        "an update rule needs a loss on data"),
       manual_parameters=16, dlab_parameters=16, counted="the 4-2-2 network"),
    _f("5.2",
       ("network", "one Linear(4, 3) layer (softmax regression)", "the same (a 4-16-3 "
        "ReLU network with --set model=mlp)", None),
       ("parameters", "15", "15", None),
       ("training", "full-batch SGD lr 0.01, cross-entropy, 1,000 steps", "the same, on 5 "
        "further splits as well (10 at full)", "one split of 30 flowers gives the printed "
        "0.9333 no interval; the repeats give it one"),
       ("data", "Iris standardised on all rows, then an 80/20 split", "Iris, 20% "
        "stratified test rows, scaler fit on the training rows, validation carved from "
        "them", "a scaler fit on all rows sees the test rows"),
       manual_parameters=15, dlab_parameters=15, counted="the classifier"),
    _f("6.1",
       ("network", "3 layers of 2 units on 4 inputs, random weights", "a 30-16-2 tanh "
        "network (dlab.scratch)", "the manual has no data and no loss (its defect); the "
        "network fits the breast-cancer data"),
       ("parameters", "22 numbers updated once", "530", "it follows from the network"),
       ("training", "one update with random 'gradients', lr 0.01", "SGD (1 row), "
        "mini-batch (32) and full-batch descent, 30 epochs each (full: 100)",
        "nothing stochastic happens in the manual's program"),
       ("data", "none", "breast cancer, 25% stratified test rows", "SGD needs data"),
       manual_parameters=22, dlab_parameters=530, counted="the network updated"),
    _f("6.2",
       ("network", "Keras Dense 32 ReLU, 16 ReLU, 1 sigmoid", "the same in Keras and in "
        "PyTorch", None),
       ("parameters", "1,537 for 30 inputs", "1,537 (breast cancer, 30 inputs)", None),
       ("training", "Adam, binary cross-entropy, 50 epochs, batch 10", "Adam lr 0.001, "
        "binary cross-entropy, 50 epochs, batch 32 at quick (full: the manual's 10), 3 "
        "seeds, raw against standardised", "the quick budget: batch 10 doubled the quick "
        "run's time (70 s against 35 s, measured on 2 cores); the seeds and the raw run "
        "show what scaling changes"),
       ("data", "a CSV standardised on all rows, 80/20 split, the test rows as "
        "validation", "breast cancer (or any CSV), 25% stratified test rows, scaler fit "
        "on the training rows", "a scaler fit on all rows sees the test rows"),
       manual_parameters=1_537, dlab_parameters=1_537, counted="the 32-16-1 classifier, 30 "
       "inputs"),
    _f("7.1",
       ("network", "2-2-1 sigmoid, weights 0.01 N(0, 1)", "the manual's 2-2-1 network "
        "run as meant, beside a 2-4-1 tanh network in dlab.scratch", "its 2-2-1 network "
        "with tiny weights is measured to stay at 0.5"),
       ("parameters", "9", "9 (the manual's), 17 (dlab.scratch's)", None),
       ("training", "gradient descent lr 0.5, MSE, 5,000 epochs; backward() runs before "
        "any forward()", "the manual's network: gradient descent lr 0.5, MSE, 5,000 "
        "epochs, 5 seeds, forward before backward; dlab.scratch's: lr 0.5, 2,000 epochs, "
        "10 seeds", "the call order is its defect (its AttributeError is shown); seeds "
        "show the network stays at 0.5 from every start"),
       ("data", "the XOR truth table", "the XOR truth table", None),
       manual_parameters=9, dlab_parameters=9, counted="the manual's 2-2-1 network"),
    _f("7.2",
       ("network", "3-4-4-1 sigmoid without biases, uniform [0, 1) weights",
        "2-4-4-1 (tanh hidden layers, sigmoid output) with biases, against 2-4-1",
        "the manual gives no data for 3 inputs and never trains; XOR lets one and two "
        "hidden layers be compared"),
       ("parameters", "32", "37", "it follows from the network"),
       ("training", "one step function, lr 0.01, never called", "gradient descent lr "
        "0.5, up to 2,000 epochs, 10 seeds per architecture", "the manual trains nothing "
        "(its defect)"),
       ("data", "none", "the XOR truth table", "the manual has none"),
       manual_parameters=32, dlab_parameters=37, counted="the two-hidden-layer network"),
    _f("8.1",
       ("network", "Keras: three blocks of 3x3 'same' convolution (32, 64, 128), ReLU, "
        "2x2 max-pool; Dense 128 ReLU; Dense 10 softmax; 64x64x3 input", "the same in "
        "Keras and in PyTorch", None),
       ("parameters", "1,143,242", "1,143,242 by hand, in Keras and in PyTorch", None),
       ("training", "none (summary only)", "none (counts and outputs compared)", None),
       ("data", "none", "random images to compare the two frameworks' outputs", None),
       manual_parameters=1_143_242, dlab_parameters=1_143_242,
       counted="the ConvNet at 64x64x3"),
    _f("8.2",
       ("network", "8.1's network at 32x32x3", "the same, in PyTorch", None),
       ("parameters", "356,810", "356,810", None),
       ("training", "Adam (lr 0.001), sparse cross-entropy, batch 64, 10 epochs", "Adam "
        "lr 0.001, cross-entropy, batch 64, 4 epochs at quick (full: 10)",
        "the quick profile's time budget; full restores 10 epochs"),
       ("data", "CIFAR-10, the test images as validation", "CIFAR-10 when present (else "
        "Fashion-MNIST or MNIST); at quick a stratified 4,000-image sample and 2,000 test "
        "images; validation carved from the training images",
        "the quick budget and offline data; the test images must not steer training"),
       manual_parameters=356_810, dlab_parameters=356_810, counted="the ConvNet at 32x32x3"),
    _f("9.1",
       ("network", "3 x (3x3 conv, padding 1; ReLU; 2x2 pool), flatten fixed at 128*4*4, "
        "Dense 256, dropout 0.5, Dense 10", "the same blocks with the flatten size "
        "computed from the input, Dense 256, dropout 0.5, Dense 2",
        "the fixed 128*4*4 fits only 32x32 (its defect); two classes for cats and dogs"),
       ("parameters", "620,362 (10 classes at 32x32)", "618,306 (2 classes at 32x32); "
        "620,362 with 10 classes", "it follows from the two classes"),
       ("training", "none (one forward pass)", "none (shapes checked at several sizes)",
        None),
       ("data", "one random 32x32 image", "random images at several sizes",
        "the flatten size must be shown to follow the input"),

       manual_parameters=620_362, dlab_parameters=618_306, counted="the CNN at 32x32"),
    _f("9.2",
       ("network", "2 x (3x3 conv, ReLU, pool), Dense 128, Dense 2, for 128x128 images",
        "9.1's network (3 blocks, Dense 256, dropout)", "one network for experiment 9; "
        "the manual's first dense layer alone holds 8.4 million weights"),
       ("parameters", "8,408,386", "618,306 at 32x32", "it follows from the network and "
        "the image size"),
       ("training", "Adam lr 0.001, cross-entropy, batch 32, 10 epochs; no zero_grad(), "
        "an undefined name", "Adam lr 0.001, cross-entropy, batch 32, 6 epochs at quick "
        "(full: 10), random flips and crops", "the loop is broken (its defect); the "
        "quick budget"),
       ("data", "an ImageFolder resized to 128x128, no validation", "an image folder "
        "(or CIFAR-10 cats and dogs, or a stand-in) at 32x32 (full: 64), 600 images a "
        "class at quick, 20% stratified validation", "no cat and dog folder ships with "
        "dlab; the quick budget; accuracy needs held-out images"),
       manual_parameters=8_408_386, dlab_parameters=618_306,
       counted="the manual's CNN at 128x128; dlab's at 32x32"),
    _f("10.1",
       ("network", "RNN(1, 16) and Linear(16, 1) on the last state", "the same", None),
       ("parameters", "321", "321", None),
       ("training", "Adam lr 0.01, MSE, 100 full-batch epochs", "the same", None),
       ("data", "sin(t) on t = 0..40 at 1,000 points (a period of about 157 steps) plus "
        "N(0, 0.1^2), windows of 20, the last 20% as test", "the same series (period "
        "2 pi 999 / 40 = 156.9 steps), windows of 20, the last 20% as test, and the "
        "persistence forecast as a baseline", None),
       manual_parameters=321, dlab_parameters=321, counted="the simple RNN"),
    _f("10.2",
       ("network", "RNN(1, 16) and LSTM(1, 16), each with Linear(16, 1)", "the manual's "
        "regime with the same cells; the main comparison: RNN, LSTM and GRU of width 32",
        "the main comparison adds the GRU at one width for all cells"),
       ("parameters", "321 (RNN) and 1,233 (LSTM)", "321 and 1,233 in the manual's regime",
        None),
       ("training", "Adam lr 0.001, MSE, 20 full-batch steps", "the manual's regime: the "
        "same; the main comparison: Adam lr 0.01, batch 64, 12 epochs, clipping at 1",
        "20 steps train neither model, so the comparison needs real training"),
       ("data", "1,000 sequences of 20 N(0, 1) values, target their sum; scored on the "
        "training data; X used before it exists", "the manual's regime on fresh held-out "
        "sequences; adding and running-sum tasks with held-out test sets",
        "its generator crashes and it scores on training data (its defect)"),
       manual_parameters=1_233, dlab_parameters=1_233, counted="the LSTM of the manual's "
       "regime"),
    _f("11.1",
       ("network", "Keras LSTM(50) returning sequences, LSTM(50), Dense 25, Dense 1",
        "the same in Keras and in PyTorch", None),
       ("parameters", "31,901 (Keras)", "31,901 in Keras; 32,301 in PyTorch, whose LSTM "
        "keeps two bias vectors per gate", None),
       ("training", "Adam (lr 0.001), MSE, 50 epochs, batch 16, the test period as "
        "validation", "Adam lr 0.003, MSE, up to 20 epochs of batch 32 at quick (full: the "
        "manual's lr 0.001, 50 epochs, batch 16), early stopping on the last 10% of the "
        "training windows", "the quick budget: fewer, larger steps at a higher rate; "
        "validation must not be the test period"),
       ("data", "a temperature CSV, min-max scaled on all days, windows of 60, the last "
        "20% as test", "Seattle's daily maximum temperature, scaler fit on the training "
        "period, windows of 60, 2015 as test", "a scaler fit on all days sees the test "
        "period (its defect)"),
       manual_parameters=31_901, dlab_parameters=31_901, counted="the Keras forecaster"),
    _f("11.2",
       ("network", "LSTM(1, 50, 2 layers) and Linear(50, 1)", "the same", None),
       ("parameters", "31,051", "31,051", None),
       ("training", "Adam lr 0.001, MSE, batch 32, 20 epochs", "Adam lr 0.003, MSE, batch "
        "64, up to 15 epochs with early stopping", "the quick budget: fewer, larger steps "
        "at a higher rate; early stopping needs the validation split"),
       ("data", "1,000 sequences of 10 uniform values, target their sum; nothing held "
        "out", "4,000 noisy sums of sines of 30 steps, next value as target, split "
        "70/15/15", "the program asks for sequence prediction, and a sum of inputs does "
        "not depend on their order (10.2 measures the sum tasks, the manual's regime "
        "among them); the manual never tests"),
       manual_parameters=31_051, dlab_parameters=31_051, counted="the two-layer LSTM"),
    _f("12.1",
       ("network", "784-128-64-32 ReLU (ReLU on the code), 32-64-128-784 ReLU, sigmoid "
        "output", "the same", None),
       ("parameters", "222,384", "222,384", None),
       ("training", "Adam lr 0.001, MSE, batch 64, 5 epochs", "the same, for 10 epochs "
        "at full and 150 at quick", "after the manual's 5 epochs over the full digits the "
        "network was still behind PCA on the test digits (test MSE 0.01743 against 0.01683, "
        "measured); the quick profile has 3,600 bundled digits, not 60,000: at 150 "
        "passes over them (about 7,600 steps; the manual's 5 epochs are 4,690) the "
        "manual's network passed PCA on the validation digits"),
       ("data", "all 60,000 MNIST training digits, no test score", "MNIST (full when "
        "present, else bundled), 10% validation, test error against PCA", "a "
        "reconstruction error means little without a test set and a baseline"),
       manual_parameters=222_384, dlab_parameters=222_384, counted="the autoencoder"),
    _f("12.2",
       ("network", "none: a list of hyperparameters in prose", "12.1's network varied",
        "the manual runs no study"),
       ("parameters", "none", "per trial", "the manual runs no study"),
       ("training", "none", "one 12.1 run per setting, chosen on validation error",
        "the manual runs no study"),
       ("data", "none", "as 12.1", "the manual runs no study")),
    _f("13.1",
       ("network", "Keras conv 32, conv 64 stride 2, conv 128 stride 2, code 7x7x128 = "
        "6,272 numbers, two transposed convs, sigmoid conv", "a PyTorch conv "
        "autoencoder (16 then 32 maps, two halvings) with a dense code of 32 numbers",
        "a 6,272-number code is larger than the 784 pixels: no bottleneck (its defect)"),
       ("parameters", "185,217", "114,001", "it follows from the network"),
       ("training", "Adam, binary cross-entropy, 10 epochs, batch 128, noise factor 0.5",
        "Adam lr 0.001, MSE, 8 epochs of batch 64 at quick (full: the manual's 10 of batch "
        "128), noise "
        "factor 0.5 (fresh noise every batch)", "MSE is the error the PSNR targets score "
        "(PSNR = 10 log10(1 / MSE)); at quick the smaller digit set and fewer epochs are "
        "the budget"),
       ("data", "MNIST, the test digits as validation", "MNIST (full when present, else "
        "bundled), 10% validation, PSNR and a linear probe on test digits", "the test "
        "digits must not steer training; features need a measure"),
       manual_parameters=185_217, dlab_parameters=114_001, counted="the autoencoder"),
    _f("13.2",
       ("network", "none: a list of hyperparameters in prose", "13.1's network varied",
        "the manual runs no study"),
       ("parameters", "none", "per trial", "the manual runs no study"),
       ("training", "none", "one 13.1 run per setting, chosen on validation error",
        "the manual runs no study"),
       ("data", "none", "as 13.1; at full each trial trains on 10,000 of its "
        "training digits",
        "the manual runs no study; on all digits its 11 trials projected to "
        "7,079 s on one thread, on 10,000 to 934 s")),
    _f("14.1",
       ("network", "'NADE' and 'MADE': two-layer autoencoders (2-10-2), no masks",
        "NADE (100 hidden units) and MADE (one masked layer of 500, 4 masks); a Gaussian "
        "MADE for the 2-D data", "the manual's models are no density estimators (its "
        "defect)"),
       ("parameters", "54 ('NADE') and 52 ('MADE')", "157,684 (NADE) and 785,284 (MADE) "
        "on 784 pixels", "it follows from the models and the data"),
       ("training", "Adam lr 0.01, MSE, 20 epochs, batch 64", "Adam lr 0.005, exact "
        "negative log-likelihood, up to 6 epochs, batch 50, early stopping (full: NADE 500 "
        "hidden units and MADE with 32 masks, Adam lr 0.001, batch 100, up to 30 epochs)",
        "a density is fit by likelihood, not MSE"),
       ("data", "1,000 points from two 2-D Gaussians", "binarised MNIST, a binary Markov "
        "chain of known entropy, and the manual's two Gaussians", "likelihoods need data "
        "whose answer can be checked"),
       manual_parameters=54 + 52, dlab_parameters=157_684 + 785_284,
       counted="NADE and MADE together (dlab's on 784 pixels)"),

    _f("14.2",
       ("network", "none: advice in prose", "14.1's MADE varied", "the manual runs no "
        "study"),
       ("parameters", "none", "per trial", "the manual runs no study"),
       ("training", "none", "one 14.1 run per setting, chosen on validation NLL",
        "the manual runs no study"),
       ("data", "none", "as 14.1; at full each trial trains on 20,000 of its "
        "training digits",
        "the manual runs no study; the study's time budget (11 trials)")),
    _f("15.1",
       ("network", "PixelCNN: 7x7 mask-A conv (1 to 64), ReLU, five 7x7 mask-B convs (64 "
        "to 64) with nothing between, 1x1 conv, sigmoid; no PixelRNN", "the manual's "
        "PixelCNN layer for layer (64 channels at full, 16 at quick), its sigmoid folded "
        "into a Bernoulli likelihood; beside it a residual PixelCNN (32 channels, 3 "
        "blocks, 3x3) and a Row LSTM PixelRNN", "the quick budget: at 64 channels one "
        "epoch over the 1,350 quick digits took 61 s, at 16 channels 3.2 s (measured, 1 "
        "thread); the aim asks for a PixelRNN, and a PixelCNN with a non-linearity "
        "between its masked layers is set beside the manual's"),
       ("parameters", "1,007,105", "1,007,105 at full; 63,617 at quick (16 channels); "
        "12,865 (residual PixelCNN)", "it follows from the quick width"),
       ("training", "Adam lr 0.001, BCE against grey levels, batch 64, 5 epochs",
        "Adam lr 0.002, exact NLL of binarised digits (BCE with logits), batch 32, up to "
        "4 epochs at quick (full: the manual's lr 0.001, batch 64 and 5 epochs)",
        "a likelihood in nats needs binary targets; the quick budget"),
       ("data", "all MNIST training digits, no test score, no samples", "1,500 digits at "
        "quick, 500 test digits, samples drawn pixel by pixel; at full 20,000 training "
        "digits (2,000 of them for validation) and all 10,000 test digits", "the quick "
        "budget; at full one epoch over all 54,000 training digits is about 53 minutes of "
        "the three models on one thread, so 5 epochs would not fit a laptop's 3 hours; the "
        "aim asks for generation"),
       manual_parameters=1_007_105, dlab_parameters=63_617,
       counted="the manual's PixelCNN; dlab's at the quick width"),
    _f("15.2",
       ("network", "none: advice in prose", "15.1's models varied", "the manual runs no "
        "study"),
       ("parameters", "none", "per trial", "the manual runs no study"),
       ("training", "none", "one 15.1 run per setting, chosen on validation NLL",
        "the manual runs no study"),
       ("data", "none", "as 15.1; at full each trial trains on 5,000 of its "
        "training digits",
        "the manual runs no study; the study's time budget (12 trials; one 15.1 "
        "run at full took 6,279 s)")),
    _f("16.1",
       ("network", "G: 100-128-256-512-784, ReLU, tanh out; D: 784-512-256-1, LeakyReLU "
        "0.2, sigmoid out", "the same layers; D outputs a logit scored with "
        "BCE-with-logits; also a stabilised MLP GAN and a DCGAN", "a logit with "
        "BCE-with-logits is the same model, computed stably; the other two GANs show "
        "what stabilising changes"),


       ("parameters", "579,728 (G) and 533,505 (D)", "579,728 and 533,505", None),
       ("training", "BCE, Adam lr 0.0002, betas (0.5, 0.999), batch 128, 50 epochs",
        "the same loss and Adam; batch 32 and 10 epochs at quick (full: 128 and 50)",
        "at quick, 128 gives too few steps for any GAN to draw digits (the program "
        "measured this)"),
       ("data", "MNIST scaled to [-1, 1]; 16 samples shown", "MNIST (full when present, "
        "else bundled), validation digits carved out, samples scored by a classifier",
        "the manual measures no quality (its defect)"),
       manual_parameters=579_728 + 533_505, dlab_parameters=579_728 + 533_505,
       counted="G and D together"),
    _f("16.2",
       ("network", "none: advice in prose", "16.1's GANs varied", "the manual runs no "
        "study"),
       ("parameters", "none", "per trial", "the manual runs no study"),
       ("training", "none", "one 16.1 run per setting, chosen on validation digits",
        "the manual runs no study"),
       ("data", "none", "as 16.1; at full each trial trains on 10,000 of its "
        "training digits",
        "the manual runs no study; the study's time budget (11 trials)")),
)}


def fidelity(program_id: str) -> Fidelity:
    """The manual-against-dlab facts of one program ("8.1")."""
    try:
        return FIDELITY[program_id]
    except KeyError:
        raise KeyError(f"no manual facts for program {program_id!r}") from None


def table() -> list[tuple[str, str, str, str]]:
    """The 32 rows: program, manual's facts, dlab's, same or changed-and-why."""
    return [f.row() for f in FIDELITY.values()]
