"""serve resumes only from the checkpoint the API declared in the claim.

A replica killed on this host leaves its job dir behind, with checkpoints the API may never have
heard of (it had declared step 2; the dead replica had also written step 4). The next claim of
that job on this host must resume from the downloaded, SHA-256-verified step 2, and a claim that
declares no checkpoint must start from scratch, whatever step dirs lie in the work dir.
"""

import shutil

import pytest
from conftest import FAST

from selfsup_trainer.api_client import ApiClient, DownloadError
from selfsup_trainer.checkpoint import load_checkpoint
from selfsup_trainer.config import TrainConfig
from selfsup_trainer.engine import CHECKPOINT_AND_STOP
from selfsup_trainer.export import file_sha256
from selfsup_trainer.serve import JobRunner, checkpoint_tar
from selfsup_trainer.text.pipeline import pretrain

JOB = "job_resume"
CONFIG = {**FAST, "objective": "mlm", "preset": "tiny", "steps": 6, "checkpoint_every": 2}


@pytest.fixture(scope="module")
def killed_replica(tmp_path_factory, corpus_path):
    """A dead replica's run dir (checkpoints at steps 2 and 4) and the step-2 tar it declared."""
    base = tmp_path_factory.mktemp("killed")
    run_dir = base / "work" / JOB / "run"
    pretrain(TrainConfig(**CONFIG), corpus_path, run_dir, stop_at=4, log=lambda _: None)
    steps = sorted(p.name for p in (run_dir / "checkpoints").iterdir())
    assert steps == ["step-000002", "step-000004"]
    tar, sha256, _ = checkpoint_tar(run_dir / "checkpoints" / "step-000002")
    storage = base / "r2"  # what the API's presigned GET serves
    storage.mkdir()
    declared = shutil.move(tar, storage / "checkpoint.tar")
    return base / "work", {"url": declared.as_uri(), "sha256": sha256, "step": 2}


def claim(corpus_path, checkpoint=None):
    c = {
        "job": {"id": JOB, "config": CONFIG, "attempt": 2},
        "lease": {"token": "lease", "seconds": 60},
        "corpus": {
            "url": corpus_path.as_uri(),
            "format": "txt",
            "sha256": file_sha256(corpus_path),
        },
    }
    if checkpoint is not None:
        c["checkpoint"] = checkpoint
    return c


def runner(work, claim_):
    # prepare() talks only to storage (file:// here, presigned R2 URLs in production); this
    # client is never called.
    client = ApiClient("http://127.0.0.1:9", "unused")
    return JobRunner(client, claim_, work, stop=None, log=lambda _: None)


def copy_work(killed_replica, tmp_path):
    work, declared = killed_replica
    shutil.copytree(work, tmp_path / "work")
    return tmp_path / "work", declared


def test_resume_loads_the_declared_checkpoint_not_a_newer_local_one(
    killed_replica, corpus_path, tmp_path
):
    work, declared = copy_work(killed_replica, tmp_path)
    job = runner(work, claim(corpus_path, declared))
    config, corpus, resume = job.prepare()
    assert resume == job.run_dir / "checkpoints" / "step-000002"
    assert load_checkpoint(resume)["step"] == 2
    # The dead replica's step 4 is gone: on_step/_hand_back cannot upload it either.
    assert sorted(p.name for p in (job.run_dir / "checkpoints").iterdir()) == ["step-000002"]

    steps = []

    def first_step_only(info):
        steps.append(info.step)
        return CHECKPOINT_AND_STOP

    pretrain(config, corpus, job.run_dir, resume=resume, callback=first_step_only, log=print)
    assert steps == [3]


def test_a_claim_without_a_checkpoint_starts_from_scratch(killed_replica, corpus_path, tmp_path):
    work, _ = copy_work(killed_replica, tmp_path)
    job = runner(work, claim(corpus_path))
    _, _, resume = job.prepare()
    assert resume is None
    assert not (job.run_dir / "checkpoints").exists()


def test_a_checkpoint_that_fails_its_sha256_is_never_extracted(
    killed_replica, corpus_path, tmp_path
):
    work, declared = copy_work(killed_replica, tmp_path)
    job = runner(work, claim(corpus_path, {**declared, "sha256": "0" * 64}))
    with pytest.raises(DownloadError, match="sha256"):
        job.prepare()
    assert not (job.run_dir / "checkpoints").exists()


def test_a_tar_that_holds_another_step_than_declared_is_refused(
    killed_replica, corpus_path, tmp_path
):
    work, declared = copy_work(killed_replica, tmp_path)
    job = runner(work, claim(corpus_path, {**declared, "step": 4}))
    with pytest.raises(DownloadError, match="declared step 4"):
        job.prepare()
