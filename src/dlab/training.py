"""The one training loop of the package.

`fit` runs epochs of a *step function* over batches, keeps a history, evaluates on a
validation set, stops early, stops with `Diverged` on a NaN or infinite loss,
checkpoints every epoch and resumes from the checkpoint. Supervised programs use the
default step (`supervised_step`); GANs and studies pass their own.

A step function takes one batch (a tuple of tensors) and returns a dict of numbers
for that batch that must include "loss"; it does its own backward pass and
optimizer step. Numbers are averaged over the epoch, weighted by batch size.
"""

from __future__ import annotations

import copy
import json
import math
import pickle
import time
import warnings
from collections.abc import Callable, Iterable, Iterator, Sequence
from dataclasses import dataclass, field
from typing import Any

import torch
from torch import Tensor, nn

from dlab.errors import DataError
from dlab.runs import CHECKPOINT_EVERY_S, Diverged, RunContext

Batch = tuple[Tensor, ...]
Step = Callable[[Batch], dict[str, Any]]
MetricFn = Callable[[Tensor, Tensor], Tensor]  # (output, target) -> mean over the batch


def accuracy(output: Tensor, target: Tensor) -> Tensor:
    """Fraction of rows whose arg-max (or, for one output, sign of the logit) is right."""
    if output.ndim == 1 or output.shape[-1] == 1:
        pred = (output.reshape(target.shape) > 0).to(target.dtype)
        return (pred == target).float().mean()
    return (output.argmax(dim=-1) == target).float().mean()


def batches(tensors: Sequence[Tensor], batch_size: int, shuffle: bool = False,
            generator: torch.Generator | None = None) -> Iterator[Batch]:
    """Slices of in-memory tensors (all of length N) as batches; no per-sample work."""
    n = len(tensors[0])
    if shuffle:
        order = torch.randperm(n, generator=generator).to(tensors[0].device)
        for start in range(0, n, batch_size):
            idx = order[start:start + batch_size]
            yield tuple(t[idx] for t in tensors)
    else:
        for start in range(0, n, batch_size):
            yield tuple(t[start:start + batch_size] for t in tensors)


def _num_batches(data: Any, batch_size: int) -> int | None:
    if isinstance(data, tuple | list):
        return math.ceil(len(data[0]) / batch_size)
    try:
        return len(data)
    except TypeError:
        return None


def _iterate(data: Any, batch_size: int, shuffle: bool, generator: torch.Generator,
             device: str) -> Iterable[Batch]:
    if isinstance(data, tuple | list):
        return batches([t.to(device) for t in data], batch_size, shuffle, generator)
    return (tuple(t.to(device, non_blocking=True) for t in b) for b in data)


def supervised_step(model: nn.Module, optimizer: torch.optim.Optimizer,
                    loss_fn: Callable[[Tensor, Tensor], Tensor],
                    metrics: dict[str, MetricFn] | None = None,
                    max_grad_norm: float | None = None) -> Step:
    """The usual step: forward, loss, zero_grad, backward, (clip), optimizer step."""

    def step(batch: Batch) -> dict[str, Any]:
        x, y = batch
        model.train()
        out = model(x)
        loss = loss_fn(out, y)
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if max_grad_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        row = {"loss": loss.detach()}
        with torch.no_grad():
            for name, fn in (metrics or {}).items():
                row[name] = fn(out.detach(), y)
        return row

    return step


@torch.inference_mode()
def evaluate(model: nn.Module, data: Any, loss_fn: Callable[[Tensor, Tensor], Tensor] | None,
             metrics: dict[str, MetricFn] | None = None, batch_size: int = 1024,
             device: str = "cpu") -> dict[str, float]:
    """Mean loss and metrics over `data` ((X, y) tensors or a loader) in eval mode."""
    was_training = model.training
    model.eval()
    sums: dict[str, float] = {}
    n = 0
    for x, y in _iterate(data, batch_size, False, None, device):
        out = model(x)
        b = len(x)
        if loss_fn is not None:
            sums["loss"] = sums.get("loss", 0.0) + float(loss_fn(out, y)) * b
        for name, fn in (metrics or {}).items():
            sums[name] = sums.get(name, 0.0) + float(fn(out, y)) * b
        n += b
    model.train(was_training)
    return {k: v / max(n, 1) for k, v in sums.items()}


@torch.inference_mode()
def predict(model: nn.Module, x: Tensor, batch_size: int = 2048):
    """Model outputs for inputs x (N, ...) in eval mode, in batches, as float64 NumPy."""
    was_training = model.training
    model.eval()
    out = [model(x[i:i + batch_size]).float().cpu() for i in range(0, len(x), batch_size)]
    model.train(was_training)
    return torch.cat(out).numpy().astype("float64")


