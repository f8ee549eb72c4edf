"""``serve``: the trainer service loop. Poll the API for a job, train it, report, repeat.

One replica runs one job at a time; run more replicas (or more GPUs each with torchrun) to scale.
Leases make that safe: a replica that dies stops heartbeating, its lease runs out, and another
replica claims the job and resumes it from the last checkpoint it uploaded.
"""

from __future__ import annotations

import os
import shutil
import signal
import socket
import tarfile
import threading
import time
import traceback
from collections.abc import Callable
from pathlib import Path
from typing import Any

import torch

from .api_client import ApiClient, ApiError, StaleLease, download, upload
from .checkpoint import STATE_FILE
from .config import TrainConfig
from .engine import CHECKPOINT_AND_STOP, StepInfo
from .export import ParityError
from .model import Encoder
from .pipeline import pretrain
from .probe import probe_accuracies, read_labeled
from .tokenizer import load_tokenizer

# Without an explicit checkpoint_every a job still checkpoints, so a lost replica costs little.
DEFAULT_CHECKPOINTS_PER_RUN = 5


class JobCancelled(Exception):
    """The API answered a heartbeat with cancel: the job is already marked cancelled."""


class Interrupted(Exception):
    """SIGTERM/SIGINT: stop after checkpointing so another replica can resume."""


def checkpoint_tar(step_dir: Path) -> Path:
    """Pack ``run/checkpoints/step-N`` so that extracting it in ``run/`` recreates that path."""
    out = step_dir.parent.parent / f"{step_dir.name}.tar"
    with tarfile.open(out, "w") as tar:
        tar.add(step_dir, arcname=f"checkpoints/{step_dir.name}")
    return out


