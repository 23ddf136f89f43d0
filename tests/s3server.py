"""A real S3-compatible server on 127.0.0.1 for the tests: moto's standalone server, with IAM on.

The server runs in its own process (``moto_server``) with authentication enabled
after the four set-up actions (a user, its access key, its S3 policy, the
bucket), so wrong credentials are refused as AWS refuses them. ``PausableProxy``
sits in front of it for the fault tests: ``pause()`` drops every connection and
stops listening, as a restarting server does, while the objects survive.
"""

from __future__ import annotations

import json
import os
import socket
import subprocess
import sys
import threading
import time
import uuid
from pathlib import Path

BUCKET = "corpus"


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


def wait_port(port: int, timeout: float = 30.0) -> None:
    deadline = time.time() + timeout
    while time.time() < deadline:
        with socket.socket() as s:
            if s.connect_ex(("127.0.0.1", port)) == 0:
                return
        time.sleep(0.1)
    raise RuntimeError(f"nothing listens on 127.0.0.1:{port}")


class S3Server:
    """moto_server on a free loopback port, a bucket and a user allowed s3:*."""

    def __init__(self):
        self.port = free_port()
        env = {**os.environ, "INITIAL_NO_AUTH_ACTION_COUNT": "4"}
        moto = Path(sys.executable).parent / "moto_server"
        self.proc = subprocess.Popen(
            [str(moto), "-H", "127.0.0.1", "-p", str(self.port)],
            env=env,
            stdout=subprocess.DEVNULL,
            stderr=subprocess.DEVNULL,
            start_new_session=True,
        )
        wait_port(self.port)
        import boto3

        kw = dict(
            endpoint_url=f"http://127.0.0.1:{self.port}", region_name="us-east-1", aws_access_key_id="setup", aws_secret_access_key="setup"
        )
        iam = boto3.client("iam", **kw)
        iam.create_user(UserName="webmill")
        key = iam.create_access_key(UserName="webmill")["AccessKey"]
        iam.put_user_policy(
            UserName="webmill",
            PolicyName="s3",
            PolicyDocument=json.dumps({"Version": "2012-10-17", "Statement": [{"Effect": "Allow", "Action": "s3:*", "Resource": "*"}]}),
        )
        boto3.client("s3", **kw).create_bucket(Bucket=BUCKET)
        self.key_id, self.secret = key["AccessKeyId"], key["SecretAccessKey"]
        # what a process needs to reach the server: the credentials, and no EC2 metadata lookups
        self.env = {
            "AWS_ACCESS_KEY_ID": self.key_id,
            "AWS_SECRET_ACCESS_KEY": self.secret,
            "AWS_EC2_METADATA_DISABLED": "true",
            "AWS_DEFAULT_REGION": "us-east-1",
        }

    def uri(self, prefix: str | None = None, *, port: int | None = None, bucket: str = BUCKET) -> str:
        prefix = prefix or f"t-{uuid.uuid4().hex[:10]}"
        return f"s3://{bucket}/{prefix}?endpoint_override=127.0.0.1:{port or self.port}&scheme=http&region=us-east-1"

    def boto(self):
        import boto3

        return boto3.client(
            "s3",
            endpoint_url=f"http://127.0.0.1:{self.port}",
            region_name="us-east-1",
            aws_access_key_id=self.key_id,
            aws_secret_access_key=self.secret,
        )

    def keys(self, prefix: str) -> list[str]:
        out, token = [], None
        s3 = self.boto()
        while True:
            kw = {"Bucket": BUCKET, "Prefix": prefix, **({"ContinuationToken": token} if token else {})}
            page = s3.list_objects_v2(**kw)
            out += [o["Key"] for o in page.get("Contents", [])]
            if not page.get("IsTruncated"):
                return out
            token = page["NextContinuationToken"]

    def stop(self) -> None:
        self.proc.kill()
        self.proc.wait()


class PausableProxy:
    """A TCP forwarder on its own loopback port; ``pause(seconds)`` makes the server vanish that long."""

    def __init__(self, target_port: int):
        self.target = target_port
        self.port = free_port()
        self._conns: list[socket.socket] = []
        self._lock = threading.Lock()
        self._listener: socket.socket | None = None
        self._listen()

    def _listen(self) -> None:
        s = socket.socket()
        s.setsockopt(socket.SOL_SOCKET, socket.SO_REUSEADDR, 1)
        s.bind(("127.0.0.1", self.port))
        s.listen(64)
        self._listener = s
        threading.Thread(target=self._accept, args=(s,), daemon=True).start()

    def _accept(self, listener: socket.socket) -> None:
        while True:
            try:
                client, _ = listener.accept()
            except OSError:
                return
            try:
                upstream = socket.create_connection(("127.0.0.1", self.target))
            except OSError:
                client.close()
                continue
            with self._lock:
                self._conns += [client, upstream]
            for a, b in ((client, upstream), (upstream, client)):
                threading.Thread(target=self._pipe, args=(a, b), daemon=True).start()

    @staticmethod
    def _pipe(src: socket.socket, dst: socket.socket) -> None:
        try:
            while data := src.recv(65536):
                dst.sendall(data)
        except OSError:
            pass
        for s in (src, dst):
            try:
                s.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass

    def pause(self, seconds: float) -> None:
        """Stop listening and reset every open connection, then come back after ``seconds``."""
        self._listener.close()
        with self._lock:
            conns, self._conns = self._conns, []
        for c in conns:
            try:
                # linger 0: close() sends a reset; shutdown() first wakes the forwarding thread
                # blocked in recv(), which would otherwise keep the connection half alive
                c.setsockopt(socket.SOL_SOCKET, socket.SO_LINGER, b"\x01\x00\x00\x00\x00\x00\x00\x00")
                c.shutdown(socket.SHUT_RDWR)
            except OSError:
                pass
            c.close()
        time.sleep(seconds)
        self._listen()

    def pause_later(self, after: float, seconds: float) -> threading.Thread:
        t = threading.Thread(target=lambda: (time.sleep(after), self.pause(seconds)), daemon=True)
        t.start()
        return t

    def close(self) -> None:
        self._listener.close()
