"""Model FLOP utilisation: GPU bf16 peaks and the text transformer's FLOP model."""

from __future__ import annotations

import re

# Dense bf16 peak FLOP/s by GPU model (first match wins); MFU is reported only for these.
BF16_PEAK_FLOPS = {
    "H100 PCIe": 756e12,
    "H100": 989e12,
    "H200": 989e12,
    "A100": 312e12,
    "L4": 121e12,
}
H100_BF16_PEAK_FLOPS = BF16_PEAK_FLOPS["H100"]  # bench/trainer_gpu.py imports it


def peak_bf16_flops(device_name: str) -> float | None:
    """The dense bf16 peak of a GPU from ``torch.cuda.get_device_name()``; None if unknown.

    Whole words only: "NVIDIA L40S" is not an L4.
    """
    for model, peak in BF16_PEAK_FLOPS.items():
        if re.search(rf"\b{model}\b", device_name):
            return peak
    return None


def flops_per_token(
    n_params: int,
    layers: int,
    hidden: int,
    seq_len: float,
    vocab: int = 0,
    predicted_fraction: float = 0.0,
) -> float:
    """Training FLOPs per token (Kaplan et al. / PaLM appendix B), adapted to MLM:

        6 * N  +  12 * layers * hidden * seq_len  +  6 * vocab * hidden * predicted_fraction

    ``N`` is the non-embedding parameter count; ``6 * N`` is forward (2 FLOPs per weight per
    token) plus backward (twice the forward) through every weight matrix. ``12 * L * H * T`` is
    the attention score and value matmuls, which scale with sequence length and have no
    parameters. The last term is the tied vocabulary projection, which we run only on the
    predicted (masked) share of tokens. MFU = achieved FLOP/s over the GPU's dense bf16 peak
    (:func:`peak_bf16_flops`).
    """
    return (
        6.0 * n_params
        + 12.0 * layers * hidden * seq_len
        + 6.0 * vocab * hidden * predicted_fraction
    )