def encoder_from_checkpoint(step_dir: Path) -> tuple[Encoder, Any]:
    """Rebuild the encoder of a checkpoint on CPU (for the eval probes), with its tokenizer."""
    state = torch.load(step_dir / STATE_FILE, map_location="cpu", weights_only=False)
    config = TrainConfig.from_dict(state["config"]).resolve()
    tokenizer = load_tokenizer(str(step_dir / "tokenizer.json"))
    encoder = Encoder(config, tokenizer.get_vocab_size())
    prefix = "encoder."
    weights = {k[len(prefix) :]: v for k, v in state["model"].items() if k.startswith(prefix)}
    encoder.load_state_dict(weights)
    return encoder, tokenizer


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
        self.eval_set: tuple[list[str], list[str]] | None = None
        self.total_hint = int(self.job["config"].get("steps") or 1)
        self.lock = threading.Lock()
        self.latest: StepInfo | None = None
        self.reported: StepInfo | None = None
        self.cancelled, self.lost, self.done = (
            threading.Event(),
            threading.Event(),
            threading.Event(),
        )

    def prepare(self) -> tuple[TrainConfig, Path, Path | None]:
        self.run_dir.mkdir(parents=True, exist_ok=True)
        corpus = self.claim["corpus"]
        path = download(
            corpus["url"], self.dir / f"corpus.{corpus['format']}", sha256=corpus["sha256"]
        )
        resume = None
        if self.claim.get("checkpoint"):
            tar = download(self.claim["checkpoint"]["url"], self.dir / "checkpoint.tar")
            with tarfile.open(tar) as t:
                t.extractall(self.run_dir, filter="data")
            resume = self.run_dir
            self.log(f"job {self.job['id']}: resuming from step {self.claim['checkpoint']['step']}")
        if self.claim.get("evalSet"):
            ev = self.claim["evalSet"]
            eval_path = download(ev["url"], self.dir / f"eval.{ev['format']}", sha256=ev["sha256"])
            self.eval_set = read_labeled(eval_path)
        config = TrainConfig.from_dict(dict(self.job["config"]))
        if not config.checkpoint_every and config.steps:
            config.checkpoint_every = max(1, config.steps // DEFAULT_CHECKPOINTS_PER_RUN)
        return config, path, resume

    def beat(self, extra: dict[str, Any] | None = None) -> None:
        """Send the latest progress; remember a cancel or a lost lease for the training thread."""
        with self.lock:
            info = self.latest
        step, total = (info.step, info.total_steps) if info else (0, self.total_hint)
        now = time.monotonic()
        rate = (step - (self.first_step or 0)) / max(now - self.started, 1e-6) if info else 0.0
        metrics: dict[str, float] = {}
        if info is not None:
            metrics = {"lr": info.lr, "tokens_per_second": info.tokens_per_second}
            if info.loss is not None:
                metrics["loss"] = info.loss
            if info.mfu is not None:
                metrics["mfu"] = info.mfu
        body: dict[str, Any] = {
            "lease_token": self.token,
            "step": step,
            "total_steps": max(1, total),
        }
        if rate > 0:
            body["eta_seconds"] = (total - step) / rate
        # One loss-curve point per log step: StepInfo carries a loss only at log steps.
        if "loss" in metrics and info is not self.reported:
            body["metrics"] = metrics
            self.reported = info
        try:
            answer = self.client.heartbeat(self.job["id"], {**body, **(extra or {})})
        except StaleLease:
            self.lost.set()
            return
        if answer.get("cancel"):
            self.cancelled.set()

    def heartbeat_loop(self) -> None:
        """Keeps the lease alive whatever the training thread is doing (tokenizing, exporting)."""
        while not self.done.wait(self.heartbeat_seconds):
            try:
                self.beat()
            except (ApiError, OSError) as e:
                self.log(f"heartbeat failed: {e}")

    def check(self) -> None:
        if self.cancelled.is_set():
            raise JobCancelled()
        if self.lost.is_set():
            raise StaleLease(409, None, "heartbeat")

    def on_step(self, info: StepInfo) -> str | None:
        """Engine callback: checkpoint upload, eval probes, cancel and SIGTERM."""
        with self.lock:
            if self.first_step is None:
                self.first_step, self.started = info.step - 1, time.monotonic()
            self.latest = info
        step_dir = self.run_dir / "checkpoints" / f"step-{info.step:06d}"
        if step_dir.exists() and info.step < info.total_steps:
            urls = self.client.uploads(self.job["id"], self.token, [], checkpoint=True)
            upload(urls["checkpoint"]["url"], checkpoint_tar(step_dir))
            extra: dict[str, Any] = {"checkpoint_step": info.step}
            if self.eval_set is not None:
                encoder, tokenizer = encoder_from_checkpoint(step_dir)
                extra["eval"] = probe_accuracies(encoder, tokenizer, *self.eval_set)
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
            manifest = pretrain(
                config, corpus, self.run_dir, resume=resume, callback=self.on_step, log=self.log
            )
            if manifest is None:
                raise Interrupted()
            if self.eval_set is not None:
                encoder, tokenizer = encoder_from_last(self.run_dir)
                manifest["metrics"].update(probe_accuracies(encoder, tokenizer, *self.eval_set))
            self.check()
            names = list(manifest["files"])
            urls = self.client.uploads(job_id, self.token, names, checkpoint=False)["files"]
            for name in names:
                upload(urls[name]["url"], self.run_dir / name)
            self.client.complete(job_id, self.token, manifest)
            self.log(f"job {job_id}: succeeded")
            return "succeeded"
        except JobCancelled:
            self.log(f"job {job_id}: cancelled by the API; stopped")
            return "cancelled"
        except StaleLease as e:
            self.log(f"job {job_id}: lease lost ({e}); abandoning it")
            return "stale"
        except Interrupted:
            self.log(f"job {job_id}: interrupted; handing it back for another replica to resume")
            self._upload_last_checkpoint()
            self._fail("trainer shut down (SIGTERM); resumes from its last checkpoint", True)
            return "interrupted"
        except (ValueError, FloatingPointError, ParityError) as e:
            # Bad config, bad corpus, a diverged run or a failed parity gate: retrying won't help.
            self.log(f"job {job_id}: failed: {e}")
            self._fail(f"{type(e).__name__}: {e}", False)
            return "failed"
        except Exception as e:
            self.log(f"job {job_id}: error, will be retried: {e}\n{traceback.format_exc()}")
            self._fail(f"{type(e).__name__}: {e}", True)
            return "error"
        finally:
            self.done.set()
            beats.join()
            shutil.rmtree(self.dir, ignore_errors=True)

    def _upload_last_checkpoint(self) -> None:
        """After a stop the engine has written one more checkpoint; hand it to the API."""
        steps = sorted((self.run_dir / "checkpoints").glob("step-*[0-9]"))
        if not steps or (self.run_dir / f"{steps[-1].name}.tar").exists():
            return
        step = int(steps[-1].name.split("-")[1])
        try:
            urls = self.client.uploads(self.job["id"], self.token, [], checkpoint=True)
            upload(urls["checkpoint"]["url"], checkpoint_tar(steps[-1]))
            self.client.heartbeat(
                self.job["id"],
                {
                    "lease_token": self.token,
                    "step": step,
                    "total_steps": step + 1,
                    "checkpoint_step": step,
                },
            )
        except (ApiError, OSError) as e:
            self.log(f"job {self.job['id']}: could not upload the last checkpoint: {e}")

    def _fail(self, error: str, retryable: bool) -> None:
        try:
            self.client.fail(self.job["id"], self.token, error, retryable)
        except ApiError as e:
            self.log(f"job {self.job['id']}: could not report the failure: {e}")


def encoder_from_last(run_dir: Path) -> tuple[Encoder, Any]:
    steps = sorted((run_dir / "checkpoints").glob("step-*[0-9]"))
    if not steps:
        raise ValueError(f"{run_dir}: no checkpoint to probe")
    return encoder_from_checkpoint(steps[-1])


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
        except (ApiError, OSError) as e:
            log(f"claim failed: {e}; retrying in {wait:.0f}s")
            claim = None
        if claim is None:
            stop.wait(wait)
            wait = min(poll_max, wait * 2)
            continue
        wait = 1.0
        log(f"claimed job {claim['job']['id']} (attempt {claim['job']['attempt']})")
        # Beat well inside the lease so a slow step or a retried request does not lose the job.
        beat = min(5.0, claim["lease"]["seconds"] / 4)
        JobRunner(client, claim, work_dir, stop, heartbeat_seconds=beat, log=log).run()
        if once:
            break
    return 0
