"""The trainer's side of the job protocol: a small HTTP client on the standard library.

All database writes go through the API; bytes go to and from R2 through the presigned URLs the API
hands out, never through the API itself.
"""

from __future__ import annotations

import contextlib
import errno
import hashlib
import http.client
import io
import json
import socket
import time
import urllib.error
import urllib.parse
import urllib.request
from pathlib import Path
from typing import Any

CHUNK = 1 << 20


class ApiError(RuntimeError):
    """A 4xx/5xx answer; ``status`` and the problem document are kept for the caller."""

    def __init__(self, status: int, problem: dict[str, Any] | None, what: str) -> None:
        detail = (problem or {}).get("detail") or f"HTTP {status}"
        super().__init__(f"{what}: {status} {detail}")
        self.status = status
        self.problem = problem or {}


class StaleLease(ApiError):
    """409: another replica owns the job now, or it ended. Stop working on it."""


class DownloadError(Exception):
    """A download came back truncated or with the wrong SHA-256: transient, retry the job."""


def refused(exc: BaseException) -> bool:
    """True when the request never reached the server (refused, unresolvable, no route).

    Only these are safe to retry for every call: the server cannot have acted on the request.
    A timeout or a reset may come after the server applied it.
    """
    reason = exc.reason if isinstance(exc, urllib.error.URLError) else exc
    if isinstance(reason, ConnectionRefusedError | socket.gaierror):
        return True
    return isinstance(reason, OSError) and reason.errno in (errno.ENETUNREACH, errno.EHOSTUNREACH)


def ambiguous(exc: BaseException) -> bool:
    """The server may or may not have applied the request: 5xx, timeout, reset, cut-off answer."""
    if isinstance(exc, ApiError):
        return exc.status >= 500
    return isinstance(exc, OSError | http.client.HTTPException) and not refused(exc)


