"""Finite-difference check of back-propagated gradients."""

from __future__ import annotations

import numpy as np

from .model import Sequential


def numerical_gradients(model: Sequential, X, y, eps: float = 1e-6) -> list[np.ndarray]:
    """Central differences of the mean loss, in ``get_weights()`` order and shapes::

        dL/dw_i ~= (L(w + eps e_i) - L(w - eps e_i)) / (2 eps)

    whose error is O(eps^2) from truncation plus O(u / eps) from rounding (``u`` the
    unit round-off of the model's dtype). ``model`` must be compiled; its weights are
    restored afterwards. Cost: two forward passes per weight.
    """
    if model.loss is None:
        raise RuntimeError(
            "the model must be compiled before gradcheck: call "
            "model.compile(loss=..., optimizer=...) first"
        )
    X, y = model._check_xy(X, y, "gradcheck")
    out = []
    for w in model._params():  # the live arrays: perturb in place, then restore
        g = np.empty_like(w)
        flat_w, flat_g = w.reshape(-1), g.reshape(-1)  # views
        for i in range(flat_w.size):
            old = flat_w[i]
            flat_w[i] = old + eps
            up = model.loss.value(model._forward(X, training=False), y)
            flat_w[i] = old - eps
            down = model.loss.value(model._forward(X, training=False), y)
            flat_w[i] = old
            flat_g[i] = (up - down) / (2.0 * eps)
        out.append(g)
    return out


def gradcheck(model: Sequential, X, y, eps: float = 1e-6, floor: float = 1e-3) -> float:
    """Largest relative error between ``model.gradients(X, y)`` (back-propagation) and
    central finite differences, both computed in float64 on a copy of ``model``.

    For each weight ``i`` with analytic gradient ``a_i`` and numerical ``n_i``::

        err_i = |a_i - n_i| / max(|a_i|, |n_i|, floor)

    and the result is ``max_i err_i``. In allclose terms, ``err <= tol`` means
    ``|a_i - n_i| <= tol * max(|a_i|, |n_i|)`` with an absolute floor of ``tol * floor``.
    The floor is needed because a finite difference of a float64 loss of size about 1
    carries an absolute rounding error near ``1e-16 / eps = 1e-10``: without it a weight
    whose gradient is 1e-5 would show a relative error of 1e-5 however right the
    backward pass is. A correct backward pass gives below 1e-7 (for losses of order 1;
    the rounding error grows with the loss); a wrong equation gives 1e-2 or more.

    Args:
        model: a compiled :class:`Sequential` (unchanged by the check).
        X: inputs (N, n_in).
        y: targets (N, k) or (N,).
        eps: finite-difference step.
        floor: smallest denominator, see above.

    Returns:
        The largest relative error, a float.
    """
    if model.loss is None:
        raise RuntimeError(
            "the model must be compiled before gradcheck: call "
            "model.compile(loss=..., optimizer=...) first"
        )
    m64 = model.astype(np.float64)
    X = np.asarray(X, dtype=np.float64)
    y = np.asarray(y, dtype=np.float64)
    analytic = m64.gradients(X, y)
    numeric = numerical_gradients(m64, X, y, eps=eps)
    worst = 0.0
    for a, n in zip(analytic, numeric, strict=True):
        denom = np.maximum(np.maximum(np.abs(a), np.abs(n)), floor)
        worst = max(worst, float(np.max(np.abs(a - n) / denom)))
    return worst
