"""``serve``: the trainer service loop. Poll the API for a job, train it, report, repeat.

One replica runs one job at a time; run more replicas (or more GPUs each with torchrun) to scale.
Leases make that safe: a replica that dies stops heartbeating, its lease runs out, and another
replica claims the job and resumes it from the last checkpoint it uploaded.
"""

from __future__ import annotations

import json
import os
import shutil
import signal
import socket
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .api_client import ApiClient, ApiError, DownloadError, StaleLease, download, upload
from .checkpoint import STATE_FILE, checkpoint_tar, extract_checkpoint
from .config import TrainConfig
from .engine import CHECKPOINT_AND_STOP, StepInfo
from .export import ParityError
from .finetune.config import FinetuneConfig
from .modalities import pipeline_for

# Without an explicit checkpoint_every a job still checkpoints, so a lost replica costs little.
DEFAULT_CHECKPOINTS_PER_RUN = 5


class JobCancelled(Exception):
    """The API answered a heartbeat with cancel: the job is already marked cancelled."""


class Interrupted(Exception):
    """SIGTERM/SIGINT: stop after checkpointing so another replica can resume."""


def declared_checkpoint(tar: Path, run_dir: Path, step: int) -> Path:
    """Extract a verified checkpoint tar and return the folder of exactly ``step``.

    Raises:
        DownloadError: the tar does not hold ``checkpoints/step-<step>`` (a replica declared one
            step and uploaded another); retryable, as a later claim may declare a good one.
    """
    extract_checkpoint(tar, run_dir)
    folder = run_dir / "checkpoints" / f"step-{step:06d}"
    if not (folder / STATE_FILE).is_file():
        raise DownloadError(
            f"checkpoint.tar: declared step {step} but it holds no checkpoints/{folder.name}"
        )
    return folder


def classify(exc: BaseException) -> str:
    """What a job-ending exception means for the job.

    ``"stop"``: the job is not ours any more (cancelled, lease lost, job gone): report nothing.
    ``"permanent"``: retrying cannot help (bad config or corpus, diverged run, failed parity
    gate, a 4xx refusal): fail the job for good. ``"retryable"``: anything else (network,
    storage, a corrupt or cut-off download, a crash): requeue it while attempts remain.
    """
    if isinstance(exc, JobCancelled | StaleLease):
        return "stop"
    if isinstance(exc, ApiError):
        if exc.status == 404:  # the job no longer exists: nothing to report it to
            return "stop"
        refused = 400 <= exc.status < 500 and exc.status not in (408, 429)  # not just "later"
        return "permanent" if refused else "retryable"
    if isinstance(exc, DownloadError):
        return "retryable"
    if isinstance(exc, ValueError | FloatingPointError | ParityError):
        return "permanent"
    return "retryable"


