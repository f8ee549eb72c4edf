"""Write model.int8.kernel next to an exported pre-LN text artifact and list it.

Usage: python scripts/fixture_kernel.py ARTIFACT_DIR

The weights come from the fp32 ``model.onnx`` (the committed fixture predates the trainer
writing kernels), the architecture from ``manifest.json``. Adds the file to the manifest's
``files`` and ``variants.int8.kernel``, its parity against the fp32 reference embeddings as
``parity.int8_kernel``, and each case's kernel embedding (``int8_kernel``, numpy reference of the
WASM kernel's math) to ``reference_embeddings.json``. Run after fixture_extras.py.
"""

import json
import sys
from pathlib import Path

import numpy as np

from selfsup_trainer.export import file_entry, row_cosines
from selfsup_trainer.text.kernel import (
    KERNEL_FILE,
    kernel_arch_from_manifest,
    pack_kernel,
    reference_embed,
    weights_from_onnx,
)


def main(artifact: str) -> None:
    folder = Path(artifact)
    manifest = json.loads((folder / "manifest.json").read_text())
    arch = kernel_arch_from_manifest(manifest)
    if arch is None:
        raise SystemExit(f"{folder}: not a text encoder the int8 kernel can serve")
    blob = pack_kernel(weights_from_onnx(folder / "model.onnx"), arch)
    (folder / KERNEL_FILE).write_bytes(blob)

    path = folder / "reference_embeddings.json"
    reference = json.loads(path.read_text())
    for case in reference["cases"]:
        case["int8_kernel"] = [round(float(x), 7) for x in reference_embed(blob, case["ids"])]
    path.write_text(json.dumps(reference, ensure_ascii=False))

    cases = reference["cases"]
    cos = row_cosines(
        np.array([c["fp32"] for c in cases]), np.array([c["int8_kernel"] for c in cases])
    )
    manifest["parity"]["int8_kernel"] = {
        "min_cosine": float(cos.min()),
        "mean_cosine": float(cos.mean()),
        "rows": len(cos),
    }
    manifest["variants"]["int8"]["kernel"] = KERNEL_FILE
    manifest["files"][KERNEL_FILE] = file_entry(folder / KERNEL_FILE)
    (folder / "manifest.json").write_text(json.dumps(manifest, indent=2) + "\n")
    print(
        f"wrote {KERNEL_FILE}: {len(blob):,} bytes, vs fp32 mean cosine {cos.mean():.6f}, "
        f"min {cos.min():.6f} over {len(cos)} cases"
    )


if __name__ == "__main__":
    main(sys.argv[1])
