"""Series objectives: which patches are masked, what the targets are, what the encoder may see."""

import json

import numpy as np
import pytest
import torch
from sktime.datasets import load_italy_power_demand

from selfsup_trainer.config import TrainConfig
from selfsup_trainer.series.contrastive import augment
from selfsup_trainer.series.data import read_series
from selfsup_trainer.series.masked import choose_masked, real_patches
from selfsup_trainer.series.pretext import SeriesPretext
from selfsup_trainer.series.temporal import context_and_targets, draw_cuts


def make_pretext(objective: str, channels: int = 1, max_length: int = 24, **kw) -> SeriesPretext:
    torch.manual_seed(0)
    base = {
        "modality": "timeseries",
        "objective": objective,
        "steps": 1,
        "hidden": 32,
        "heads": 2,
        "layers": 1,
        "intermediate": 64,
        "series_patch": 4,
    }
    config = TrainConfig(**{**base, **kw}).resolve()
    return SeriesPretext(config, channels, max_length).eval()


@pytest.fixture(scope="module")
def italy(tmp_path_factory):
    """ItalyPowerDemand train series with varied lengths (rows cut to 3..24 points)."""
    x, _ = load_italy_power_demand(split="train", return_type="numpy3D")
    path = tmp_path_factory.mktemp("italy") / "italy.jsonl"
    lengths = [3 + (i * 7) % 22 for i in range(len(x))]
    rows = [{"values": s[0][:n].tolist()} for s, n in zip(x, lengths, strict=True)]
    path.write_text("".join(json.dumps(r) + "\n" for r in rows))
    return read_series(path)


def test_choose_masked_rate_bounds_and_determinism():
    real = torch.zeros(4, 10, dtype=torch.bool)
    for row, n in enumerate((10, 5, 2, 1)):
        real[row, :n] = True
    mask = choose_masked(real, 0.4, torch.Generator().manual_seed(1))
    assert mask.sum(1).tolist() == [4, 2, 1, 1]  # round(0.4 n), >= 1, one visible when n >= 2
    assert not (mask & ~real).any()
    again = choose_masked(real, 0.4, torch.Generator().manual_seed(1))
    assert torch.equal(mask, again)
    assert not torch.equal(mask, choose_masked(real, 0.4, torch.Generator().manual_seed(2)))


def test_masked_loss_is_mse_on_masked_observed_points(italy):
    pretext = make_pretext("masked")
    objective = pretext.phase(0, 1)
    batch = objective.collate(italy, np.arange(16), torch.Generator().manual_seed(0))
    assert not (batch["mask"] & ~real_patches(batch["observed"], 4)).any()
    # With a zero decoder the prediction is 0, so the loss is the mean squared normalized value
    # over exactly the masked, observed points.
    torch.nn.init.zeros_(pretext.heads["masked"].decoder.weight)
    torch.nn.init.zeros_(pretext.heads["masked"].decoder.bias)
    loss, stats = objective.loss(pretext.encoder, batch)
    values, observed, mask = (batch[k].numpy() for k in ("values", "observed", "mask"))
    total, count = 0.0, 0
    for i in range(16):
        n = int(observed[i].sum())
        x = values[i, 0, :n].astype(np.float64)
        z = (x - x.mean()) / (x.std() + 1e-5)
        point_masked = np.repeat(mask[i], 4)[:n]
        total += (z[point_masked] ** 2).sum()
        count += int(point_masked.sum())
    assert int(stats["count"]) == count
    assert loss.item() == pytest.approx(total / count, rel=1e-4)