class JobRunner:
    """Runs one claimed job: download, (resume,) train with heartbeats, export, upload, complete."""

    def __init__(
        self,
        client: ApiClient,
        claim: dict[str, Any],
        work_dir: Path,
        stop: threading.Event,
        heartbeat_seconds: float = 5.0,
        log: Callable[[str], None] = print,
    ) -> None:
        self.client = client
        self.job = claim["job"]
        self.claim = claim
        self.token = claim["lease"]["token"]
        self.dir = work_dir / self.job["id"]
        self.run_dir = self.dir / "run"
        self.stop = stop
        self.heartbeat_seconds = heartbeat_seconds
        self.log = log
        self.started = time.monotonic()
        self.first_step: int | None = None
        self.eval_path: Path | None = None
        self.init_dir: Path | None = None
        self.init_ref: str | None = None
        # A fine-tune job (ft_contract): corpus = the labeled set, init = the base version.
        self.finetuning = self.job.get("kind", "pretrain") == "finetune"
        self.sent_eval: dict[str, float] | None = None  # the last evaluation heartbeated
        # The job's modality, not its config's: a fine-tune config holds only its hyperparameters.
        modality = self.job.get("modality") or self.job["config"].get("modality", "text")
        self.pipeline = pipeline_for(str(modality))
        self.total_hint = int(self.job["config"].get("steps") or 1)
        # The step of the checkpoint the API knows about (so a stop does not upload it again).
        self.uploaded_step = (claim.get("checkpoint") or {}).get("step")
        # Guards latest, reported, first_step and started: both threads send heartbeats.
        self.lock = threading.Lock()
        self.latest: StepInfo | None = None
        self.reported: StepInfo | None = None
        self.cancelled, self.lost, self.done = (
            threading.Event(),
            threading.Event(),
            threading.Event(),
        )

    def prepare(self) -> tuple[TrainConfig | FinetuneConfig, Path, Path | None]:
        """Download the corpus (and the declared checkpoint, and the eval set) into a clean dir.

        Returns the config, the corpus and the checkpoint folder to resume from (None: start
        from scratch). Only the checkpoint the API declared in the claim is ever resumed.
        """
        # A replica killed on this host leaves its job dir behind (its ``finally`` never ran),
        # possibly with checkpoints newer than the one the API knows about. Resuming from those,
        # or uploading them from on_step/_hand_back, would fork the run from what the API
        # declared (and unpickle bytes nobody verified), so the job starts from an empty dir.
        shutil.rmtree(self.dir, ignore_errors=True)
        self.run_dir.mkdir(parents=True)
        corpus = self.claim["corpus"]
        path = download(
            corpus["url"], self.dir / f"corpus.{corpus['format']}", sha256=corpus["sha256"]
        )
        resume = None
        checkpoint = self.claim.get("checkpoint")
        if checkpoint:
            # Verified before extracting: resuming unpickles it (torch.load weights_only=False),
            # so only the exact bytes the previous replica declared may be loaded.
            tar = download(checkpoint["url"], self.dir / "checkpoint.tar", checkpoint["sha256"])
            resume = declared_checkpoint(tar, self.run_dir, int(checkpoint["step"]))
            self.log(f"job {self.job['id']}: resuming from step {checkpoint['step']}")
        if self.claim.get("evalSet"):
            ev = self.claim["evalSet"]
            self.eval_path = download(
                ev["url"], self.dir / f"eval.{ev['format']}", sha256=ev["sha256"]
            )
        init = self.claim.get("init")
        if init and (resume is None or self.finetuning):
            # Continued pretraining or fine-tuning: the version's weights and tokenizer, verified
            # like the corpus (a resumed fine-tune still builds its encoder from the version).
            self.init_dir = self.dir / "init"
            self.init_dir.mkdir()
            (self.init_dir / "manifest.json").write_text(json.dumps(init["manifest"]))
            for name, f in init["files"].items():
                download(f["url"], self.init_dir / name, sha256=f["sha256"])
            self.init_ref = init["ref"]
            self.log(f"job {self.job['id']}: continuing from {self.init_ref}")
        if self.finetuning:
            if self.init_dir is None:
                raise ValueError("a finetune job's claim has no init (its base version)")
            return FinetuneConfig.from_dict(dict(self.job["config"])), path, resume
        return TrainConfig.from_dict(dict(self.job["config"])), path, resume

    def beat(self, extra: dict[str, Any] | None = None) -> None:
        """Send the latest progress; remember a cancel or a lost lease for the training thread."""
        with self.lock:
            info, first_step, started = self.latest, self.first_step, self.started
            # One loss-curve point per log step: StepInfo carries a loss only at log steps.
            new_point = info is not None and info.loss is not None and info is not self.reported
            if new_point:
                self.reported = info
        step, total = (info.step, info.total_steps) if info else (0, self.total_hint)
        now = time.monotonic()
        rate = (step - (first_step or 0)) / max(now - started, 1e-6) if info else 0.0
        body: dict[str, Any] = {
            "lease_token": self.token,
            "step": step,
            "total_steps": max(1, total),
        }
        if rate > 0:
            body["eta_seconds"] = (total - step) / rate
        if new_point:
            body["metrics"] = {
                "loss": info.loss,
                "lr": info.lr,
                "tokens_per_second": info.tokens_per_second,
            }
            if info.mfu is not None:
                body["metrics"]["mfu"] = info.mfu
        try:
            answer = self.client.heartbeat(self.job["id"], {**body, **(extra or {})})
        except ApiError as e:
            if isinstance(e, StaleLease) or e.status == 404:  # another replica's now, or gone
                self.lost.set()
                return
            raise
        if answer.get("cancel"):
            self.cancelled.set()

    def heartbeat_loop(self) -> None:
        """Keeps the lease alive whatever the training thread is doing (tokenizing, exporting)."""
        while not self.done.wait(self.heartbeat_seconds):
            try:
                self.beat()
            except Exception as e:  # never die silently: a dead loop loses the lease
                self.log(f"heartbeat failed: {type(e).__name__}: {e}")

    def check(self) -> None:
        if self.cancelled.is_set():
            raise JobCancelled()
        if self.lost.is_set():
            raise StaleLease(409, None, "heartbeat")

    def upload_checkpoint(self, step_dir: Path, extra: dict[str, Any] | None = None) -> None:
        """PUT a checkpoint and declare it (step, SHA-256, size) in a heartbeat."""
        step = int(step_dir.name.split("-")[1])
        urls = self.client.uploads(self.job["id"], self.token, [], checkpoint_step=step)
        tar, sha256, size = checkpoint_tar(step_dir)
        upload(urls["checkpoint"]["url"], tar)
        declared = {"checkpoint_step": step, "checkpoint_sha256": sha256, "checkpoint_bytes": size}
        self.beat({**declared, **(extra or {})})
        self.uploaded_step = step

    def on_step(self, info: StepInfo) -> str | None:
        """Engine callback: checkpoint upload, eval probes, cancel and SIGTERM."""
        with self.lock:
            if self.first_step is None:
                self.first_step, self.started = info.step - 1, time.monotonic()
            self.latest = info
        step_dir = self.run_dir / "checkpoints" / f"step-{info.step:06d}"
        extra: dict[str, Any] = {}
        if self.finetuning and info.metrics and info.metrics is not self.sent_eval:
            # The engine's latest evaluation (eval_accuracy, eval_loss), reported once.
            self.sent_eval = info.metrics
            extra["eval"] = dict(info.metrics)
        if step_dir.exists() and info.step < info.total_steps:
            if self.eval_path is not None and not self.finetuning:
                extra["eval"] = self.pipeline.checkpoint_probe(step_dir, self.eval_path)
            self.upload_checkpoint(step_dir, extra)
        elif extra:
            self.beat(extra)
        self.check()
        if self.stop.is_set():
            return CHECKPOINT_AND_STOP
        return None

    def run(self) -> str:
        job_id = self.job["id"]
        beats = threading.Thread(target=self.heartbeat_loop, name="heartbeat", daemon=True)
        beats.start()
        try:
            config, corpus, resume = self.prepare()
            manifest = self.train(config, corpus, resume)
            if manifest is None:
                raise Interrupted()
            self.check()
            names = list(manifest["files"])
            urls = self.client.uploads(job_id, self.token, names)["files"]
            for name in names:
                upload(urls[name]["url"], self.run_dir / name)
            if not self.client.complete(job_id, self.token, manifest):
                self.log(
                    f"job {job_id}: /complete answered 409 to a retry after an unclear first try; "
                    "the first try most likely registered the model (or the job was cancelled "
                    "meanwhile). Treating it as done; check the job in the API."
                )
            else:
                self.log(f"job {job_id}: succeeded")
            return "succeeded"
        except Interrupted:
            self.log(f"job {job_id}: interrupted; handing it back for another replica to resume")
            self._hand_back()
            return "interrupted"
        except Exception as e:
            kind = classify(e)
            if kind == "stop":
                self.log(f"job {job_id}: cancelled, lease lost or job gone ({e}); stopped")
                return "stopped"
            if kind == "permanent":
                self.log(f"job {job_id}: failed: {e}")
                self._fail(f"{type(e).__name__}: {e}", retryable=False)
                return "failed"
            self.log(f"job {job_id}: error, will be retried: {e}\n{traceback.format_exc()}")
            self._fail(f"{type(e).__name__}: {e}", retryable=True)
            return "error"
        finally:
            self.done.set()
            # Bounded: a heartbeat stuck on an unreachable API must not hold up shutdown. The
            # thread is a daemon and exits after its current request.
            beats.join(timeout=20.0)
            shutil.rmtree(self.dir, ignore_errors=True)

    def train(
        self, config: TrainConfig | FinetuneConfig, corpus: Path, resume: Path | None
    ) -> dict[str, Any] | None:
        """Pretrain, or fine-tune the claim's base version; the manifest, None when stopped."""
        options: dict[str, Any] = {
            "resume": resume,
            "callback": self.on_step,
            "log": self.log,
            "default_checkpoints": DEFAULT_CHECKPOINTS_PER_RUN,
        }
        if isinstance(config, FinetuneConfig):
            from .finetune.run import finetune

            assert self.init_dir is not None
            return finetune(
                self.init_dir, config, corpus, self.run_dir, eval_path=self.eval_path,
                init_ref=self.init_ref, **options,
            )  # fmt: skip
        return self.pipeline.pretrain(
            config,
            corpus,
            self.run_dir,
            eval_path=self.eval_path,  # probed on the final encoder itself
            **({"init": self.init_dir, "init_ref": self.init_ref} if self.init_dir else {}),
            **options,
        )

    def _hand_back(self) -> None:
        """Graceful stop: upload the checkpoint the engine wrote last, then release the job so
        that it requeues without counting this attempt."""
        steps = sorted((self.run_dir / "checkpoints").glob("step-*[0-9]"))
        if steps and int(steps[-1].name.split("-")[1]) != self.uploaded_step:
            try:
                self.upload_checkpoint(steps[-1])
            except Exception as e:  # still release: it resumes from the previous checkpoint
                self.log(f"job {self.job['id']}: could not upload the last checkpoint: {e}")
        self._fail(
            "trainer shut down (SIGTERM); resumes from its last checkpoint",
            retryable=True,
            release=True,
        )

    def _fail(self, error: str, retryable: bool, release: bool = False) -> None:
        try:
            self.client.fail(self.job["id"], self.token, error, retryable, release)
        except Exception as e:  # API unreachable: the lease runs out and the job requeues anyway
            self.log(f"job {self.job['id']}: could not report the failure: {e}")


