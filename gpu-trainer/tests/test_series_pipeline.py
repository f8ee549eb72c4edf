"""Series pretrain end to end: train, export with parity gates, manifest, resume, probes."""

import gzip
import hashlib
import json

import numpy as np
import onnxruntime as ort
import pytest
import torch
from conftest import REPO
from sktime.datasets import load_gunpoint, load_italy_power_demand

from selfsup_trainer.config import TrainConfig
from selfsup_trainer.series.pipeline import checkpoint_probe, pretrain

PROBE = REPO / "tests" / "fixtures" / "series" / "italy-power-probe.jsonl"
SMALL = {
    "modality": "timeseries",
    "hidden": 32,
    "heads": 2,
    "layers": 2,
    "intermediate": 64,
    "batch_size": 16,
    "log_every": 1,
    "heldout_fraction": 0.1,
    "lr": 1e-3,
}


@pytest.fixture(scope="module")
def italy_jsonl(tmp_path_factory):
    """ItalyPowerDemand train+test values (unlabeled), every 5th row cut to 11-23 points."""
    x = np.concatenate(
        [load_italy_power_demand(split=s, return_type="numpy3D")[0] for s in ("train", "test")]
    )[:400]
    rows = [
        {"values": s[0][: 24 if i % 5 else 11 + i % 13].round(5).tolist()} for i, s in enumerate(x)
    ]
    path = tmp_path_factory.mktemp("series") / "italy.jsonl"
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return path


def run(data, out, stop_at=None, resume=None, eval_path=None, **kw):
    infos = []
    config = TrainConfig(**{**SMALL, **kw})
    manifest = pretrain(
        config,
        data,
        out,
        resume=resume,
        stop_at=stop_at,
        callback=infos.append,
        log=lambda _: None,
        eval_path=eval_path,
    )
    return manifest, infos


def losses_of(out):
    last = sorted((out / "checkpoints").glob("step-*"))[-1]
    return torch.load(last / "state.pt", weights_only=False)["losses"]


@pytest.mark.parametrize("objective", ["masked", "temporal", "contrastive"])
def test_pretrain_exports_a_valid_artifact(italy_jsonl, tmp_path, objective):
    manifest, infos = run(italy_jsonl, tmp_path, objective=objective, steps=12, eval_path=PROBE)
    assert [i.step for i in infos] == list(range(1, 13)) and infos[0].objective == objective
    assert manifest["modality"] == "timeseries" and manifest["objective"] == objective
    assert manifest["inputs"] == ["values", "observed"] and manifest["dims"] == 32
    assert manifest["preprocessing"] == {
        "channels": 1,
        "max_length": 24,
        "patch_size": 8,
        "normalization": "per_series",
        "mean": None,
        "std": None,
        "in_graph": True,
        "pad": "end",
        "truncate": "keep_first",
    }
    assert manifest["parity"]["fp32"]["min_cosine"] >= 0.9999
    assert manifest["parity"]["fp32"]["rows"] == 12
    assert manifest["parity"]["int8"]["mean_cosine"] >= 0.99
    metrics = manifest["metrics"]
    assert 0.5 <= metrics["knn_accuracy"] <= 1 and 0.5 <= metrics["linear_accuracy"] <= 1
    assert metrics["steps"] == 12 and np.isfinite(metrics["final_loss"])
    assert manifest["dataset"]["stats"]["records"] == 400
    assert manifest["dataset"]["stats"]["min_length"] == 11
    for name, entry in manifest["files"].items():
        assert hashlib.sha256((tmp_path / name).read_bytes()).hexdigest() == entry["sha256"]
    # The edge's view: pad to the patch grid, run the graph, get unit vectors.
    session = ort.InferenceSession(str(tmp_path / "model.int8.onnx"))
    values = np.zeros((2, 1, 16), dtype=np.float32)
    values[0, 0, :13] = np.linspace(0, 3, 13)
    values[1, 0] = np.cos(np.arange(16))
    observed = (values[:, 0] != 0).astype(np.float32)
    observed[1] = 1
    out = session.run(None, {"values": values, "observed": observed})[0]
    np.testing.assert_allclose(np.linalg.norm(out, axis=1), 1, atol=1e-5)


@pytest.mark.parametrize("objective", ["masked", "temporal", "contrastive"])
def test_resume_reproduces_the_uninterrupted_run(italy_jsonl, tmp_path, objective):
    n = 4
    full, partial = tmp_path / "full", tmp_path / "partial"
    common = {"objective": objective, "steps": 2 * n, "checkpoint_every": n}
    # Evaluating mid-run must not consume training randomness, so only one run does it.
    run(italy_jsonl, full, eval_every=3, **common)
    manifest, _ = run(italy_jsonl, partial, stop_at=n, **common)
    assert manifest is None and not (partial / "manifest.json").exists()
    manifest, infos = run(italy_jsonl, partial, resume=partial, **common)
    assert infos[0].step == n + 1 and manifest["metrics"]["steps"] == 2 * n
    reference, resumed = losses_of(full), losses_of(partial)
    assert len(reference) == len(resumed) == 2 * n
    for step, (a, b) in enumerate(zip(reference, resumed, strict=True), start=1):
        assert abs(a - b) <= 1e-6, f"step {step}: uninterrupted {a} != resumed {b}"


def test_csv_dataset_normalization_and_checkpoint_probe(tmp_path):
    x, _ = load_gunpoint(split="train", return_type="numpy3D")  # 50 x 150
    lines = [",".join(f"t{i}" for i in range(150))]
    lines += [",".join(f"{v:.5f}" for v in s[0]) for s in x]
    data = tmp_path / "gunpoint.csv.gz"
    data.write_bytes(gzip.compress(("\n".join(lines) + "\n").encode()))
    manifest, _ = run(
        data,
        tmp_path / "out",
        objective="masked",
        steps=4,
        checkpoint_every=4,
        normalization="dataset",
        series_patch=16,
    )
    pre = manifest["preprocessing"]
    assert pre["max_length"] == 160 and pre["patch_size"] == 16
    assert pre["normalization"] == "dataset" and len(pre["mean"]) == len(pre["std"]) == 1
    assert pre["mean"][0] == pytest.approx(float(x.mean()), abs=0.05)  # train rows only
    step_dir = sorted((tmp_path / "out" / "checkpoints").glob("step-*"))[-1]
    probes = checkpoint_probe(step_dir, PROBE)  # 24-point series into a 160-point model
    assert set(probes) == {"knn_accuracy", "linear_accuracy"}
    assert all(0.4 <= v <= 1 for v in probes.values())


def test_series_length_truncates_and_temporal_needs_two_patches(italy_jsonl, tmp_path):
    manifest, _ = run(
        italy_jsonl, tmp_path / "a", objective="masked", steps=2, series_length=12, series_patch=4
    )
    assert manifest["preprocessing"]["max_length"] == 12
    lengths = [len(json.loads(line)["values"]) for line in italy_jsonl.read_text().splitlines()]
    assert manifest["dataset"]["stats"]["truncated"] == sum(n > 12 for n in lengths) > 300
    with pytest.raises(ValueError, match="objective=temporal needs at least 2 patches"):
        run(italy_jsonl, tmp_path / "b", objective="temporal", steps=2, series_patch=24)
