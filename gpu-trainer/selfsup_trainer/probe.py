"""Quality during pretraining: kNN and linear probes on frozen embeddings of a labeled set.

These are the trainer-side numbers reported with the loss curve at each checkpoint; the API's
``/v1/probes`` runs the full version (cross-validated L2, per-class metrics) on registered models.
"""

from __future__ import annotations

import json
import random
from pathlib import Path

import torch
import torch.nn.functional as F
from tokenizers import Tokenizer

from .model import Encoder


def read_labeled(path: Path, limit: int = 2000) -> tuple[list[str], list[str]]:
    """Read a probe set (.jsonl ``{"text", "label"}``), at most ``limit`` records."""
    texts, labels = [], []
    with open(path, encoding="utf-8") as f:
        for line in f:
            if not line.strip():
                continue
            rec = json.loads(line)
            texts.append(str(rec["text"]))
            labels.append(str(rec["label"]))
            if len(texts) >= limit:
                break
    return texts, labels


@torch.no_grad()
def embed(
    encoder: Encoder, tokenizer: Tokenizer, texts: list[str], batch_size: int = 64
) -> torch.Tensor:
    """Pooled embeddings ``[len(texts), hidden]`` in eval mode (dropout off), on CPU."""
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    out = []
    for i in range(0, len(texts), batch_size):
        enc = tokenizer.encode_batch(texts[i : i + batch_size])
        width = max(len(e.ids) for e in enc)
        ids = torch.zeros(len(enc), width, dtype=torch.long)
        mask = torch.zeros(len(enc), width, dtype=torch.long)
        for row, e in enumerate(enc):
            ids[row, : len(e.ids)] = torch.tensor(e.ids)
            mask[row, : len(e.ids)] = 1
        out.append(encoder(ids.to(device), mask.to(device)).float().cpu())
    encoder.train(was_training)
    return torch.cat(out)


def split(n: int, test_fraction: float, seed: int) -> tuple[list[int], list[int]]:
    order = list(range(n))
    random.Random(seed).shuffle(order)
    n_test = max(1, round(n * test_fraction))
    return order[n_test:], order[:n_test]


def knn_accuracy(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    classes: int,
    k: int = 20,
    temperature: float = 0.07,
) -> float:
    """Cosine kNN with exp(sim/T)-weighted votes (DINO's evaluation)."""
    sims = F.normalize(test_x, dim=1) @ F.normalize(train_x, dim=1).T  # [test, train]
    top, idx = sims.topk(min(k, train_x.shape[0]), dim=1)
    votes = torch.zeros(test_x.shape[0], classes)
    votes.scatter_add_(1, train_y[idx], (top / temperature).exp())
    return (votes.argmax(1) == test_y).float().mean().item()


def linear_accuracy(
    train_x: torch.Tensor,
    train_y: torch.Tensor,
    test_x: torch.Tensor,
    test_y: torch.Tensor,
    classes: int,
    l2: float = 1e-3,
) -> float:
    """Multinomial logistic regression on standardized features, fitted with L-BFGS."""
    mean, std = train_x.mean(0), train_x.std(0).clamp_min(1e-6)
    xs, xt = (train_x - mean) / std, (test_x - mean) / std
    w = torch.zeros(xs.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b], max_iter=200, tolerance_grad=1e-6, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        loss = F.cross_entropy(xs @ w + b, train_y) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    with torch.no_grad():
        return ((xt @ w + b).argmax(1) == test_y).float().mean().item()


def probe_accuracies(
    encoder: Encoder, tokenizer: Tokenizer, texts: list[str], labels: list[str], seed: int = 0
) -> dict[str, float]:
    """kNN and linear accuracy on a seeded 80/20 split of ``texts``."""
    names = sorted(set(labels))
    if len(names) < 2:
        raise ValueError(f"the eval probe set has {len(names)} label(s); it needs at least 2")
    y = torch.tensor([names.index(label) for label in labels])
    x = embed(encoder, tokenizer, texts)
    tr, te = split(len(texts), 0.2, seed)
    args = (x[tr], y[tr], x[te], y[te], len(names))
    return {"knn_accuracy": knn_accuracy(*args), "linear_accuracy": linear_accuracy(*args)}