def serve(
    api_url: str,
    api_key: str,
    work_dir: Path,
    owner: str | None = None,
    once: bool = False,
    poll_max: float = 15.0,
    log: Callable[[str], None] = print,
) -> int:
    """Claim and run jobs until SIGTERM/SIGINT (or after one job with ``once``)."""
    client = ApiClient(api_url, api_key)
    owner = owner or f"{socket.gethostname()}-{os.getpid()}"
    stop = threading.Event()

    def on_signal(signum: int, _frame: object) -> None:
        log(f"{signal.Signals(signum).name}: finishing the current step, then checkpointing")
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    signal.signal(signal.SIGINT, on_signal)
    work_dir.mkdir(parents=True, exist_ok=True)
    device = "cuda" if torch.cuda.is_available() else "cpu"
    log(f"trainer {owner} polling {api_url} (device: {device})")
    wait = 1.0
    while not stop.is_set():
        try:
            claim = client.claim(owner)
        except Exception as e:  # API down or answering garbage: keep polling
            log(f"claim failed: {e}; retrying in {wait:.0f}s")
            claim = None
        if claim is None:
            stop.wait(wait)
            wait = min(poll_max, wait * 2)
            continue
        wait = 1.0
        try:
            log(f"claimed job {claim['job']['id']} (attempt {claim['job']['attempt']})")
            # Beat well inside the lease so a slow step or a retried request does not lose it.
            beat = min(5.0, claim["lease"]["seconds"] / 4)
            JobRunner(client, claim, work_dir, stop, heartbeat_seconds=beat, log=log).run()
        except Exception as e:  # one job's bug must not take the replica down
            log(f"job loop error: {type(e).__name__}: {e}\n{traceback.format_exc()}")
            stop.wait(poll_max)
        if once:
            break
    return 0
