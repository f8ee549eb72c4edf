"""ONNX export with parity gates, for every modality.

Writes ``model.onnx`` (fp32) and ``model.int8.onnx`` (dynamic int8 MatMuls), each with its
weights in ``<file>.data`` (the edge runtime passes that exact name as ``externalData``), the
modality's extra files (text: ``tokenizer.json``) and ``manifest.json``. What differs between
modalities (input names, example tensors, dynamic axes, parity feeds) is an :class:`ExportSpec`
(text's: :mod:`selfsup_trainer.text.export`).
Files are staged in a hidden folder and only moved into place after both gates pass, and
``manifest.json`` is written last: a folder with a manifest is a folder whose gates passed.
"""

from __future__ import annotations

import hashlib
import json
import logging
import shutil
import tempfile
import warnings
from collections.abc import Callable
from dataclasses import dataclass
from datetime import UTC, datetime
from pathlib import Path
from typing import Any

import numpy as np
import onnx
import onnxruntime as ort
import torch
from onnxruntime.quantization import QuantType, quantize_dynamic

from .text.kernel import KERNEL_FILE as KERNEL  # our WASM encoder's int8 file (numpy only)

OPSET = 17
FP32, INT8 = "model.onnx", "model.int8.onnx"
GATES = {
    "fp32_min_cosine": 0.9999,
    "int8_mean_cosine": 0.99,
    "int8_min_cosine": 0.97,
    # A classifier's ``logits`` output (fine-tuned versions, ft_contract): fp32 max abs diff vs
    # PyTorch, and the share of rows whose int8 argmax is fp32's.
    "fp32_logits_max_abs": 1e-3,
    "int8_argmax_agreement": 0.97,
}
LOGITS = "logits"


class ParityError(RuntimeError):
    """An exported model disagrees with PyTorch (or int8 with fp32) beyond the gate."""


Feed = dict[str, np.ndarray]
# Writes ``staging / KERNEL`` from the encoder and returns its parity against the fp32 graph's
# embeddings, or None (unsupported or below the int8 gates: logged, no kernel file).
KernelWriter = Callable[[Path, np.ndarray, dict[str, float], Callable[[str], None]], dict | None]


@dataclass
class ExportSpec:
    """How to trace an encoder and what to check it on.

    Attributes:
        input_names: graph input names, in the order of the encoder's forward arguments.
        example_inputs: one tensor per input, used only to trace.
        dynamic_axes: ``torch.onnx.export``'s dynamic axes (inputs and ``embeddings``).
        parity_feeds: held-out batches ``{input name: array}``; PyTorch runs them as
            ``encoder(*[torch.from_numpy(feed[n]) for n in input_names])``.
        outputs: graph output names, in the order forward returns them: ``embeddings`` first
            (a fine-tuned classifier adds ``logits``).
    """

    input_names: list[str]
    example_inputs: tuple[torch.Tensor, ...]
    dynamic_axes: dict[str, dict[int, str]]
    parity_feeds: list[Feed]
    outputs: tuple[str, ...] = ("embeddings",)


def save_with_external_data(model: onnx.ModelProto, path: Path) -> None:
    """Save ``path`` with every initializer in ``<name>.data`` next to it."""
    data = path.with_name(path.name + ".data")
    data.unlink(missing_ok=True)  # onnx appends to an existing data file
    onnx.save_model(
        model,
        str(path),
        save_as_external_data=True,
        all_tensors_to_one_file=True,
        location=data.name,
        size_threshold=0,
    )


def export_fp32(encoder: torch.nn.Module, path: Path, spec: ExportSpec) -> None:
    """Export the encoder's forward (inputs) -> embeddings with the spec's dynamic axes."""
    encoder = encoder.eval().cpu()
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "raw.onnx"
        # The TorchScript exporter is used because it handles dynamic_axes for this model in one
        # call without onnxscript; the dynamo exporter can replace it once it does the same.
        with warnings.catch_warnings():
            warnings.simplefilter("ignore", DeprecationWarning)  # chosen deliberately, see above
            torch.onnx.export(
                encoder,
                spec.example_inputs,
                str(raw),
                input_names=spec.input_names,
                output_names=list(spec.outputs),
                dynamic_axes=spec.dynamic_axes,
                opset_version=OPSET,
                do_constant_folding=True,
                dynamo=False,
            )
        model = onnx.load(str(raw))
    onnx.checker.check_model(model)
    save_with_external_data(model, path)


def quantize_int8(fp32_path: Path, int8_path: Path, weight_type: QuantType) -> None:
    """Dynamic quantization of MatMul weights (per output channel); activations stay float."""
    with tempfile.TemporaryDirectory() as tmp:
        raw = Path(tmp) / "int8.onnx"
        # The quantizer logs a generic "run pre-processing" hint on the root logger every call.
        root = logging.getLogger()
        level = root.level
        root.setLevel(logging.ERROR)
        try:
            quantize_dynamic(
                str(fp32_path),
                str(raw),
                per_channel=True,
                weight_type=weight_type,
                op_types_to_quantize=["MatMul"],
                use_external_data_format=True,
            )
        finally:
            root.setLevel(level)
        model = onnx.load(str(raw))  # loads the external data the quantizer wrote in tmp
    save_with_external_data(model, int8_path)


