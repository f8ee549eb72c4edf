"""Post-hoc centering / whitening of embeddings, baked into the exported graph, and isotropy.

Encoders pretrained with MLM (and many public ones) put every sentence in a narrow cone: the mean
pairwise cosine of unrelated documents is 0.9+, so cosine similarity, the main use of an embeddings
API, says little. Subtracting the corpus mean (and optionally decorrelating the dimensions,
BERT-whitening, Su et al. 2021) fixes that without retraining. The transform is fitted on training
documents and wrapped around the encoder *before* export, so the ONNX graph serves exactly the
vectors the probes measured.
"""

from __future__ import annotations

from typing import Any

import numpy as np
import torch
import torch.nn.functional as F
from torch import nn

from .data import TokenizedCorpus, pad_batch

FIT_SAMPLE = 4096  # training documents embedded to fit the transform
WHITEN_EPS = 1e-6  # added to the covariance eigenvalues: a rank-deficient sample stays finite


class PostProcessed(nn.Module):
    """``normalize((encoder(*inputs) - mean) @ matrix)``; forward has the encoder's signature."""

    def __init__(self, encoder: nn.Module, mean: torch.Tensor, matrix: torch.Tensor | None) -> None:
        super().__init__()
        self.encoder = encoder
        self.register_buffer("mean", mean.float())
        self.register_buffer("matrix", matrix.float() if matrix is not None else None)

    def forward(self, *inputs: torch.Tensor) -> torch.Tensor:
        """Inputs as the wrapped encoder takes them -> [batch, dims] unit vectors."""
        z = self.encoder(*inputs) - self.mean
        if self.matrix is not None:
            z = z @ self.matrix
        return F.normalize(z, p=2.0, dim=-1)


def fit(embeddings: torch.Tensor, kind: str) -> tuple[torch.Tensor, torch.Tensor | None]:
    """Fit the transform.

    Args:
        embeddings: [n, dims] encoder outputs of training documents.
        kind: "center" or "whiten".

    Returns:
        (mean [dims], matrix [dims, dims] or None for "center").

    Raises:
        ValueError: unknown kind, or too few documents to fit.
    """
    if kind not in ("center", "whiten"):
        raise ValueError(f"postprocess={kind!r} cannot be fitted; use center or whiten")
    if len(embeddings) < 2:
        raise ValueError(f"postprocess={kind}: {len(embeddings)} document(s) to fit on; need >= 2")
    x = embeddings.double()
    mean = x.mean(0)
    if kind == "center":
        return mean.float(), None
    cov = (x - mean).T @ (x - mean) / len(x)
    u, s, _ = torch.linalg.svd(cov)
    return mean.float(), (u / torch.sqrt(s + WHITEN_EPS)).float()


@torch.no_grad()
def embed_corpus(
    encoder: nn.Module, corpus: TokenizedCorpus, limit: int = FIT_SAMPLE, batch_size: int = 64
) -> torch.Tensor:
    """Embeddings of up to ``limit`` documents spread evenly over ``corpus``: [n, dims] on CPU."""
    was_training = encoder.training
    encoder.eval()
    device = next(encoder.parameters()).device
    picks = np.linspace(0, len(corpus) - 1, num=min(limit, len(corpus))).round().astype(int)
    out = []
    for start in range(0, len(picks), batch_size):
        ids, mask = pad_batch([corpus.ids(int(i)) for i in picks[start : start + batch_size]])
        out.append(encoder(ids.to(device), mask.to(device)).float().cpu())
    encoder.train(was_training)
    return torch.cat(out)


def mean_pairwise_cosine(embeddings: torch.Tensor) -> float:
    """Mean cosine over all distinct pairs of rows of [n, dims] (near 0: isotropic; near 1:
    collapsed)."""
    z = F.normalize(embeddings.double(), dim=-1)
    n = len(z)
    if n < 2:
        raise ValueError("mean_pairwise_cosine needs >= 2 rows")
    total = z.sum(0)
    # sum over i != j of z_i . z_j = |sum z|^2 - sum |z_i|^2
    return float((total @ total - n) / (n * (n - 1)))


def apply(
    encoder: nn.Module,
    kind: str,
    corpus: TokenizedCorpus,
    heldout: TokenizedCorpus,
    log=print,
) -> tuple[nn.Module, dict[str, Any]]:
    """Fit ``kind`` on ``corpus`` and wrap ``encoder``; isotropy measured on ``heldout``.

    Returns:
        (the encoder to export — ``encoder`` itself for "none" — and the manifest's
        ``isotropy``/``postprocess`` facts).
    """
    raw = mean_pairwise_cosine(embed_corpus(encoder, heldout))
    final, info = encoder, {"kind": kind}
    if kind != "none":
        sample = embed_corpus(encoder, corpus)
        mean, matrix = fit(sample, kind)
        final = PostProcessed(encoder, mean, matrix)
        info["fitted_on"] = len(sample)
    served = mean_pairwise_cosine(embed_corpus(final, heldout)) if kind != "none" else raw
    log(f"isotropy: mean pairwise cosine {raw:.3f} raw -> {served:.3f} served ({kind})")
    return final, {
        "postprocess": info,
        "isotropy": {"mean_pairwise_cosine": served, "raw": raw, "documents": len(heldout)},
    }
