"""Time-series SSL quality: masked / temporal / contrastive pretraining on UCR sets, probed.

Run with the trainer venv (sktime is in its ``dev`` group):

    gpu-trainer/.venv/bin/python bench/series_quality.py [--steps 400] [--threads 2]

For GunPoint and ItalyPowerDemand (sktime's bundled copies), each objective pretrains a patch
Transformer on the train+test *values* (no labels: acceptable for SSL, the labels never reach
pretraining) through the real pipeline (``series.pipeline.pretrain``: training, ONNX export,
parity gates). The exported fp32 ONNX graph then embeds the official train and test splits, and
linear (standardized logistic regression) and cosine kNN probes fit on train and score on test.
Baselines: the raw-values floor (decision 0005's raw baseline: per-series normalized values
resampled to 128 points per channel, same probes) and a random-init encoder of the same
architecture. CPU-sized: a few minutes on 2 cores.
"""

from __future__ import annotations

import argparse
import json
import tempfile
import time
from functools import partial
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
from sktime.datasets import load_gunpoint, load_italy_power_demand

from selfsup_trainer.config import TrainConfig
from selfsup_trainer.probe import knn_accuracy, linear_accuracy
from selfsup_trainer.series.models import PatchTransformerEncoder

DATASETS = {"GunPoint": load_gunpoint, "ItalyPowerDemand": load_italy_power_demand}
OBJECTIVES = ("masked", "temporal", "contrastive")


def load(name: str) -> tuple[np.ndarray, np.ndarray, np.ndarray, np.ndarray]:
    """Official split as float32 [N, C, L] arrays and integer labels."""
    x_tr, y_tr = DATASETS[name](split="train", return_type="numpy3D")
    x_te, y_te = DATASETS[name](split="test", return_type="numpy3D")
    classes = sorted(set(y_tr) | set(y_te))
    y_tr = np.array([classes.index(v) for v in y_tr])
    y_te = np.array([classes.index(v) for v in y_te])
    return x_tr.astype(np.float32), y_tr, x_te.astype(np.float32), y_te


def raw_features(x: np.ndarray, points: int = 128) -> np.ndarray:
    """Per-series normalized values, linearly resampled to ``points`` per channel, flattened."""
    z = (x - x.mean(-1, keepdims=True)) / (x.std(-1, keepdims=True) + 1e-5)
    grid = np.linspace(0, x.shape[-1] - 1, points)
    resampled = np.stack(
        [[np.interp(grid, np.arange(x.shape[-1]), ch) for ch in series] for series in z]
    )
    return resampled.reshape(len(x), -1).astype(np.float32)


def feeds(x: np.ndarray, patch: int) -> dict[str, np.ndarray]:
    width = -(-x.shape[-1] // patch) * patch
    values = np.zeros((len(x), x.shape[1], width), dtype=np.float32)
    values[:, :, : x.shape[-1]] = x
    observed = np.zeros((len(x), width), dtype=np.float32)
    observed[:, : x.shape[-1]] = 1
    return {"values": values, "observed": observed}


@torch.no_grad()
def torch_embed(encoder: PatchTransformerEncoder, x: np.ndarray) -> np.ndarray:
    feed = feeds(x, encoder.patch)
    return encoder(torch.from_numpy(feed["values"]), torch.from_numpy(feed["observed"])).numpy()


def onnx_embed(session: ort.InferenceSession, x: np.ndarray) -> np.ndarray:
    return session.run(None, feeds(x, 8))[0]


def probes(train_x, train_y, test_x, test_y) -> tuple[float, float]:
    args = (torch.from_numpy(train_x), torch.from_numpy(train_y))
    args += (torch.from_numpy(test_x), torch.from_numpy(test_y), int(train_y.max()) + 1)
    return linear_accuracy(*args), knn_accuracy(*args)


def settings(args: argparse.Namespace, objective: str) -> dict:
    return {
        "modality": "timeseries",
        "objective": objective,
        "preset": "tiny",  # 2 layers, hidden 128, 2 heads, intermediate 512
        "steps": args.steps,
        "batch_size": 32,
        "lr": 1e-3,
        "series_patch": 8,
        "seed": args.seed,
        "heldout_fraction": 0.05,
        "log_every": 50,
        "eval_every": 0,
    }


def main() -> None:
    from selfsup_trainer.series.pipeline import pretrain

    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--steps", type=int, default=400)
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--seed", type=int, default=0)
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows: dict[str, dict[str, tuple[float, float]]] = {}
    timings: list[str] = []
    with tempfile.TemporaryDirectory() as tmp:
        for name in DATASETS:
            x_tr, y_tr, x_te, y_te = load(name)
            data = Path(tmp) / f"{name}.jsonl"
            values = np.concatenate([x_tr, x_te])
            data.write_text("".join(json.dumps({"values": s.tolist()}) + "\n" for s in values))
            rows.setdefault("raw values (norm, 128 pts)", {})[name] = probes(
                raw_features(x_tr), y_tr, raw_features(x_te), y_te
            )
            config = TrainConfig(**settings(args, "masked")).resolve()
            torch.manual_seed(args.seed)
            length = -(-x_tr.shape[-1] // 8) * 8
            random_init = PatchTransformerEncoder(config, x_tr.shape[1], length).eval()
            embed = partial(torch_embed, random_init)
            rows.setdefault("random-init encoder", {})[name] = probes(
                embed(x_tr), y_tr, embed(x_te), y_te
            )
            for objective in OBJECTIVES:
                out = Path(tmp) / f"{name}-{objective}"
                started = time.perf_counter()
                config = TrainConfig(**settings(args, objective))
                manifest = pretrain(config, data, out, log=lambda _: None)
                elapsed = time.perf_counter() - started
                session = ort.InferenceSession(str(out / "model.onnx"))
                embed = partial(onnx_embed, session)
                rows.setdefault(objective, {})[name] = probes(embed(x_tr), y_tr, embed(x_te), y_te)
                m = manifest["metrics"]
                timings.append(
                    f"{name:17s} {objective:12s} {elapsed:6.1f} s  final loss "
                    f"{m['final_loss']:.4f}  {m['points_per_second']:,.0f} points/s  "
                    f"int8 parity mean {manifest['parity']['int8']['mean_cosine']:.5f}"
                )
                print(timings[-1], flush=True)
    # Ratios are against the raw-values floor measured in this same run (the anchor).
    anchor = next(iter(rows.values()))
    header = f"{'encoder':28s}" + "".join(
        f" | {n + ' lin':>20s} | {'/raw':>5s} | {n + ' kNN':>20s} | {'/raw':>5s}" for n in DATASETS
    )
    print()
    print(header)
    print("-" * len(header))
    for method, by_set in rows.items():
        cells = "".join(
            f" | {by_set[n][0]:20.3f} | {by_set[n][0] / anchor[n][0]:5.2f}"
            f" | {by_set[n][1]:20.3f} | {by_set[n][1] / anchor[n][1]:5.2f}"
            for n in DATASETS
        )
        print(f"{method:28s}{cells}")
    print(
        f"\n{args.steps} steps, batch 32, preset tiny, patch 8, per-series normalization, "
        f"seed {args.seed}; probes fit on the official train split, scored on test."
    )


if __name__ == "__main__":
    main()
