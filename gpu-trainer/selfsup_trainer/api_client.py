"""The trainer's side of the job protocol: a small HTTP client on the standard library.

All database writes go through the API; bytes go to and from R2 through the presigned URLs the API
hands out, never through the API itself.
"""

from __future__ import annotations

import contextlib
import hashlib
import json
import time
import urllib.error
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


class ApiClient:
    def __init__(self, base_url: str, api_key: str, timeout: float = 60.0) -> None:
        self.base_url = base_url.rstrip("/")
        self.api_key = api_key
        self.timeout = timeout

    def _request(self, method: str, path: str, body: dict[str, Any] | None = None) -> Any:
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
        # Connection failures and 5xx are retried a few times: a trainer outlives API restarts.
        for attempt in range(5):
            try:
                with urllib.request.urlopen(req, timeout=self.timeout) as res:
                    raw = res.read()
                    return json.loads(raw) if raw else None
            except urllib.error.HTTPError as e:
                problem = None
                with contextlib.suppress(ValueError):
                    problem = json.loads(e.read() or b"null")
                if e.code >= 500 and attempt < 4:
                    time.sleep(0.5 * 2**attempt)
                    continue
                cls = StaleLease if e.code == 409 else ApiError
                raise cls(e.code, problem, f"{method} {path}") from None
            except (urllib.error.URLError, ConnectionError, TimeoutError):
                if attempt == 4:
                    raise
                time.sleep(0.5 * 2**attempt)
        raise AssertionError("unreachable")

    def claim(self, owner: str) -> dict[str, Any] | None:
        return self._request("POST", "/v1/trainer/claim", {"owner": owner})

    def heartbeat(self, job_id: str, body: dict[str, Any]) -> dict[str, Any]:
        return self._request("POST", f"/v1/trainer/jobs/{job_id}/heartbeat", body)

    def uploads(
        self, job_id: str, token: str, files: list[str], checkpoint: bool
    ) -> dict[str, Any]:
        body = {"lease_token": token, "files": files, "checkpoint": checkpoint}
        return self._request("POST", f"/v1/trainer/jobs/{job_id}/uploads", body)

    def complete(self, job_id: str, token: str, manifest: dict[str, Any]) -> dict[str, Any]:
        body = {"lease_token": token, "manifest": manifest}
        return self._request("POST", f"/v1/trainer/jobs/{job_id}/complete", body)

    def fail(self, job_id: str, token: str, error: str, retryable: bool) -> dict[str, Any]:
        body = {"lease_token": token, "error": error[:4000], "retryable": retryable}
        return self._request("POST", f"/v1/trainer/jobs/{job_id}/fail", body)


def download(url: str, dest: Path, sha256: str | None = None, timeout: float = 300.0) -> Path:
    """GET a presigned URL to ``dest``, verifying SHA-256 when given; writes atomically."""
    tmp = dest.with_name(dest.name + ".part")
    digest = hashlib.sha256()
    with urllib.request.urlopen(url, timeout=timeout) as res, open(tmp, "wb") as out:
        while chunk := res.read(CHUNK):
            digest.update(chunk)
            out.write(chunk)
    if sha256 is not None and digest.hexdigest() != sha256:
        tmp.unlink(missing_ok=True)
        raise ValueError(f"{dest.name}: sha256 {digest.hexdigest()} != expected {sha256}")
    tmp.replace(dest)
    return dest


def upload(url: str, path: Path, timeout: float = 600.0) -> None:
    """PUT a file to a presigned URL (R2 single PUT; artifacts and checkpoints stay < 5 GiB)."""
    size = path.stat().st_size
    with open(path, "rb") as f:
        req = urllib.request.Request(
            url, data=f, method="PUT", headers={"content-length": str(size)}
        )
        with urllib.request.urlopen(req, timeout=timeout) as res:
            res.read()
