"""The job loop's pieces that need no API server: checkpoint packing, error classification and
the default checkpoint interval. The loop itself runs against the real API in tests/e2e."""

import hashlib
import http.client
import json
import socket
import urllib.error

import pytest
import torch
from conftest import FAST

from selfsup_trainer.api_client import (
    ApiError,
    DownloadError,
    StaleLease,
    ambiguous,
    download,
    refused,
)
from selfsup_trainer.checkpoint import find_checkpoint, load_checkpoint
from selfsup_trainer.config import TrainConfig
from selfsup_trainer.export import ParityError
from selfsup_trainer.mfu import peak_bf16_flops
from selfsup_trainer.runs import default_checkpoint_every, total_steps_of
from selfsup_trainer.serve import (
    JobCancelled,
    checkpoint_tar,
    classify,
    extract_checkpoint,
)
from selfsup_trainer.text.corpus import CorpusError
from selfsup_trainer.text.pipeline import pretrain


def fake_checkpoint(run_dir, step=6):
    step_dir = run_dir / "checkpoints" / f"step-{step:06d}"
    step_dir.mkdir(parents=True)
    torch.save({"step": step, "losses": [1.0, 0.5]}, step_dir / "state.pt")
    (step_dir / "config.json").write_text("{}")
    (step_dir / "tokenizer.json").write_text('{"model": {}}')
    return step_dir


def test_checkpoint_tar_round_trip_is_verified_and_recreates_the_layout(tmp_path):
    step_dir = fake_checkpoint(tmp_path / "a" / "run")
    tar, sha256, size = checkpoint_tar(step_dir)
    data = tar.read_bytes()
    assert sha256 == hashlib.sha256(data).hexdigest() and size == len(data)

    # file:// goes through the same urllib code path as a presigned R2 URL.
    got = download(tar.as_uri(), tmp_path / "checkpoint.tar", sha256=sha256)
    run_dir = tmp_path / "b" / "run"
    extract_checkpoint(got, run_dir)
    restored = find_checkpoint(run_dir)
    assert restored == run_dir / "checkpoints" / step_dir.name
    assert sorted(p.name for p in restored.iterdir()) == [
        "config.json",
        "state.pt",
        "tokenizer.json",
    ]
    assert load_checkpoint(restored)["step"] == 6


def test_download_refuses_a_checkpoint_with_another_sha256(tmp_path):
    tar, sha256, _ = checkpoint_tar(fake_checkpoint(tmp_path / "run"))
    tar.write_bytes(tar.read_bytes()[:-512])  # cut short, as a truncated upload would be
    with pytest.raises(DownloadError, match="sha256"):
        download(tar.as_uri(), tmp_path / "checkpoint.tar", sha256=sha256)
    assert not (tmp_path / "checkpoint.tar").exists()
    assert not (tmp_path / "checkpoint.tar.part").exists()
    assert classify(DownloadError("x")) == "retryable"


@pytest.mark.parametrize(
    ("exc", "kind"),
    [
        (JobCancelled(), "stop"),
        (StaleLease(409, None, "POST /complete"), "stop"),
        (ApiError(404, None, "POST /heartbeat"), "stop"),
        (ApiError(400, {"detail": "manifest.dims: bad"}, "POST /complete"), "permanent"),
        (ApiError(422, None, "POST /complete"), "permanent"),
        (ApiError(403, None, "POST /uploads"), "permanent"),
        (ApiError(429, None, "POST /uploads"), "retryable"),
        (ApiError(503, None, "POST /uploads"), "retryable"),
        (ValueError("steps=0 must be >= 1"), "permanent"),
        (CorpusError("only 1 held-out document"), "permanent"),
        (FloatingPointError("non-finite loss"), "permanent"),
        (ParityError("fp32 ONNX vs PyTorch"), "permanent"),
        (DownloadError("corpus.txt: sha256 a != b"), "retryable"),
        (http.client.IncompleteRead(b"", 10), "retryable"),
        (urllib.error.URLError(ConnectionRefusedError()), "retryable"),
        (TimeoutError("timed out"), "retryable"),
        (RuntimeError("CUDA error: out of memory"), "retryable"),
    ],
)
def test_classify(exc, kind):
    assert classify(exc) == kind


def test_only_requests_that_never_reached_the_server_count_as_refused():
    assert refused(urllib.error.URLError(ConnectionRefusedError(111, "refused")))
    assert refused(urllib.error.URLError(socket.gaierror(-2, "Name or service not known")))
    # These may come after the server applied the request: retried only for idempotent calls.
    for exc in (
        urllib.error.URLError(TimeoutError("timed out")),
        TimeoutError("timed out"),
        ConnectionResetError(104, "reset"),
        http.client.RemoteDisconnected("closed"),
        ApiError(502, None, "POST /complete"),
    ):
        assert not refused(exc) and ambiguous(exc), exc
    assert not ambiguous(ApiError(400, None, "POST /complete"))
    assert not ambiguous(StaleLease(409, None, "POST /complete"))


def test_total_steps_and_default_checkpoint_interval():
    by_steps = TrainConfig(steps=300, epochs=9.0)  # steps wins
    assert total_steps_of(by_steps, batches_per_epoch=1000) == 300
    assert default_checkpoint_every(300, 5) == 60
    by_epochs = TrainConfig(epochs=2.0, grad_accum=4)
    assert total_steps_of(by_epochs, batches_per_epoch=250) == 125
    assert default_checkpoint_every(125, 5) == 25
    assert default_checkpoint_every(3, 5) == 1  # a short run checkpoints every step


def test_epochs_run_gets_default_checkpoints_and_probes_its_final_encoder(
    corpus_path, tmp_path, mlm_artifact
):
    texts = [line for line in corpus_path.read_text().splitlines() if len(line) > 40][:40]
    labels = ["a", "b"] * 20
    eval_path = tmp_path / "eval.jsonl"
    records = [json.dumps({"text": t, "label": y}) for t, y in zip(texts, labels, strict=True)]
    eval_path.write_text("\n".join(records) + "\n")
    infos = []
    config = TrainConfig(**{**FAST, "epochs": 0.1})
    manifest = pretrain(
        config,
        corpus_path,
        tmp_path,
        tokenizer=mlm_artifact[0] / "tokenizer.json",
        callback=infos.append,
        log=lambda _: None,
        default_checkpoints=5,
        eval_path=eval_path,
    )
    total = infos[-1].total_steps
    every = default_checkpoint_every(total, 5)
    assert manifest["config"]["checkpoint_every"] == every
    steps = sorted(int(p.name.split("-")[1]) for p in (tmp_path / "checkpoints").iterdir())
    assert steps == sorted({*range(every, total + 1, every), total})
    metrics = manifest["metrics"]
    assert 0 <= metrics["knn_accuracy"] <= 1 and 0 <= metrics["linear_accuracy"] <= 1


def test_peak_flops_by_gpu_name():
    assert peak_bf16_flops("NVIDIA H100 80GB HBM3") == 989e12
    assert peak_bf16_flops("NVIDIA H200") == 989e12
    assert peak_bf16_flops("NVIDIA A100-SXM4-80GB") == 312e12
    assert peak_bf16_flops("NVIDIA L4") == 121e12
    assert peak_bf16_flops("NVIDIA L40S") is None  # no MFU rather than a wrong one
    assert peak_bf16_flops("Tesla T4") is None