@dataclass
class FitResult:
    history: list[dict[str, Any]] = field(default_factory=list)
    best_epoch: int = 0
    stopped_early: bool = False
    seconds: float = 0.0

    def last(self, key: str) -> Any:
        return self.history[-1][key]

    def column(self, key: str) -> list[Any]:
        return [row.get(key) for row in self.history]


def _optimizers(optimizer: Any) -> list[torch.optim.Optimizer]:
    if optimizer is None:
        return []
    if isinstance(optimizer, torch.optim.Optimizer):
        return [optimizer]
    return list(optimizer)


def fit(model: nn.Module, train: Any, *, ctx: RunContext, epochs: int,
        optimizer: Any = None, loss_fn: Callable[[Tensor, Tensor], Tensor] | None = None,
        step: Step | None = None, val: Any = None, batch_size: int = 64, shuffle: bool = True,
        metrics: dict[str, MetricFn] | None = None, patience: int | None = None,
        monitor: str = "val_loss", name: str = "model",
        on_epoch_end: Callable[[int, dict[str, Any]], dict[str, Any] | None] | None = None,
        scheduler: Any = None, checkpoint: bool = True, max_grad_norm: float | None = None,
        validate: Callable[[], dict[str, float]] | None = None,
        steps_per_epoch: int | None = None) -> FitResult:
    """Train `model` for `epochs` epochs and return its history.

    train:     (X, y, ...) tensors (sliced into batches, reshuffled each epoch with a
               generator seeded from the run's seed and the epoch) or any iterable of
               batches (a DataLoader).
    optimizer: one optimizer or a list (GANs); their learning rates appear in the history.
    step:      a step function; default `supervised_step(model, optimizer, loss_fn)`.
    val:       validation data like `train`, scored by `evaluate` with `loss_fn` and
               `metrics`; or `validate()` returning a dict for custom scoring.
    patience:  stop when `monitor` has not improved for this many epochs; the best
               weights are restored.
    on_epoch_end(epoch, row) may return extra columns for the history (sample grids,
               scores computed once an epoch).
    steps_per_epoch: where an "epoch" is a block of this many full-batch steps (`train`
               repeats one batch), progress counts steps, not blocks.
    """
    opts = _optimizers(optimizer)
    if step is None:
        if optimizer is None or loss_fn is None:
            raise ValueError("fit needs a step function or an optimizer and a loss")
        step = supervised_step(model, opts[0], loss_fn, metrics, max_grad_norm)
    device = ctx.device
    ckpt_path = ctx.checkpoint_path(name)
    result = FitResult()
    start_epoch = 1
    best_score, best_state, bad_epochs = math.inf, None, 0

    if ctx.resume and ckpt_path.exists():
        state = load_checkpoint(ckpt_path, device)
        try:
            model.load_state_dict(state["model"])
            for opt, s in zip(opts, state["optimizers"], strict=True):
                opt.load_state_dict(s)
            if scheduler is not None and state.get("scheduler") is not None:
                scheduler.load_state_dict(state["scheduler"])
            torch.set_rng_state(state["torch_rng"].cpu())  # map_location may move it
        except (KeyError, TypeError, ValueError, RuntimeError) as exc:
            raise _bad_checkpoint(ckpt_path, f"it does not fit this model: {exc}") from None
        result.history = state["history"]
        best_score, best_state, bad_epochs = state["best"], state["best_state"], state["bad"]
        start_epoch = state["epoch"] + 1
        ctx.add_history(result.history)
        ctx.log(f"{name}: resuming after epoch {state['epoch']}")
        if state.get("done"):
            start_epoch = epochs + 1

    t_start = saved_at = time.perf_counter()
    sign = -1.0 if monitor.endswith(("acc", "accuracy", "auc", "r2")) else 1.0
    for epoch in range(start_epoch, epochs + 1):
        t0 = time.perf_counter()
        gen = ctx.torch_generator(offset=epoch)
        sums: dict[str, float] = {}
        seen = 0
        lr = opts[0].param_groups[0]["lr"] if opts else float("nan")
        total = _num_batches(train, batch_size)
        with ctx.progress(total, f"{name} epoch {epoch}/{epochs}") as bar:
            for i, batch in enumerate(_iterate(train, batch_size, shuffle, gen, device)):
                out = step(batch)
                b = len(batch[0])
                seen += b
                for k, v in out.items():
                    sums[k] = sums.get(k, 0.0) + float(v) * b
                if not math.isfinite(sums["loss"]):
                    raise Diverged(
                        f"{name}: loss became {float(out['loss'])} in epoch {epoch} "
                        f"(batch {i + 1}) at learning rate {lr:g}; lower the learning rate "
                        "(--set lr=...)"
                    )
                if i % 10 == 0:
                    rate = seen / max(time.perf_counter() - t0, 1e-9)
                    bar.advance(0, loss=f"{sums['loss'] / seen:.4f}", samples_s=f"{rate:,.0f}")
                bar.advance(1)
        row: dict[str, Any] = {"model": name, "epoch": epoch}
        row.update({k: v / max(seen, 1) for k, v in sums.items()})
        if val is not None:
            scores = evaluate(model, val, loss_fn, metrics, max(batch_size, 256), device)
            row.update({f"val_{k}": v for k, v in scores.items()})
        if validate is not None:
            row.update(validate())
        if opts:
            row["lr"] = lr
        row["seconds"] = time.perf_counter() - t0
        row["samples_per_s"] = seen / max(row["seconds"], 1e-9)
        if scheduler is not None:
            scheduler.step()
        if on_epoch_end is not None:
            row.update(on_epoch_end(epoch, row) or {})
        result.history.append(row)
        ctx.add_history([row])
        spent = time.perf_counter() - t_start
        eta = spent / (epoch - start_epoch + 1) * (epochs - epoch)
        ctx.epoch(name, epoch, epochs, _epoch_line(row, epochs, steps_per_epoch)
                  + f"  elapsed {_clock(spent)}, about {_clock(eta)} left",
                  info=f"loss {row['loss']:.4g}" if "loss" in row else "")

        stop = False
        if patience is not None and monitor in row:
            score = sign * float(row[monitor])
            if score < best_score:
                best_score, bad_epochs = score, 0
                best_state = copy.deepcopy(model.state_dict())
                result.best_epoch = epoch
            else:
                bad_epochs += 1
                stop = bad_epochs >= patience
        done = stop or epoch == epochs
        if checkpoint and (done or epoch == start_epoch
                           or time.perf_counter() - saved_at >= CHECKPOINT_EVERY_S):
            _save_checkpoint(ckpt_path, model, opts, scheduler, epoch, result.history,
                             best_score, best_state, bad_epochs, done=done)
            saved_at = time.perf_counter()
        if stop:
            result.stopped_early = True
            ctx.log(f"{name}: early stop after epoch {epoch} (best {monitor} at epoch "
                    f"{result.best_epoch})")
            break
    if patience is not None and best_state is not None:
        model.load_state_dict(best_state)
    result.seconds = time.perf_counter() - t_start
    if result.history and not result.best_epoch:
        result.best_epoch = result.history[-1]["epoch"]
    return result


