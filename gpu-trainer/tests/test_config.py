import pytest

from selfsup_trainer.cli import main
from selfsup_trainer.config import TrainConfig, parse_override


def test_presets_fill_architecture():
    config = TrainConfig(preset="base", steps=1).resolve()
    assert (config.layers, config.hidden, config.heads, config.intermediate) == (12, 768, 12, 3072)
    explicit = TrainConfig(preset="tiny", hidden=64, heads=4, steps=1).resolve()
    assert (explicit.hidden, explicit.heads, explicit.layers) == (64, 4, 2)


@pytest.mark.parametrize(
    ("values", "names"),
    [
        ({"mask_rate": 0.0}, "mask_rate"),
        ({"mask_rate": 1.0}, "mask_rate"),
        ({"preset": "huge"}, "preset"),
        ({"objective": "clip"}, "objective"),
        ({"modality": "image"}, "modality"),
        ({"hidden": 100, "heads": 3}, "heads"),
        ({"lr": -1.0}, "lr"),
        ({"batch_size": 0}, "batch_size"),
        ({"pooling": "max"}, "pooling"),
        ({"steps": None}, "steps"),
    ],
)
def test_impossible_values_name_the_key(values, names):
    kwargs = {"steps": 10, **values}
    with pytest.raises(ValueError, match=names):
        TrainConfig(**kwargs).resolve()


def test_unknown_keys_are_rejected_with_the_valid_ones():
    with pytest.raises(ValueError, match=r"unknown config key.*maskrate.*valid keys.*mask_rate"):
        TrainConfig.from_dict({"maskrate": 0.2})
    with pytest.raises(ValueError, match="unknown config key 'warmup'"):
        parse_override("warmup=10")


def test_overrides_are_typed():
    assert parse_override("lr=3e-4") == ("lr", 3e-4)
    assert parse_override("steps=12") == ("steps", 12)
    assert parse_override("compile=true") == ("compile", True)
    assert parse_override("matryoshka_dims=64,32") == ("matryoshka_dims", [64, 32])
    assert parse_override("pooling=cls") == ("pooling", "cls")
    with pytest.raises(ValueError, match="does not parse"):
        parse_override("steps=many")


def test_cli_reports_config_errors(capsys, corpus_path, tmp_path):
    code = main(
        ["pretrain", "--data", str(corpus_path), "--out", str(tmp_path), "--set", "mask_rate=2"]
    )
    assert code == 2
    assert "mask_rate=2.0 must be in (0, 1)" in capsys.readouterr().err