def run_onnx(
    path: Path, feeds: list[Feed], outputs: tuple[str, ...] = ("embeddings",)
) -> list[np.ndarray]:
    """Each output of the graph at ``path`` over every feed, concatenated along the batch."""
    options = ort.SessionOptions()
    options.intra_op_num_threads = 1  # parity is a correctness check; keep it deterministic
    session = ort.InferenceSession(str(path), options, providers=["CPUExecutionProvider"])
    runs = [session.run(list(outputs), feed) for feed in feeds]
    return [np.concatenate([r[i] for r in runs]) for i in range(len(outputs))]


@torch.no_grad()
def run_torch(encoder: torch.nn.Module, spec: ExportSpec) -> list[np.ndarray]:
    """PyTorch's answer for each of ``spec.outputs`` over the parity feeds."""
    encoder = encoder.eval().cpu()
    per_feed = []
    for feed in spec.parity_feeds:
        out = encoder(*[torch.from_numpy(feed[n]) for n in spec.input_names])
        outs = out if isinstance(out, tuple) else (out,)
        per_feed.append([o.float().numpy() for o in outs])
    return [np.concatenate([f[i] for f in per_feed]) for i in range(len(spec.outputs))]


def row_cosines(a: np.ndarray, b: np.ndarray) -> np.ndarray:
    """Cosine of each row pair; [n, d] x [n, d] -> [n]."""
    a = a.astype(np.float64)
    b = b.astype(np.float64)
    denom = np.linalg.norm(a, axis=1) * np.linalg.norm(b, axis=1)
    return (a * b).sum(1) / np.maximum(denom, 1e-12)


def file_sha256(path: str | Path) -> str:
    digest = hashlib.sha256()
    with open(path, "rb") as handle:
        for chunk in iter(lambda: handle.read(1 << 20), b""):
            digest.update(chunk)
    return digest.hexdigest()


def file_entry(path: Path) -> dict[str, Any]:
    return {"sha256": file_sha256(path), "bytes": path.stat().st_size}


def export_artifact(
    encoder: torch.nn.Module,
    out_dir: Path,
    spec: ExportSpec,
    manifest_fields: dict[str, Any],
    gates: dict[str, float] | None = None,
    log=print,
    extra_files: dict[str, Path] | None = None,
    int8_optional: bool = False,
    kernel: KernelWriter | None = None,
) -> dict[str, Any]:
    """Export, gate and write the artifact folder.

    Args:
        encoder: trained encoder (moved to CPU, eval mode); forward returns ``[batch, dims]``
            (or one tensor per ``spec.outputs``).
        out_dir: artifact folder; existing artifact files in it are replaced.
        spec: inputs, outputs, tracing example and held-out parity feeds (>= 4 rows recommended).
        manifest_fields: modality/inputs/preprocessing/objective/architecture/config/metrics etc.
        gates: thresholds, defaults to :data:`GATES`.
        extra_files: shipped next to the weights under the given names (text: tokenizer.json).
        int8_optional: an int8 graph below its gates is left out (fp32 only) instead of failing
            the export (fine-tuned classifiers, ft_contract).
        kernel: once int8 passed, writes the int8 kernel file (text encoders); a kernel below
            the gates or unsupported is left out, not fatal.

    Returns:
        The manifest that was written.

    Raises:
        ParityError: a gate failed; the message has the numbers and no manifest is left.
    """
    gates = {**GATES, **(gates or {})}
    out_dir.mkdir(parents=True, exist_ok=True)
    (out_dir / "manifest.json").unlink(missing_ok=True)  # never leave a stale "ok" behind
    staging = out_dir / ".export-staging"
    shutil.rmtree(staging, ignore_errors=True)
    staging.mkdir()
    try:
        batches = spec.parity_feeds
        if not batches:
            raise ParityError("no held-out records to check parity on; the dataset is too small")
        export_fp32(encoder, staging / FP32, spec)
        reference = run_torch(encoder, spec)
        fp32 = run_onnx(staging / FP32, batches, spec.outputs)
        parity = {"fp32": fp32_parity(reference, fp32, spec.outputs, gates, log)}
        int8 = int8_parity(staging, fp32, spec, gates, log, int8_optional)
        names = [FP32, FP32 + ".data"]
        if int8 is not None:
            parity["int8"] = int8
            names += [INT8, INT8 + ".data"]
            kernel_parity = kernel(staging, fp32[0], gates, log) if kernel else None
            if kernel_parity is not None:
                parity["int8_kernel"] = kernel_parity
                names.append(KERNEL)
        for name, path in (extra_files or {}).items():
            shutil.copy(path, staging / name)
        names += list(extra_files or {})
        for name in names:
            (staging / name).chmod(0o644)  # onnx writes data files 0600; artifacts are shared
            (staging / name).replace(out_dir / name)
        for name in (INT8, INT8 + ".data", KERNEL):
            if name not in names:
                (out_dir / name).unlink(missing_ok=True)  # an older export's int8 must not stay
    finally:
        shutil.rmtree(staging, ignore_errors=True)
    manifest = build_manifest(out_dir, names, manifest_fields, parity)
    return manifest