def _clock(seconds: float) -> str:
    """1h02m, 3m05s or 12s."""
    s = int(round(seconds))
    if s >= 3600:
        return f"{s // 3600}h{s % 3600 // 60:02d}m"
    return f"{s // 60}m{s % 60:02d}s" if s >= 60 else f"{s}s"


def _epoch_line(row: dict[str, Any], epochs: int, steps_per_epoch: int | None = None) -> str:
    skip = {"model", "epoch", "seconds", "samples_per_s"}
    parts = [f"{row['model']} epoch {row['epoch']}/{epochs}" if not steps_per_epoch else
             f"{row['model']} step {row['epoch'] * steps_per_epoch}/{epochs * steps_per_epoch}"]
    for k, v in row.items():
        if k not in skip and isinstance(v, int | float):
            parts.append(f"{k} {v:.4g}")
    parts.append(f"{row['samples_per_s']:,.0f} samples/s {row['seconds']:.1f}s")
    return "  ".join(parts)


CHECKPOINT_FORMAT = 2  # tensors, plain containers and numbers; history as JSON text


def _plain(value: Any) -> Any:
    """Optimizer and scheduler state with NumPy numbers turned into Python ones, so the
    checkpoint holds only what torch.load(weights_only=True) accepts."""
    if isinstance(value, Tensor) or value is None or isinstance(value, bool | int | float | str):
        return value
    if isinstance(value, dict):
        return {k: _plain(v) for k, v in value.items()}
    if isinstance(value, list | tuple):
        return type(value)(_plain(v) for v in value)
    if hasattr(value, "item") and getattr(value, "ndim", 1) == 0:
        return value.item()
    if hasattr(value, "tolist"):
        return torch.as_tensor(value)
    return value


def _history_json(history: list[dict[str, Any]]) -> str:
    def default(v: Any) -> Any:
        if hasattr(v, "item") and getattr(v, "ndim", 1) == 0:
            return v.item()
        if hasattr(v, "tolist"):
            return v.tolist()
        return str(v)

    return json.dumps(history, default=default)  # NaN and inf kept as NaN/Infinity


