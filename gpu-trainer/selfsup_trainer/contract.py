"""The trainer contract: the facts the API and the trainer share, read from ``contract.json``.

``contract.json`` is generated from the API's one TypeScript definition (``api/contract.ts``,
``npm run contract:generate``) and shipped as package data, so the Docker image has it too.
:mod:`.config` derives its objectives, architectures, preset names, limits and hyperparameter
ranges from it; ``tests/test_contract.py`` fails when the two sides disagree. Unknown top-level
keys are ignored, so the API may add facts before the trainer uses them.
"""

from __future__ import annotations

import json
import math
from importlib import resources
from typing import Any

FILE = "contract.json"


def load() -> dict[str, Any]:
    """The parsed ``contract.json`` of this package."""
    return json.loads(resources.files(__package__).joinpath(FILE).read_text(encoding="utf-8"))


CONTRACT = load()
MODALITIES: tuple[str, ...] = tuple(CONTRACT["modalities"])
PRESET_NAMES: tuple[str, ...] = tuple(CONTRACT["presets"])
OBJECTIVES: dict[str, tuple[str, ...]] = {m: tuple(v) for m, v in CONTRACT["objectives"].items()}
ARCHITECTURES: dict[str, tuple[str, ...]] = {
    m: tuple(v) for m, v in CONTRACT["architectures"].items()
}
INIT_FROM_OBJECTIVES: dict[str, tuple[str, ...]] = {
    m: tuple(v) for m, v in CONTRACT["init_from_objectives"].items() if v is not None
}
MODALITY_FIELDS: dict[str, tuple[str, ...]] = {
    k: tuple(v) for k, v in CONTRACT["modality_fields"].items()
}
MAX_SERIES_LENGTH: int = CONTRACT["max_series_length"]
MIN_HELDOUT: dict[str, int | None] = dict(CONTRACT["min_heldout"])
# JSON Schema (draft 2020-12) of the hyperparameters a job may set: TrainConfig field -> schema.
HYPERPARAMETERS: dict[str, dict[str, Any]] = CONTRACT["hyperparameters"]["properties"]
# The same for fine-tune jobs (FinetuneConfig field -> schema, with each field's default).
FINETUNE_HYPERPARAMETERS: dict[str, dict[str, Any]] = CONTRACT["finetune_hyperparameters"][
    "properties"
]
FINETUNE_OBJECTIVE: str = CONTRACT["finetune_objective"]


def allowed_values(schema: dict[str, Any]) -> list[Any] | None:
    """The values an ``enum`` (or an ``anyOf`` of ``const`` s) admits; None for ranges."""
    if "enum" in schema:
        return list(schema["enum"])
    if "anyOf" in schema and all("const" in s for s in schema["anyOf"]):
        return [s["const"] for s in schema["anyOf"]]
    return None


def interval(schema: dict[str, Any]) -> str:
    """A range in interval notation, e.g. ``(0, 1]``; ``inf`` for a missing bound."""
    low = schema.get("exclusiveMinimum", schema.get("minimum", -math.inf))
    high = schema.get("exclusiveMaximum", schema.get("maximum", math.inf))
    left = "(" if "exclusiveMinimum" in schema or "minimum" not in schema else "["
    right = ")" if "exclusiveMaximum" in schema or "maximum" not in schema else "]"
    return f"{left}{_number(low)}, {_number(high)}{right}"


def _number(value: float) -> str:
    if isinstance(value, float) and value.is_integer() and math.isfinite(value):
        return str(int(value))
    return str(value)


def violation(key: str, value: Any, schema: dict[str, Any]) -> str | None:
    """Why ``value`` does not satisfy ``schema`` (the subset the contract uses: type integer or
    number, enum, anyOf of consts, minimum/maximum/exclusive*, ``not: {const}``); None if it
    does. The message names the key, the value and the valid range or values."""
    values = allowed_values(schema)
    if values is not None:
        if value in values and not isinstance(value, bool):
            return None
        return f"{key}={value!r} is not allowed; use one of {', '.join(map(str, values))}"
    kind = schema.get("type")
    if kind in ("integer", "number"):
        allowed = int if kind == "integer" else int | float
        if not isinstance(value, allowed) or isinstance(value, bool):
            return f"{key}={value!r} must be {'an integer' if kind == 'integer' else 'a number'}"
        inside = (
            ("minimum" not in schema or value >= schema["minimum"])
            and ("maximum" not in schema or value <= schema["maximum"])
            and ("exclusiveMinimum" not in schema or value > schema["exclusiveMinimum"])
            and ("exclusiveMaximum" not in schema or value < schema["exclusiveMaximum"])
        )
        if not inside:  # NaN fails every comparison, so it lands here too
            return f"{key}={value} must be in {interval(schema)}"
    banned = schema.get("not", {})
    if "const" in banned and value == banned["const"]:
        return f"{key}={value} is not allowed: {schema.get('description', 'use another value')}"
    return None