def test_temporal_cuts_targets_and_context_statistics():
    lengths = torch.tensor([24, 9, 4, 13])
    cuts = draw_cuts(lengths, 4, torch.Generator().manual_seed(0))
    n_patches = torch.tensor([6, 3, 1, 4])
    assert ((cuts >= 1) & ((cuts <= n_patches - 1) | (n_patches == 1))).all()
    pretext = make_pretext("temporal", predict_patches=2)
    x, _ = load_italy_power_demand(split="train", return_type="numpy3D")
    values = torch.from_numpy(x[:3].astype(np.float32))
    observed = torch.zeros(3, 24)
    observed[0], observed[1, :14], observed[2, :8] = 1, 1, 1
    values = values * observed[:, None]
    cut = torch.tensor([2, 3, 1])
    _, points, real, targets, weights = context_and_targets(
        pretext.encoder, values, observed, cut, horizon=2
    )
    assert real.sum(1).tolist() == [2, 3, 1]  # the encoder sees only the context
    assert points.sum((1, 2)).tolist() == [8, 12, 4]
    for row, (c, n) in enumerate(((2, 24), (3, 14), (1, 8))):
        context = values[row, 0, : 4 * c].double()
        future = values[row, 0, 4 * c : min(4 * c + 8, n)].double()
        whole = values[row, 0, :n].double().std(unbiased=False)
        std = torch.maximum(context.std(unbiased=False), 0.25 * whole)  # CONTEXT_STD_FLOOR
        expected = (future - context.mean()) / (std + 1e-5)
        k = len(future)
        got = targets[row].flatten()[:k].double()
        torch.testing.assert_close(got, expected, atol=1e-4, rtol=1e-4)
        assert weights[row].flatten().tolist() == [1.0] * k + [0.0] * (8 - k)


def test_temporal_prediction_ignores_everything_after_the_cut(italy):
    pretext = make_pretext("temporal")
    objective = pretext.phase(0, 1)
    batch = objective.collate(italy, np.arange(8), torch.Generator().manual_seed(3))
    loss, _ = objective.loss(pretext.encoder, batch)
    altered = dict(batch)
    steps = torch.arange(batch["values"].shape[2])
    future = steps[None] >= (batch["cut"] * 4)[:, None]
    altered["values"] = torch.where(future[:, None], batch["values"] * 5 + 3, batch["values"])
    # Only the targets changed: the prediction must not, so the loss moves only through them.
    states = []
    for b in (batch, altered):
        inputs = context_and_targets(pretext.encoder, b["values"], b["observed"], b["cut"], 2)
        with torch.no_grad():
            states.append(pretext.encoder.encode(*inputs[:3]))
    torch.testing.assert_close(states[0], states[1])
    assert objective.loss(pretext.encoder, altered)[0].item() != pytest.approx(loss.item())


def test_contrastive_views_are_reproducible_end_padded_crops(italy):
    values = torch.from_numpy(italy.values[:16].copy())
    observed = torch.from_numpy(italy.observed[:16].copy())
    a_values, a_observed = augment(values, observed, torch.Generator().manual_seed(5))
    b_values, b_observed = augment(values, observed, torch.Generator().manual_seed(5))
    assert torch.equal(a_values, b_values) and torch.equal(a_observed, b_observed)
    assert a_values.shape == values.shape and (a_observed[:, 0] == 1).all()
    assert (a_observed.sum(1) <= observed.sum(1)).all()
    # A crop keeps >= 50% of the series and its masked span takes <= 10% of the crop.
    assert (a_observed.sum(1) >= torch.floor(0.9 * (0.5 * observed.sum(1)).round())).all()
    assert not (a_values * (1 - a_observed[:, None])).any()  # unobserved points hold 0
    c_values, _ = augment(values, observed, torch.Generator().manual_seed(6))
    assert not torch.equal(a_values, c_values)


@pytest.mark.parametrize("objective", ["masked", "temporal", "contrastive"])
def test_units_and_evaluate_restore_training_mode(italy, objective):
    pretext = make_pretext(objective).train()
    batch = pretext.phase(0, 1).collate(italy, np.arange(8), torch.Generator().manual_seed(0))
    real, padded, rows = pretext.phase(0, 1).units(batch)
    assert real == int(batch["observed"].sum()) and padded == batch["observed"].numel()
    assert rows == (16 if objective == "contrastive" else 8)
    metrics = pretext.evaluate(italy.subset(np.arange(20)), torch.device("cpu"))
    assert pretext.training and set(metrics) >= {"alignment", "uniformity"}
    assert all(np.isfinite(v) for v in metrics.values())
    assert metrics == pretext.evaluate(italy.subset(np.arange(20)), torch.device("cpu"))