def _bad_checkpoint(path: Any, why: str) -> DataError:
    return DataError(f"{path}: cannot resume from this checkpoint ({why}); delete it to "
                     "start the run again, or run without --resume")


def unpickler_detail(exc: BaseException) -> str:
    """The short reason in torch's long weights_only refusal ("Unsupported global: ...")."""
    text = str(exc)
    marker = "WeightsUnpickler error:"
    if marker in text:
        text = text.split(marker, 1)[1].strip().split("\n\n")[0]
    return " ".join(text.split())[:120] or type(exc).__name__


def load_checkpoint(path: Any, device: str = "cpu") -> dict[str, Any]:
    """A checkpoint written by `fit`, loaded with weights_only=True: a file that holds
    anything but tensors, plain containers and numbers is refused, never run."""
    try:
        with warnings.catch_warnings():
            warnings.simplefilter("ignore")  # torch's notes on pickle protocols
            state = torch.load(path, map_location=device, weights_only=True)
    except pickle.UnpicklingError as exc:
        raise _bad_checkpoint(path, "refused: not a file of plain tensors and numbers "
                              f"({unpickler_detail(exc)}); such a file could run code when "
                              "loaded, so nothing in it was run") from None
    except (RuntimeError, EOFError, OSError, ValueError, KeyError) as exc:
        first = " ".join(str(exc).split())[:160] or type(exc).__name__
        raise _bad_checkpoint(path, f"unreadable: {first}") from None
    needed = ("model", "optimizers", "torch_rng", "epoch", "best", "best_state", "bad")
    if not isinstance(state, dict) or any(k not in state for k in needed):
        raise _bad_checkpoint(path, "not a dlab training checkpoint")
    if isinstance(state.get("history_json"), str):
        try:
            state["history"] = json.loads(state["history_json"])
        except ValueError as exc:
            raise _bad_checkpoint(path, f"its history is not JSON: {exc}") from None
    history = state.get("history")
    if not isinstance(history, list) or not all(isinstance(r, dict) for r in history):
        raise _bad_checkpoint(path, "no training history")
    if not isinstance(state["epoch"], int) or not isinstance(state["torch_rng"], Tensor):
        raise _bad_checkpoint(path, "malformed epoch or random state")
    return state


def _save_checkpoint(path, model, opts, scheduler, epoch, history, best, best_state, bad,
                     done):
    from dlab.io import save_torch

    state = {
        "format": CHECKPOINT_FORMAT,
        "model": model.state_dict(),
        "optimizers": [_plain(o.state_dict()) for o in opts],
        "scheduler": _plain(scheduler.state_dict()) if scheduler is not None else None,
        "torch_rng": torch.get_rng_state(),
        "epoch": int(epoch),
        "history_json": _history_json(history),
        "best": float(best),
        "best_state": best_state,
        "bad": int(bad),
        "done": bool(done),
    }
    save_torch(state, path)


def nll_step(model: nn.Module, optimizer: torch.optim.Optimizer,
             max_grad_norm: float | None = None,
             log_prob: Callable[[Tensor], Tensor] | None = None) -> Step:
    """One maximum-likelihood step of a density model on a batch (x,):
    loss = -(1/B) sum_b log p(x_b), in nats per example (the exact NLL of NADE, MADE,
    PixelCNN and PixelRNN). `log_prob` (default `model.log_prob`) maps x (B, ...) to
    log p(x) (B,); a MADE trained with several masks passes one that moves to the next
    mask first (Germain et al. 2015, Section 4.2)."""
    log_prob = log_prob or model.log_prob

    def step(batch: Batch) -> dict[str, Any]:
        (x,) = batch
        model.train()
        loss = -log_prob(x).mean()
        optimizer.zero_grad(set_to_none=True)
        loss.backward()
        if max_grad_norm is not None:
            nn.utils.clip_grad_norm_(model.parameters(), max_grad_norm)
        optimizer.step()
        return {"loss": loss.detach()}

    return step


@torch.no_grad()
def mean_nll(model: nn.Module, x: Tensor, batch_size: int = 256) -> float:
    """Mean negative log-likelihood -(1/N) sum_n log p(x_n), in nats per example, of
    x (N, ...) under `model.log_prob`, in eval mode and in batches (summed in float64)."""
    was = model.training
    model.eval()
    total = 0.0
    for i in range(0, len(x), batch_size):
        total += float(-model.log_prob(x[i:i + batch_size]).double().sum())
    model.train(was)
    return total / max(len(x), 1)
