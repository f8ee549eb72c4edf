"""The trainer agrees with the API's contract (contract.json, generated from api/contract.ts).

Each hyperparameter the API lets a job set must be a TrainConfig field that accepts exactly what
the API accepts: its boundaries and enum members pass, the values just outside and non-members
fail. When someone changes a range on one side only, one of these cases fails.
"""

from __future__ import annotations

import dataclasses
import math
import re
from typing import Any

import pytest

from selfsup_trainer import contract
from selfsup_trainer.config import ARCHITECTURES, OBJECTIVES, PRESETS, TrainConfig
from selfsup_trainer.objective import RECIPES
from selfsup_trainer.series import pretext as _series  # noqa: F401  (registers its objectives)
from selfsup_trainer.text import pretext as _text  # noqa: F401
from selfsup_trainer.vision import pretext as _vision  # noqa: F401

FIELDS = {f.name: f for f in dataclasses.fields(TrainConfig)}
PROPERTIES = contract.HYPERPARAMETERS
# Python-only checks across fields that a single value must not trip: image_size must be a
# multiple of patch_size, so patch sizes are tried on the largest image.
CONTEXT: dict[str, dict[str, Any]] = {"patch_size": {"image_size": 512}}


def config_with(key: str, value: Any) -> TrainConfig:
    """A valid config except, perhaps, ``key=value`` (modality chosen so ``value`` can apply)."""
    modality = "text"
    if key == "architecture":
        modality = next((m for m, a in ARCHITECTURES.items() if value in a), "text")
    elif key in contract.MODALITY_FIELDS:
        modality = contract.MODALITY_FIELDS[key][0]
    values = {"steps": 1, "modality": modality, "objective": OBJECTIVES[modality][0]}
    return TrainConfig(**{**values, **CONTEXT.get(key, {}), key: value})


def boundary_cases(schema: dict[str, Any]) -> tuple[list[Any], list[Any]]:
    """(values the schema accepts at its edges, values just outside it)."""
    members = contract.allowed_values(schema)
    if members is not None:
        numeric = all(isinstance(m, int | float) for m in members)
        outside = [max(members) + 1, min(members) - 1] if numeric else ["not-a-member"]
        return members, [v for v in outside if v not in members]
    integer = schema["type"] == "integer"

    def below(x: float) -> float:
        return x - 1 if integer else math.nextafter(x, -math.inf)

    def above(x: float) -> float:
        return x + 1 if integer else math.nextafter(x, math.inf)

    good, bad = [], []
    if "minimum" in schema:
        good.append(schema["minimum"])
        bad.append(below(schema["minimum"]))
    if "exclusiveMinimum" in schema:
        good.append(above(schema["exclusiveMinimum"]))
        bad.append(schema["exclusiveMinimum"])
    if "maximum" in schema:
        good.append(schema["maximum"])
        bad.append(above(schema["maximum"]))
    if "exclusiveMaximum" in schema:
        good.append(below(schema["exclusiveMaximum"]))
        bad.append(schema["exclusiveMaximum"])
    if "const" in schema.get("not", {}):
        bad.append(schema["not"]["const"])
    return good, bad


def test_every_hyperparameter_is_a_config_field_of_its_type():
    assert PROPERTIES, "contract.json lists no hyperparameters"
    for key, schema in PROPERTIES.items():
        assert key in FIELDS, f"the API accepts {key!r} but TrainConfig has no such field"
        if schema.get("type") == "integer":
            assert str(FIELDS[key].type).startswith("int"), (key, FIELDS[key].type)
        if schema.get("type") == "number":
            assert str(FIELDS[key].type).startswith(("float", "int")), (key, FIELDS[key].type)
        if schema.get("type") == "string":
            assert str(FIELDS[key].type).startswith("str"), (key, FIELDS[key].type)


def test_every_hyperparameter_has_cases():
    for key, schema in PROPERTIES.items():
        good, bad = boundary_cases(schema)
        assert good and bad, f"{key}: the schema {schema} has no range or members to test"


@pytest.mark.parametrize("key", sorted(PROPERTIES))
def test_config_accepts_the_contract_boundaries(key):
    good, _ = boundary_cases(PROPERTIES[key])
    for value in good:
        config_with(key, value).resolve()


@pytest.mark.parametrize("key", sorted(PROPERTIES))
def test_config_rejects_just_outside_the_contract(key):
    _, bad = boundary_cases(PROPERTIES[key])
    for value in bad:
        with pytest.raises(ValueError, match=re.escape(key)):
            config_with(key, value).resolve()


def test_modalities_objectives_and_architectures_match():
    assert tuple(OBJECTIVES) == contract.MODALITIES
    for modality, objectives in OBJECTIVES.items():
        # Every objective the API offers has a recipe the trainer can train, and no more.
        assert tuple(RECIPES[modality]) == objectives, modality
        for objective in objectives:
            TrainConfig(steps=1, modality=modality, objective=objective).resolve()
        assert (
            ARCHITECTURES[modality][: len(contract.ARCHITECTURES[modality])]
            == (contract.ARCHITECTURES[modality])
        )
    assert set(ARCHITECTURES["text"]) - set(contract.ARCHITECTURES["text"]) == {"bert"}


def test_presets_init_from_and_modality_fields():
    assert tuple(PRESETS) == contract.PRESET_NAMES
    for preset in PRESETS:
        TrainConfig(steps=1, preset=preset).resolve()
    for objective in contract.INIT_FROM_OBJECTIVES["text"]:
        TrainConfig(steps=1, objective=objective, architecture="bert").resolve()
    refused = set(OBJECTIVES["text"]) - set(contract.INIT_FROM_OBJECTIVES["text"])
    for objective in refused:
        with pytest.raises(ValueError, match="cannot continue a BERT"):
            TrainConfig(steps=1, objective=objective, architecture="bert").resolve()
    for key, modalities in contract.MODALITY_FIELDS.items():
        assert key in PROPERTIES and set(modalities) <= set(contract.MODALITIES), key


def test_series_length_limit_is_the_contract_one():
    limit = contract.MAX_SERIES_LENGTH
    TrainConfig(steps=1, modality="timeseries", objective="masked", series_length=limit).resolve()
    with pytest.raises(ValueError, match="series_length"):
        TrainConfig(
            steps=1, modality="timeseries", objective="masked", series_length=limit + 1
        ).resolve()
