"""The collapse judge of 16.1 on sets whose answer is known, and on trained generators.

    python bench/gan_judge.py --profile quick [--runs RUN_FOLDER ...]

Loads the profile's digits and scoring classifier (from the cache, as 16.1 does), scores
real held-out digits, uniform noise and a synthetic collapsed set against the test
digits, then every `<kind>-generator.pt` in the run folders given, on n_quality samples
of z ~ N(0, I) (seeded). Prints one table row per set: Frechet distance (and its place
between floor and ceiling), diversity relative to real digits, distinct nearest real
digits relative to real digits', the share of near-copies, mean confidence, recognisable rate and the verdict.
"""

from __future__ import annotations

import argparse
import json
import os
import tempfile
from pathlib import Path

os.environ.setdefault("KERAS_BACKEND", "torch")

import torch  # noqa: E402

from dlab import config, quality  # noqa: E402
from dlab.experiments import exp16_gan as e16  # noqa: E402
from dlab.models.gan import DCGANGenerator, MLPGenerator  # noqa: E402
from dlab.registry import PROGRAMS  # noqa: E402
from dlab.runs import RunContext  # noqa: E402

COLUMNS = ("set", "frechet", "relative", "diversity_rel", "duplicates", "neighbours_rel",
           "confidence", "recognisable", "verdict")


def _generator(path: Path) -> torch.nn.Module:
    meta = json.loads(path.with_suffix(".json").read_text())
    if meta["kind"] == "dcgan":
        g: torch.nn.Module = DCGANGenerator(meta["latent_dim"], meta["width"])
    else:
        g = MLPGenerator(meta["latent_dim"], meta["g_hidden"],
                         batch_norm=meta["kind"] == "mlp_stable")
    g.load_state_dict(torch.load(path, map_location="cpu", weights_only=True))
    return g.eval()


def _row(name: str, s: dict) -> list:
    return [name, f"{s['frechet']:.1f}", f"{s['frechet_relative']:.3f}",
            f"{s['diversity_relative']:.3f}", f"{s['duplicates']:.3f}",
            f"{s['neighbours_relative']:.3f}",
            f"{s['mean_confidence']:.3f}", f"{s['recognisable']:.3f}", s["verdict"]]


def main() -> int:
    ap = argparse.ArgumentParser()
    ap.add_argument("--profile", default="quick")
    ap.add_argument("--runs", nargs="*", default=[], help="16.1 run folders to score")
    ap.add_argument("--seed", type=int, default=0)
    a = ap.parse_args()
    impl = PROGRAMS["16.1"].load()
    cfg = config.build(impl.config, impl.profiles, a.profile, {}, "16.1")
    with tempfile.TemporaryDirectory() as tmp:
        ctx = RunContext(PROGRAMS["16.1"], None, Path(tmp), profile=a.profile, seed=a.seed,
                         device="cpu", quiet=True)
        digits = e16.load_digits(cfg, ctx)
        judge = e16.build_judge(cfg, ctx, digits, e16.scoring_classifier(cfg, ctx, digits))
    ref = judge.test_ref
    rows = [_row(k, v) for k, v in judge.calibration.items()]
    model = judge.classifier.model
    for folder in a.runs:
        for path in sorted(Path(folder).glob("*-generator.pt")):
            z = torch.randn(ref.n_samples, 100, generator=torch.Generator().manual_seed(a.seed))
            with torch.inference_mode():
                feats, probs = quality.classify(model, _generator(path)(z))
            rows.append(_row(f"{Path(folder).name}/{path.stem}",
                             quality.quality_score(feats, probs, ref)))
    print(f"profile {a.profile}: floor {ref.floor:.2f}, ceiling {ref.ceiling:.1f}, real "
          f"diversity {ref.real_diversity:.3f}, real neighbours {ref.real_neighbours}/"
          f"{ref.n_samples}, real recognisable {ref.real_recognisable:.3f}")
    print("| " + " | ".join(COLUMNS) + " |")
    print("|" + "---|" * len(COLUMNS))
    for r in rows:
        print("| " + " | ".join(str(c) for c in r) + " |")
    return 0


if __name__ == "__main__":
    raise SystemExit(main())
