"""The CLI's two ways to the deployment: the `api` over HTTP, and the bucket through the storage client.

In the cloud the `api` is private: every call carries an identity token for its URL, from Application Default
Credentials (`google.oauth2.id_token.fetch_id_token`: a service account key, workload identity, the metadata
server), else from `gcloud auth print-identity-token` (a person's own gcloud login), else `STT_ID_TOKEN`.
Locally (an http:// URL) no token is sent.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from collections.abc import Callable
from functools import cached_property
from pathlib import Path
from typing import Any, BinaryIO, Protocol
from urllib.parse import urlsplit

import requests

from sttdata_cli.config import CliConfig
from sttdata_cli.errors import CliError

CALL_TIMEOUT_S = 120.0
TokenSource = Callable[[str], str | None]


def identity_token(url: str) -> str | None:
    """An identity token whose audience is the `api`'s URL; None for a local (http://) URL."""
    parts = urlsplit(url)
    if parts.scheme != "https":
        return None
    if os.environ.get("STT_ID_TOKEN"):
        return os.environ["STT_ID_TOKEN"]
    audience = f"{parts.scheme}://{parts.netloc}"
    import google.auth.exceptions
    from google.auth.transport.requests import Request
    from google.oauth2 import id_token

    try:
        return str(id_token.fetch_id_token(Request(), audience))
    except google.auth.exceptions.GoogleAuthError:
        pass  # a person's user credentials cannot mint an identity token this way: ask gcloud
    gcloud = shutil.which("gcloud")
    if gcloud is not None:
        done = subprocess.run([gcloud, "auth", "print-identity-token"], capture_output=True, text=True,
                              timeout=60, check=False)
        if done.returncode == 0 and done.stdout.strip():
            return done.stdout.strip()
    raise CliError("no identity token for the private api: run `gcloud auth login` (or point "
                   "GOOGLE_APPLICATION_CREDENTIALS at a service account key), or set STT_ID_TOKEN")


class ApiClient:
    """`{"op": ..., ...}` calls to the `api` function; the answer's `result`, or CliError with its message."""

    def __init__(self, url: str, token: TokenSource = identity_token, session: requests.Session | None = None,
                 timeout_s: float = CALL_TIMEOUT_S) -> None:
        self.url, self.token, self.timeout_s = url, token, timeout_s
        self.session = session or requests.Session()
        self._token: str | None = None
        self._token_fetched = False

    def _headers(self) -> dict[str, str]:
        if not self._token_fetched:
            self._token, self._token_fetched = self.token(self.url), True
        return {"Authorization": f"Bearer {self._token}"} if self._token else {}

    def call(self, op: str, **arguments: Any) -> Any:
        body = {"op": op, **{key: value for key, value in arguments.items() if value is not None}}
        try:
            answer = self.session.post(self.url, json=body, headers=self._headers(), timeout=self.timeout_s)
        except requests.ConnectionError:
            raise CliError(f"cannot reach the api at {self.url}: start the local stack with `make up`, or set "
                           "STT_API_URL to the deployed api's URL") from None
        except requests.Timeout:
            raise CliError(f"the api at {self.url} did not answer {op} within {self.timeout_s:.0f} s: "
                           "try again, or check the function's logs") from None
        if answer.status_code in (401, 403):
            raise CliError(f"the api at {self.url} refused the call (HTTP {answer.status_code}): your identity "
                           "needs the invoker role on the api function (roles/run.invoker)")
        try:
            payload = answer.json()
        except ValueError:
            payload = None
        if not isinstance(payload, dict):
            raise CliError(f"the api at {self.url} answered {op} with HTTP {answer.status_code} and no JSON: "
                           "is STT_API_URL the api function's URL?")
        if answer.status_code >= 400 or "result" not in payload:
            raise CliError(f"{op}: {payload.get('error', f'HTTP {answer.status_code}')}")
        return payload["result"]


class BucketFiles(Protocol):
    """What the CLI does in the bucket itself: uploads that start work, streamed downloads."""

    bucket: str

    def upload(self, path: Path, name: str, content_type: str) -> int:
        """Upload a local file as `name`; the new object's generation."""

    def put(self, name: str, data: bytes, content_type: str) -> int:
        """Write `data` as `name`; the new object's generation."""

    def download(self, name: str, sink: BinaryIO) -> None:
        """Stream the object into `sink`, a chunk at a time."""


class GcsFiles(BucketFiles):
    """The deployment's bucket: fake-gcs-server when STORAGE_EMULATOR_HOST is set, else Cloud Storage with ADC."""

    def __init__(self, config: CliConfig) -> None:
        self.config = config
        self.bucket = config.settings.bucket

    @cached_property
    def _bucket(self) -> Any:
        from google.cloud import storage

        project = self.config.env.get("GOOGLE_CLOUD_PROJECT") or None
        emulator = self.config.storage_emulator
        if emulator is not None:
            from google.auth.credentials import AnonymousCredentials

            client = storage.Client(project=project, credentials=AnonymousCredentials(),
                                    client_options={"api_endpoint": emulator})
        else:
            client = storage.Client(project=project)
        return client.bucket(self.bucket)

    def upload(self, path: Path, name: str, content_type: str) -> int:
        blob = self._bucket.blob(name)
        blob.upload_from_filename(str(path), content_type=content_type)
        return int(blob.generation)

    def put(self, name: str, data: bytes, content_type: str) -> int:
        blob = self._bucket.blob(name)
        blob.upload_from_string(data, content_type=content_type)
        return int(blob.generation)

    def download(self, name: str, sink: BinaryIO) -> None:
        # Our own sha256 verifies the bytes: the library's crc32c/md5 check would read them twice.
        self._bucket.blob(name).download_to_file(sink, checksum=None)
