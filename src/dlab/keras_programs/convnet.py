"""Keras 3 variant of the three-block ConvNet (Experiment 8.1), and the map of its
weights onto the PyTorch `dlab.models.cnn.ConvNet`.

Keras works channels-last: images (B, H, W, C), convolution kernels (kh, kw, C_in,
C_out), and Flatten reads (H', W', C') in that order. PyTorch works channels-first:
(B, C, H, W), kernels (C_out, C_in, kh, kw), and Flatten reads (C', H', W'). Copying
weights across therefore permutes the kernels and the rows of the first dense kernel;
after that the two networks compute the same function, which `compare_outputs` checks.
"""

from __future__ import annotations

from collections.abc import Sequence
from typing import Any

import numpy as np

from dlab.keras_programs import load_keras, to_numpy


def build_convnet(input_size: int = 64, channels: int = 3, n_classes: int = 10,
                  filters: Sequence[int] = (32, 64, 128), dense: int = 128):
    """The manual's Sequential model, layer for layer: three blocks of Conv2D 3x3 with
    padding='same', a separate Activation('relu') and MaxPooling2D 2x2, then Flatten,
    Dense, Activation('relu'), Dense and Activation('softmax'). Input (B, H, W, C) ->
    class probabilities (B, n). Its initial weights depend only on the state of Python's
    `random`."""
    keras = load_keras()
    layers: list[Any] = [keras.Input((input_size, input_size, channels))]
    for f in filters:
        layers += [keras.layers.Conv2D(f, (3, 3), padding="same"),
                   keras.layers.Activation("relu"), keras.layers.MaxPooling2D((2, 2))]
    layers += [keras.layers.Flatten(), keras.layers.Dense(dense),
               keras.layers.Activation("relu"), keras.layers.Dense(n_classes),
               keras.layers.Activation("softmax")]
    return keras.Sequential(layers, name="convnet")


def summary_text(model: Any) -> str:
    """Keras's own `model.summary()` as text."""
    lines: list[str] = []
    # rich, which draws the table, crops every line at 80 characters when not on a terminal
    model.summary(print_fn=lambda line, *args, **kw: lines.append(line), line_length=78)
    return "\n".join(lines)


def layer_rows(model: Any) -> list[tuple[str, tuple, int]]:
    """(layer name, output shape without the batch axis, parameter count) per layer, the
    Activation layers left out (no parameters, shape unchanged; PyTorch's ReLU modules
    are left out of its rows the same way)."""
    keras = load_keras()
    return [(layer.name, tuple(layer.output.shape[1:]), int(layer.count_params()))
            for layer in model.layers if not isinstance(layer, keras.layers.Activation)]


def copy_to_torch(model: Any, net: Any) -> None:
    """Load the Keras model's weights into a `dlab.models.cnn.ConvNet` of the same shape."""
    import torch

    def weights(layer: Any) -> list[np.ndarray]:
        return [to_numpy(w.value) for w in layer.weights]

    keras_layers = [layer for layer in model.layers if layer.weights]
    convs = [m for m in net.features if isinstance(m, torch.nn.Conv2d)]
    denses = [m for m in net.classifier if isinstance(m, torch.nn.Linear)]
    c, h, w = net.feature_shape
    with torch.no_grad():
        for layer, conv in zip(keras_layers[:len(convs)], convs, strict=True):
            k, b = weights(layer)
            conv.weight.copy_(torch.from_numpy(k.transpose(3, 2, 0, 1).copy()))  # (O, I, kh, kw)
            conv.bias.copy_(torch.from_numpy(b))
        for i, (layer, lin) in enumerate(zip(keras_layers[len(convs):], denses, strict=True)):
            k, b = weights(layer)                                      # k: (in, out)
            if i == 0:  # rows of the first dense kernel: Keras (H, W, C) -> torch (C, H, W)
                k = k.reshape(h, w, c, -1).transpose(2, 0, 1, 3).reshape(c * h * w, -1)
            lin.weight.copy_(torch.from_numpy(k.T.copy()))             # (out, in)
            lin.bias.copy_(torch.from_numpy(b))


def compare_outputs(model: Any, net: Any, images: np.ndarray) -> float:
    """Largest absolute difference of class probabilities, Keras against PyTorch.

    images: float32 (B, H, W, C). The torch model gets them as (B, C, H, W).
    """
    import torch

    p_keras = to_numpy(model(images.astype("float32"), training=False))
    with torch.inference_mode():
        x = torch.from_numpy(images.transpose(0, 3, 1, 2).copy())  # (B, C, H, W)
        p_torch = torch.softmax(net.eval()(x), dim=-1).numpy()
    return float(np.abs(np.asarray(p_keras) - p_torch).max())
