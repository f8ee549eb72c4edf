import pytest
import torch
from conftest import FAST

from selfsup_trainer.config import TrainConfig
from selfsup_trainer.text.mlm import MLM
from selfsup_trainer.text.pipeline import pretrain


def run(corpus, out, stop_at=None, resume=None, tokenizer=None, **kw):
    infos = []
    config = TrainConfig(**{**FAST, **kw})
    manifest = pretrain(
        config,
        corpus,
        out,
        resume=resume,
        stop_at=stop_at,
        tokenizer=tokenizer,
        callback=infos.append,
        log=lambda _: None,
    )
    return manifest, infos


def losses_of(out):
    checkpoints = sorted((out / "checkpoints").glob("step-*"))
    state = torch.load(checkpoints[-1] / "state.pt", weights_only=False)
    return state["losses"]


def test_mlm_loss_falls_and_manifest_has_metrics(corpus_path, mlm_artifact):
    _, manifest, losses = mlm_artifact
    assert len(losses) == 40
    assert sum(losses[-5:]) / 5 < sum(losses[:5]) / 5 - 0.3
    metrics = manifest["metrics"]
    assert metrics["steps"] == 40 and metrics["final_loss"] == losses[-1]
    assert 0 < metrics["mlm_accuracy"] <= 1 and metrics["perplexity"] > 1
    assert metrics["alignment"] >= 0 and metrics["uniformity"] <= 0


def test_simcse_trains_below_chance(corpus_path, tmp_path):
    manifest, infos = run(corpus_path, tmp_path, objective="simcse", steps=12)
    losses = [i.loss for i in infos]
    # From a random init the two dropout views are already close (loss starts far below chance,
    # ln(16) ~ 2.8), so "falls" is not a stable check here; MLM covers that.
    assert all(0 <= x < 1.0 for x in losses)
    assert "mlm_accuracy" not in manifest["metrics"]
    assert manifest["objective"] == "simcse" and manifest["metrics"]["uniformity"] < 0


def test_mlm_then_simcse_switches_objective(corpus_path, tmp_path):
    manifest, infos = run(corpus_path, tmp_path, objective="mlm+simcse", steps=10, mlm_fraction=0.4)
    assert [i.objective for i in infos] == ["mlm"] * 4 + ["simcse"] * 6
    assert manifest["metrics"]["steps"] == 10


def test_mlm_nsp_trains_and_exports(corpus_path, tmp_path):
    manifest, infos = run(corpus_path, tmp_path, objective="mlm+nsp", steps=6)
    assert manifest["objective"] == "mlm+nsp"
    assert all(i.objective == "mlm+nsp" for i in infos)


def test_resume_reproduces_the_uninterrupted_run(corpus_path, tmp_path, mlm_artifact):
    n, tokenizer = 6, mlm_artifact[0] / "tokenizer.json"
    full, partial = tmp_path / "full", tmp_path / "partial"
    common = {"steps": 2 * n, "checkpoint_every": n, "grad_accum": 2, "tokenizer": tokenizer}
    # Evaluating mid-run must not consume training randomness, so only one run does it.
    run(corpus_path, full, eval_every=4, **common)
    reference = losses_of(full)
    manifest, _ = run(corpus_path, partial, stop_at=n, **common)
    assert manifest is None and not (partial / "manifest.json").exists()
    assert len(losses_of(partial)) == n
    manifest, infos = run(corpus_path, partial, resume=partial, checkpoint_every=n)
    assert infos[0].step == n + 1
    resumed = losses_of(partial)
    assert len(reference) == len(resumed) == 2 * n
    for step, (a, b) in enumerate(zip(reference, resumed, strict=True), start=1):
        assert abs(a - b) <= 1e-6, f"step {step}: uninterrupted {a} != resumed {b}"
    assert manifest is not None and manifest["metrics"]["steps"] == 2 * n


def test_non_finite_loss_stops_with_the_step(corpus_path, tmp_path, monkeypatch):
    original = MLM.loss
    calls = {"n": 0}

    def poisoned(self, encoder, batch):
        calls["n"] += 1
        loss, stats = original(self, encoder, batch)
        return (loss * float("nan") if calls["n"] == 3 else loss), stats

    monkeypatch.setattr(MLM, "loss", poisoned)
    with pytest.raises(FloatingPointError, match=r"non-finite loss.*at step 3"):
        run(corpus_path, tmp_path, steps=8)