class ApiClient:
    def __init__(self, base_url: str, api_key: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def _request(
        self,
        method: str,
        path: str,
        body: dict[str, Any] | None = None,
        idempotent: bool = False,
        timeout: float | None = None,
    ) -> Any:
        """One API call. Requests that never reached the server are retried for every call (a
        trainer outlives API restarts); 5xx, timeouts and resets only for ``idempotent`` calls,
        since the server may have applied the first try."""
        data = json.dumps(body).encode() if body is not None else None
        req = urllib.request.Request(
            self.base_url + path,
            data=data,
            method=method,
            headers={
                "authorization": f"Bearer {self.api_key}",
                **({"content-type": "application/json"} if data is not None else {}),
            },
        )
        for attempt in range(5):
            try:
                try:
                    with urllib.request.urlopen(req, timeout=timeout or self.timeout) as res:
                        raw = res.read()
                        return json.loads(raw) if raw else None
                except urllib.error.HTTPError as e:
                    problem = None
                    with contextlib.suppress(ValueError):
                        problem = json.loads(e.read() or b"null")
                    cls = StaleLease if e.code == 409 else ApiError
                    raise cls(e.code, problem, f"{method} {path}") from None
            except (ApiError, OSError, http.client.HTTPException) as e:
                retry = refused(e) or (idempotent and ambiguous(e))
                if not retry or attempt == 4:
                    raise
                time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def claim(self, owner: str) -> dict[str, Any] | None:
        # Idempotent per owner: a retry whose first answer was lost gets the same job and lease.
        return self._request("POST", "/v1/trainer/claim", {"owner": owner}, idempotent=True)

    def heartbeat(self, job_id: str, body: dict[str, Any], timeout: float = 15.0) -> dict[str, Any]:
        # Short timeout: the next beat follows in seconds, and shutdown waits for this one.
        path = f"/v1/trainer/jobs/{job_id}/heartbeat"
        return self._request("POST", path, body, idempotent=True, timeout=timeout)

    def uploads(
        self, job_id: str, token: str, files: list[str], checkpoint_step: int | None = None
    ) -> dict[str, Any]:
        body: dict[str, Any] = {"lease_token": token, "files": files}
        if checkpoint_step is not None:
            body["checkpoint_step"] = checkpoint_step
        path = f"/v1/trainer/jobs/{job_id}/uploads"
        return self._request("POST", path, body, idempotent=True)

    def complete(self, job_id: str, token: str, manifest: dict[str, Any]) -> bool:
        """Register the trained model: True once the API confirms it. False when a retry after a
        5xx/timeout/reset got 409: the first try most likely registered it (which clears the
        lease, so the retry is refused), or the job was cancelled in between; the trainer key
        cannot read the job to tell which. Either way the job is over for this trainer.

        Raises:
            StaleLease: 409 on the first try (lease lost or job cancelled): stop, do not retry.
        """
        body = {"lease_token": token, "manifest": manifest}
        path = f"/v1/trainer/jobs/{job_id}/complete"
        # Retrying is safe only because the API checks the lease token in the same transaction
        # that registers the version: a duplicate gets 409, never a second version.
        for attempt in range(3):
            try:
                self._request("POST", path, body, timeout=300.0)
                return True
            except StaleLease:
                if attempt == 0:
                    raise
                return False
            except (ApiError, OSError, http.client.HTTPException) as e:
                if not ambiguous(e) or attempt == 2:
                    raise
                time.sleep(5.0 * (attempt + 1))
        raise AssertionError("unreachable")

    def create_import(self, name: str, manifest: dict[str, Any]) -> dict[str, Any]:
        """Declare a version to import: the API checks the manifest and answers presigned PUTs
        (``uploads``: file name -> url) and the pending import's ``id``."""
        path = f"/v1/models/{urllib.parse.quote(name, safe='')}/imports"
        return self._request("POST", path, {"manifest": manifest})

    def complete_import(self, name: str, import_id: str) -> dict[str, Any]:
        """Verify the uploaded files and register them as one version (the answer)."""
        path = f"/v1/models/{urllib.parse.quote(name, safe='')}/imports/{import_id}/complete"
        return self._request("POST", path, {}, timeout=300.0)

    def fail(
        self, job_id: str, token: str, error: str, retryable: bool, release: bool = False
    ) -> dict[str, Any]:
        """Give the job up. ``release`` (graceful shutdown) requeues it without counting the
        attempt; ``retryable`` requeues it while attempts remain."""
        body = {
            "lease_token": token,
            "error": error[:4000],
            "retryable": retryable,
            "release": release,
        }
        return self._request("POST", f"/v1/trainer/jobs/{job_id}/fail", body)


def download(url: str, dest: Path, sha256: str | None = None, timeout: float = 300.0) -> Path:
    """GET a presigned URL to ``dest``, verifying SHA-256 when given; writes atomically.

    Raises:
        DownloadError: the body was cut short or its SHA-256 differs (transient: retry).
    """
    tmp = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    try:
        with urllib.request.urlopen(url, timeout=timeout) as res, open(tmp, "wb") as out:
            while chunk := res.read(CHUNK):
                digest.update(chunk)
                out.write(chunk)
    except http.client.IncompleteRead as e:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{dest.name}: download cut short ({e})") from None
    if sha256 is not None and digest.hexdigest() != sha256:
        tmp.unlink(missing_ok=True)
        raise DownloadError(f"{dest.name}: sha256 {digest.hexdigest()} != expected {sha256}")
    tmp.replace(dest)
    return dest


class _Progress(io.RawIOBase):
    """A file whose reads advance a tqdm bar (urllib streams request bodies by read())."""

    def __init__(self, f: io.BufferedReader, bar) -> None:
        self.f, self.bar = f, bar

    def readable(self) -> bool:
        return True

    def read(self, size: int = -1) -> bytes:
        chunk = self.f.read(size)
        self.bar.update(len(chunk))
        return chunk


def upload(url: str, path: Path, timeout: float = 600.0, progress: str | None = None) -> None:
    """PUT a file to a presigned URL (R2 single PUT; artifacts and checkpoints stay < 5 GiB).

    ``progress``: label of a byte progress bar on stderr (the CLI's uploads); None for none.
    """
    size = path.stat().st_size
    with open(path, "rb") as f:
        bar = None
        body: Any = f
        if progress is not None:
            from tqdm import tqdm

            bar = tqdm(total=size, desc=progress, unit="B", unit_scale=True, leave=False)
            body = _Progress(f, bar)
        req = urllib.request.Request(
            url, data=body, method="PUT", headers={"content-length": str(size)}
        )
        try:
            with urllib.request.urlopen(req, timeout=timeout) as res:
                res.read()
        finally:
            if bar is not None:
                bar.close()
