"""Centering / whitening baked into the graph, and the isotropy number reported with it."""

from __future__ import annotations

import itertools

import pytest
import torch
import torch.nn.functional as F

from selfsup_trainer.text.postprocess import PostProcessed, fit, mean_pairwise_cosine


def collapsed(n: int = 400, dims: int = 16, seed: int = 0) -> torch.Tensor:
    """Unit vectors in a narrow cone around one direction (what MLM pretraining produces)."""
    g = torch.Generator().manual_seed(seed)
    common = torch.randn(dims, generator=g)
    return F.normalize(common * 10 + torch.randn(n, dims, generator=g), dim=-1)


def test_mean_pairwise_cosine_is_the_mean_over_distinct_pairs():
    z = F.normalize(torch.randn(30, 8, generator=torch.Generator().manual_seed(1)), dim=-1)
    brute = [float(z[i] @ z[j]) for i, j in itertools.permutations(range(len(z)), 2)]
    assert mean_pairwise_cosine(z) == pytest.approx(sum(brute) / len(brute), abs=1e-6)


@pytest.mark.parametrize("kind", ["center", "whiten"])
def test_fitted_transform_uncollapses_vectors(kind):
    train, test = collapsed(seed=0), collapsed(seed=0)[200:]
    assert mean_pairwise_cosine(test) > 0.9
    mean, matrix = fit(train, kind)
    wrapped = PostProcessed(torch.nn.Identity(), mean, matrix)
    served = wrapped(test)
    assert abs(mean_pairwise_cosine(served)) < 0.05
    assert torch.allclose(served.norm(dim=-1), torch.ones(len(served)), atol=1e-5)
    if kind == "whiten":
        x = (train - mean) @ matrix
        cov = x.T @ x / len(x)
        # Decorrelated; unit variance except where WHITEN_EPS is not small against a direction's
        # variance (unit vectors, centred, keep almost none along the common direction).
        assert (cov - torch.diag(cov.diagonal())).abs().max() < 1e-3
        assert ((cov.diagonal() > 0.5) & (cov.diagonal() < 1.001)).all()
    else:
        assert matrix is None


def test_fit_refuses_unknown_kinds_and_tiny_samples():
    with pytest.raises(ValueError, match="postprocess='pca'"):
        fit(collapsed(), "pca")
    with pytest.raises(ValueError, match="need >= 2"):
        fit(collapsed(n=1), "center")