def fp32_parity(
    reference: list[np.ndarray],
    fp32: list[np.ndarray],
    outputs: tuple[str, ...],
    gates: dict[str, float],
    log=print,
) -> dict[str, Any]:
    """The fp32 graph against PyTorch: embeddings' row cosines, and the logits' max abs diff.

    Raises:
        ParityError: below a gate.
    """
    cos32 = row_cosines(reference[0], fp32[0])
    if not cos32.min() >= gates["fp32_min_cosine"]:
        raise ParityError(
            f"fp32 ONNX vs PyTorch: min cosine {cos32.min():.6f} < "
            f"{gates['fp32_min_cosine']} over {len(cos32)} rows (mean {cos32.mean():.6f})"
        )
    log(f"parity fp32: min cosine {cos32.min():.7f} over {len(cos32)} rows")
    result: dict[str, Any] = {"min_cosine": float(cos32.min()), "rows": len(cos32)}
    if LOGITS in outputs:
        at = outputs.index(LOGITS)
        diff = float(np.abs(reference[at] - fp32[at]).max())
        if not diff <= gates["fp32_logits_max_abs"]:
            raise ParityError(
                f"fp32 ONNX vs PyTorch: logits max abs diff {diff:.2e} > "
                f"{gates['fp32_logits_max_abs']} over {len(cos32)} rows"
            )
        log(f"parity fp32: logits max abs diff {diff:.2e}")
        result["logits_max_abs_diff"] = diff
    return result


def int8_parity(
    staging: Path,
    fp32: list[np.ndarray],
    spec: ExportSpec,
    gates: dict[str, float],
    log=print,
    optional: bool = False,
) -> dict[str, Any] | None:
    """Quantize (signed weights, then unsigned) until one passes the gates against fp32:
    embeddings' row cosines and, for a classifier, argmax agreement of the logits.

    Returns:
        The int8 parity numbers, or None when none passed and ``optional``.

    Raises:
        ParityError: none passed and not ``optional``.
    """
    failures = []
    for weight_type in (QuantType.QInt8, QuantType.QUInt8):
        quantize_int8(staging / FP32, staging / INT8, weight_type)
        int8 = run_onnx(staging / INT8, spec.parity_feeds, spec.outputs)
        cos8 = row_cosines(fp32[0], int8[0])
        result: dict[str, Any] = {
            "mean_cosine": float(cos8.mean()),
            "min_cosine": float(cos8.min()),
            "rows": len(cos8),
        }
        ok = cos8.mean() >= gates["int8_mean_cosine"] and cos8.min() >= gates["int8_min_cosine"]
        text = f"{weight_type.name}: mean {cos8.mean():.5f}, min {cos8.min():.5f}"
        if LOGITS in spec.outputs:
            at = spec.outputs.index(LOGITS)
            agreement = float((fp32[at].argmax(1) == int8[at].argmax(1)).mean())
            result["argmax_agreement"] = agreement
            ok = ok and agreement >= gates["int8_argmax_agreement"]
            text += f", argmax agreement {agreement:.4f}"
        failures.append(text)
        if ok:
            log(f"parity int8 ({text})")
            return result
    message = (
        f"int8 vs fp32 below gate (mean >= {gates['int8_mean_cosine']}, min >= "
        f"{gates['int8_min_cosine']}"
        + (
            f", argmax agreement >= {gates['int8_argmax_agreement']}"
            if LOGITS in spec.outputs
            else ""
        )
        + f") over {len(cos8)} rows: "
        + "; ".join(failures)
    )
    if optional:
        log(message + "; int8 left out, fp32 only")
        return None
    raise ParityError(message)


def build_manifest(
    out_dir: Path,
    names: list[str],
    fields: dict[str, Any],
    parity: dict[str, dict[str, Any]],
) -> dict[str, Any]:
    """Write ``manifest.json`` (atomically, last) in the ``selfsup.encoder/v1`` shape; a variant
    is listed only when its graph is in ``names``."""
    variants = {
        "fp32": {"model": FP32, "data": FP32 + ".data"},
        "int8": {"model": INT8, "data": INT8 + ".data"},
    }
    if KERNEL in names:
        variants["int8"]["kernel"] = KERNEL
    manifest = {
        "format": "selfsup.encoder/v1",
        **fields,
        "parity": parity,
        "variants": {k: v for k, v in variants.items() if v["model"] in names},
        "files": {name: file_entry(out_dir / name) for name in names},
        "created_at": datetime.now(UTC).isoformat(timespec="seconds").replace("+00:00", "Z"),
    }
    tmp = out_dir / "manifest.json.tmp"
    tmp.write_text(json.dumps(manifest, indent=2) + "\n")
    tmp.replace(out_dir / "manifest.json")
    return manifest
