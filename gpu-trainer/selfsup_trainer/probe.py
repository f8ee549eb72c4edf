"""Quality during pretraining: kNN and linear probes on frozen embeddings of a labeled set.

These are the trainer-side numbers reported with the loss curve at each checkpoint; the API's
``/v1/probes`` runs the full version (cross-validated L2, per-class metrics) on registered models.
Each modality embeds its own probe set (``text/probe.py``, ``vision/pipeline.py``,
``series/pipeline.py``); the probes themselves are these.
"""

from __future__ import annotations

import random

import torch
import torch.nn.functional as F


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


def fit_logreg(
    x: torch.Tensor,
    y: torch.Tensor,
    classes: int,
    l2: float = 1e-3,
    label_smoothing: float = 0.0,
) -> tuple[torch.Tensor, torch.Tensor]:
    """Multinomial logistic regression ``x @ w + b`` fitted with L-BFGS (mean cross-entropy,
    optionally label-smoothed, + ``l2 * |w|²``); deterministic. Returns (w [dims, classes],
    b [classes])."""
    w = torch.zeros(x.shape[1], classes, requires_grad=True)
    b = torch.zeros(classes, requires_grad=True)
    opt = torch.optim.LBFGS(
        [w, b], max_iter=200, tolerance_grad=1e-6, line_search_fn="strong_wolfe"
    )

    def closure() -> torch.Tensor:
        opt.zero_grad()
        logits = x @ w + b
        loss = F.cross_entropy(logits, y, label_smoothing=label_smoothing) + l2 * (w * w).sum()
        loss.backward()
        return loss

    opt.step(closure)
    return w.detach(), b.detach()


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
    w, b = fit_logreg(xs, train_y, classes, l2)
    with torch.no_grad():
        return ((xt @ w + b).argmax(1) == test_y).float().mean().item()
