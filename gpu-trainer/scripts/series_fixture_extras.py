"""Data and reference files for the time-series fixtures (run by make_series_fixture.sh).

Usage:
    python scripts/series_fixture_extras.py data SERIES_DIR TRAIN_JSONL
    python scripts/series_fixture_extras.py reference ARTIFACT_DIR PROBE_JSONL

``data`` writes real UCR/UEA sets bundled with sktime (BSD-3) as the probe sets of the edge
tests, and ItalyPowerDemand's train split (unlabeled use) for pretraining. ``reference`` writes
``reference_embeddings.json``: Python onnxruntime outputs of both variants for single series and
for one padded batch of different lengths, with the exact feeds, so the Worker can check its
padding and its session against the trainer.
"""

from __future__ import annotations

import json
import sys
from pathlib import Path

import numpy as np
import onnxruntime as ort
from sktime.datasets import load_basic_motions, load_italy_power_demand


def rounded(x: np.ndarray) -> list:
    # 5 decimals: the UCR files themselves carry about that precision.
    return np.round(x.astype(np.float64), 5).tolist()


def write_jsonl(path: Path, rows: list[dict]) -> None:
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))


def data(series_dir: Path, train_jsonl: Path) -> None:
    series_dir.mkdir(parents=True, exist_ok=True)
    x, y = load_italy_power_demand(split="train", return_type="numpy3D")
    write_jsonl(
        train_jsonl, [{"values": rounded(s[0]), "label": str(c)} for s, c in zip(x, y, strict=True)]
    )
    x, y = load_italy_power_demand(split="test", return_type="numpy3D")
    # The first 300 of the 1029 test series: both classes (~half each), 59 KB.
    probe = [
        {"values": rounded(s[0]), "label": str(c)} for s, c in zip(x[:300], y[:300], strict=True)
    ]
    write_jsonl(series_dir / "italy-power-probe.jsonl", probe)
    # The same data as CSV (header, label column last); rows 3, 7, 11, ... keep only their
    # first 16-20 hours so the file has variable lengths (trailing empty cells).
    lines = [",".join([f"h{t:02d}" for t in range(24)] + ["label"])]
    for i, (s, c) in enumerate(zip(x[:40], y[:40], strict=True)):
        keep = 24 if i % 4 != 3 else 16 + i % 5
        cells = [f"{v:.5f}" for v in s[0][:keep]] + [""] * (24 - keep)
        lines.append(",".join([*cells, str(c)]))
    (series_dir / "italy-power-small.csv").write_text("\n".join(lines) + "\n")
    # Multivariate: BasicMotions (6 channels x 100 steps, accelerometer + gyroscope), 3 test
    # series per class.
    x, y = load_basic_motions(split="test", return_type="numpy3D")
    picks = [i for c in sorted(set(y)) for i in np.flatnonzero(y == c)[:3]]
    motions = [{"values": rounded(x[i]), "label": str(y[i])} for i in picks]
    write_jsonl(series_dir / "basic-motions.jsonl", motions)
    print(f"wrote {len(probe)} + 40 ItalyPowerDemand and {len(motions)} BasicMotions series")


def pad(series: list[np.ndarray], patch: int) -> dict[str, np.ndarray]:
    """End padding to a multiple of ``patch``, as the edge does: zeros, observed 0."""
    width = -(-max(s.shape[1] for s in series) // patch) * patch
    values = np.zeros((len(series), series[0].shape[0], width), dtype=np.float32)
    observed = np.zeros((len(series), width), dtype=np.float32)
    for i, s in enumerate(series):
        values[i, :, : s.shape[1]] = s
        observed[i, : s.shape[1]] = 1.0
    return {"values": values, "observed": observed}


def reference(artifact: Path, probe: Path) -> None:
    manifest = json.loads((artifact / "manifest.json").read_text())
    patch = manifest["preprocessing"]["patch_size"]
    rows = [json.loads(line) for line in probe.read_text().splitlines() if line.strip()]
    full = [np.asarray(rows[i]["values"], dtype=np.float32)[None] for i in (0, 1, 2, 150)]
    # Lengths that are not multiples of the patch, down to a single point.
    cut = [full[0][:, :20], full[1][:, :13], full[2][:, :1], full[3][:, :9]]
    sessions = {
        v: ort.InferenceSession(str(artifact / f), providers=["CPUExecutionProvider"])
        for v, f in (("fp32", "model.onnx"), ("int8", "model.int8.onnx"))
    }
    out = {
        "note": "onnxruntime (Python) outputs; each feed is the series padded at the end with "
        "zeros to a multiple of patch_size, observed 1 on real points",
        "cases": [],
    }
    for series in full + cut:
        feed = pad([series], patch)
        entry = {"series": rounded(series[0]), "length": int(feed["observed"].shape[1])}
        for variant, session in sessions.items():
            entry[variant] = [round(float(v), 7) for v in session.run(None, feed)[0][0]]
        out["cases"].append(entry)
    batch = [full[0], cut[1], cut[2], full[3], cut[0]]
    feed = pad(batch, patch)
    out["batch"] = {
        "series": [rounded(s[0]) for s in batch],
        "values": rounded(feed["values"]),  # [batch, channels, length]
        "observed": feed["observed"].astype(int).tolist(),
    }
    for variant, session in sessions.items():
        out["batch"][variant] = np.round(session.run(None, feed)[0], 7).tolist()
    (artifact / "reference_embeddings.json").write_text(json.dumps(out))
    print(f"wrote {len(out['cases'])} single-series cases and a batch of {len(batch)}")


if __name__ == "__main__":
    command, first, second = sys.argv[1], Path(sys.argv[2]), Path(sys.argv[3])
    {"data": data, "reference": reference}[command](first, second)
