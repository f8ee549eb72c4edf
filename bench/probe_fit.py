"""Benchmark: the linear probe's fit, 10,000 x 384 x 10 classes, TypeScript vs scikit-learn.

Data (real): Fashion-MNIST (`apt-get install -y dataset-fashion-mnist`, MIT), the first 10,000
training images and the first 2,000 test images, pixels / 255 projected to 384 dims by a fixed
Gaussian random matrix (seed 0) -- the "random 384-d features" of /work/shared/data/README.md --
then standardized on train. This script writes that matrix to --out, times scikit-learn's
LogisticRegression(solver="lbfgs") on one thread, and `bench/probe_fit.ts` fits the same matrix
with api/services/probe/logreg.ts and prints the ratios.

    OMP_NUM_THREADS=1 OPENBLAS_NUM_THREADS=1 MKL_NUM_THREADS=1 \
      /tmp/probe-venv/bin/python bench/probe_fit.py --out /tmp/probe-bench
    source scripts/env.sh && npx tsx bench/probe_fit.ts /tmp/probe-bench
"""

import argparse
import gzip
import json
import time
from pathlib import Path

import numpy as np
from threadpoolctl import threadpool_limits
from sklearn.linear_model import LogisticRegression

SRC = Path("/usr/share/datasets/fashion-mnist")


def idx(path):
    with gzip.open(path) as f:
        raw = f.read()
    dims = raw[3]
    shape = [int.from_bytes(raw[4 + 4 * i : 8 + 4 * i], "big") for i in range(dims)]
    return np.frombuffer(raw, np.uint8, offset=4 + 4 * dims).reshape(shape)


def main():
    ap = argparse.ArgumentParser()
    ap.add_argument("--out", type=Path, default=Path("/tmp/probe-bench"))
    ap.add_argument("--n-train", type=int, default=10_000)
    ap.add_argument("--n-test", type=int, default=2_000)
    ap.add_argument("--dims", type=int, default=384)
    ap.add_argument("--C", type=float, default=1.0)
    ap.add_argument("--tol", type=float, nargs="+", default=[1e-4])
    ap.add_argument("--repeats", type=int, default=3)
    a = ap.parse_args()
    Xtr = idx(SRC / "train-images-idx3-ubyte.gz")[: a.n_train].reshape(a.n_train, -1) / 255.0
    ytr = idx(SRC / "train-labels-idx1-ubyte.gz")[: a.n_train].astype(np.int32)
    Xte = idx(SRC / "t10k-images-idx3-ubyte.gz")[: a.n_test].reshape(a.n_test, -1) / 255.0
    yte = idx(SRC / "t10k-labels-idx1-ubyte.gz")[: a.n_test].astype(np.int32)
    P = np.random.default_rng(0).standard_normal((Xtr.shape[1], a.dims)) / np.sqrt(Xtr.shape[1])
    Xtr, Xte = Xtr @ P, Xte @ P
    mean, std = Xtr.mean(0), Xtr.std(0)
    std[std == 0] = 1
    # float32 on disk; both sides fit the float64 values read back from it.
    Xtr = ((Xtr - mean) / std).astype(np.float32)
    Xte = ((Xte - mean) / std).astype(np.float32)
    a.out.mkdir(parents=True, exist_ok=True)
    Xtr.tofile(a.out / "Xtr.f32")
    ytr.tofile(a.out / "ytr.i32")
    Xte.tofile(a.out / "Xte.f32")
    yte.tofile(a.out / "yte.i32")
    runs = []
    X64, T64 = Xtr.astype(np.float64), Xte.astype(np.float64)
    with threadpool_limits(1):
        for tol in a.tol:
            times, cpu = [], []
            for _ in range(a.repeats):
                m = LogisticRegression(C=a.C, solver="lbfgs", tol=tol, max_iter=1000)
                t0, c0 = time.perf_counter(), time.process_time()
                m.fit(X64, ytr)
                times.append(time.perf_counter() - t0)
                cpu.append(time.process_time() - c0)
            runs.append(
                {
                    "tol": tol,
                    "seconds": min(times),
                    "cpu_seconds": min(cpu),
                    "iterations": int(m.n_iter_[0]),
                    "test_accuracy": float((m.predict(T64) == yte).mean()),
                }
            )
            print(json.dumps(runs[-1]))
    meta = {
        "n_train": a.n_train,
        "n_test": a.n_test,
        "dims": a.dims,
        "classes": 10,
        "C": a.C,
        "sklearn": runs,
        "sklearn_version": __import__("sklearn").__version__,
        "numpy_blas": str(np.__config__.CONFIG.get("Build Dependencies", {}).get("blas", {}).get("name")),
    }
    (a.out / "meta.json").write_text(json.dumps(meta, indent=2))


if __name__ == "__main__":
    main()
