"""Patch Transformer: in-graph normalization, padding invariance, ONNX export with dynamic axes."""

import warnings

import numpy as np
import onnxruntime as ort
import pytest
import torch
from sktime.datasets import load_gunpoint

from selfsup_trainer.config import TrainConfig
from selfsup_trainer.series.models import PatchTransformerEncoder, shape_of_state


def config(**kw) -> TrainConfig:
    base = {
        "modality": "timeseries",
        "objective": "masked",
        "steps": 1,
        "hidden": 32,
        "heads": 2,
        "layers": 2,
        "intermediate": 64,
        "series_patch": 8,
    }
    return TrainConfig(**{**base, **kw}).resolve()


@pytest.fixture(scope="module")
def gunpoint() -> torch.Tensor:
    x, _ = load_gunpoint(split="train", return_type="numpy3D")  # [50, 1, 150]
    return torch.from_numpy(x[:6, :, :144].astype(np.float32))


def padded(series: torch.Tensor, lengths: list[int], width: int, fill: float = 0.0):
    """End-pad rows of ``series`` [B, C, L] cut to ``lengths``; padding holds ``fill``."""
    b, c, _ = series.shape
    values = torch.full((b, c, width), fill)
    observed = torch.zeros(b, width)
    for i, n in enumerate(lengths):
        values[i, :, :n] = series[i, :, :n]
        observed[i, :n] = 1
    return values, observed


def test_per_series_normalization_equals_numpy(gunpoint):
    encoder = PatchTransformerEncoder(config(), channels=1, max_length=144)
    lengths = [144, 100, 37, 9, 1, 80]
    values, observed = padded(gunpoint * 3 + 7, lengths, 144, fill=123.0)
    out = encoder.normalize(values, observed).numpy()
    for i, n in enumerate(lengths):
        x = values[i, 0, :n].numpy().astype(np.float64)
        expected = (x - x.mean()) / (x.std() + 1e-5)  # population std, as decision 0005 says
        np.testing.assert_allclose(out[i, 0, :n], expected, atol=1e-4)  # float32 sums
        assert not out[i, 0, n:].any()  # padding is zeroed whatever it held


def test_dataset_and_none_normalization():
    mean, std = [1.5, -2.0], [0.5, 4.0]
    values = torch.randn(3, 2, 16) * 3
    observed = torch.ones(3, 16)
    observed[1, 8:] = 0
    enc = PatchTransformerEncoder(config(normalization="dataset"), 2, 16, mean, std)
    expected = (values - torch.tensor(mean)[:, None]) / (torch.tensor(std)[:, None] + 1e-5)
    expected = expected * observed[:, None]
    torch.testing.assert_close(enc.normalize(values, observed), expected)
    raw = PatchTransformerEncoder(config(normalization="none"), 2, 16)
    torch.testing.assert_close(raw.normalize(values, observed), values * observed[:, None])


def test_patches_are_channel_major_and_real_if_any_point_is_observed():
    enc = PatchTransformerEncoder(config(series_patch=4), channels=2, max_length=12)
    values = torch.arange(24.0).view(1, 2, 12)
    observed = torch.tensor([[1.0] * 5 + [0.0] * 7])
    patches, points, real = enc.patches(values, observed)
    assert patches.shape == (1, 3, 8) and points.shape == (1, 3, 4)
    assert patches[0, 0].tolist() == [0, 1, 2, 3, 12, 13, 14, 15]
    assert patches[0, 1].tolist() == [4, 0, 0, 0, 16, 0, 0, 0]
    assert real.tolist() == [[True, True, False]]


def test_padding_to_a_longer_length_embeds_the_same(gunpoint):
    torch.manual_seed(0)
    enc = PatchTransformerEncoder(config(), channels=1, max_length=144).eval()
    lengths = [144, 100, 37, 9, 1, 80]
    with torch.no_grad():
        short = enc(*padded(gunpoint, lengths, 144))
        for width, fill in ((144, 55.0), (144, -3.0)):
            values, observed = padded(gunpoint, lengths, width, fill)
            torch.testing.assert_close(enc(values, observed), short, atol=1e-6, rtol=0)
        # Each row alone, padded only to its own patch boundary, matches the batch.
        for i, n in enumerate(lengths):
            width = -(-n // 8) * 8
            alone = enc(*padded(gunpoint[i : i + 1], [n], width))
            torch.testing.assert_close(alone[0], short[i], atol=1e-6, rtol=0)
    assert torch.allclose(short.norm(dim=1), torch.ones(6))


def test_onnx_export_has_dynamic_batch_and_length(tmp_path, gunpoint):
    torch.manual_seed(0)
    enc = PatchTransformerEncoder(config(), channels=1, max_length=144).eval()
    path = tmp_path / "series.onnx"
    with warnings.catch_warnings():
        warnings.simplefilter("ignore")
        torch.onnx.export(
            enc,
            (torch.randn(2, 1, 16), torch.ones(2, 16)),
            str(path),
            input_names=["values", "observed"],
            output_names=["embeddings"],
            dynamic_axes={
                "values": {0: "batch", 2: "length"},
                "observed": {0: "batch", 1: "length"},
                "embeddings": {0: "batch"},
            },
            opset_version=17,
            dynamo=False,
        )
    session = ort.InferenceSession(str(path), providers=["CPUExecutionProvider"])
    for lengths, width in (([9], 16), ([144, 37, 80], 144), ([5, 144, 100, 1, 8, 9], 144)):
        values, observed = padded(gunpoint[: len(lengths)], lengths, width)
        onnx = session.run(None, {"values": values.numpy(), "observed": observed.numpy()})[0]
        with torch.no_grad():
            reference = enc(values, observed).numpy()
        assert onnx.shape == (len(lengths), 32)
        np.testing.assert_allclose(onnx, reference, atol=1e-5)


def test_shape_is_recovered_from_weights_and_bad_length_is_refused():
    enc = PatchTransformerEncoder(config(series_patch=4), channels=3, max_length=40)
    state = {f"encoder.{k}": v for k, v in enc.state_dict().items()}
    assert shape_of_state(state, 4) == (3, 40)
    with pytest.raises(ValueError, match="max_length=30 is not a multiple of series_patch=8"):
        PatchTransformerEncoder(config(), channels=1, max_length=30)
