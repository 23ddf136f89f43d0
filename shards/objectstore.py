"""Object-store roots: an ``s3://`` URI → a pyarrow S3FileSystem that retries, and errors a user can read.

    s3://bucket/corpus?endpoint_override=127.0.0.1:9000&scheme=http&region=us-east-1

Credentials come from the URI's user part (``s3://KEY:SECRET@bucket/…``) or, as
usual, from ``AWS_ACCESS_KEY_ID`` / ``AWS_SECRET_ACCESS_KEY`` / ``~/.aws``. Every
request is retried by the AWS SDK with exponential backoff (``retries`` attempts,
default ``WEBMILL_S3_RETRIES`` or 10, about half a minute in all), so a server that
stops for a few seconds costs a stage only that pause. pyarrow does not pickle a
filesystem's retry strategy, so a root travels to Ray workers as its URI and is
rebuilt there (``CorpusRoot.__reduce__``).
"""

from __future__ import annotations

import os
from urllib.parse import parse_qs, unquote, urlsplit

import pyarrow.fs as pafs

from webmill.errors import RootError, first_line

# query keys of an s3:// URI and how to read each (the names pyarrow's own from_uri uses)
_KEYS = {
    "region": str,
    "scheme": str,
    "endpoint_override": str,
    "connect_timeout": float,
    "request_timeout": float,
    "force_virtual_addressing": lambda v: v.lower() in ("1", "true", "yes"),
    "anonymous": lambda v: v.lower() in ("1", "true", "yes"),
    "retries": int,
}


def public_uri(uri: str) -> str:
    """The URI without credentials, for messages and logs."""
    if "://" not in uri:
        return uri
    scheme, rest = uri.split("://", 1)
    host, sep, tail = rest.partition("/")
    return f"{scheme}://{host.rsplit('@', 1)[-1]}{sep}{tail}"


def s3_filesystem(uri: str, *, attempts: int | None = None) -> tuple[pafs.S3FileSystem, str]:
    """(filesystem, bucket/path) for an s3:// URI; RootError naming the URI for a malformed one."""
    parts = urlsplit(uri)
    shown = public_uri(uri)
    if not parts.hostname:
        raise RootError(f"corpus root {shown}: no bucket in the URI (s3://BUCKET/path)")
    kwargs: dict = {}
    for key, values in parse_qs(parts.query, keep_blank_values=True).items():
        if key not in _KEYS:
            raise RootError(f"corpus root {shown}: unknown option {key!r} (known: {', '.join(sorted(_KEYS))})")
        try:
            kwargs[key] = _KEYS[key](values[-1])
        except ValueError:
            raise RootError(f"corpus root {shown}: option {key}={values[-1]!r} is not valid") from None
    retries = kwargs.pop("retries", None) or attempts or int(os.environ.get("WEBMILL_S3_RETRIES", 10))
    if parts.username:
        kwargs["access_key"], kwargs["secret_key"] = unquote(parts.username), unquote(parts.password or "")
    kwargs.setdefault("connect_timeout", 5.0)
    fs = pafs.S3FileSystem(retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=retries), **kwargs)
    # urlsplit lowercases the host; keep the bucket as written
    bucket = parts.netloc.rsplit("@", 1)[-1]
    return fs, (bucket + parts.path).rstrip("/")


def check_s3_root(uri: str, base: str) -> None:
    """Fail in seconds, with one line naming the URI, where the bucket is missing, the credentials
    are refused or nothing answers; a probe filesystem that tries once keeps it quick."""
    probe, _ = s3_filesystem(uri, attempts=1)
    bucket = base.split("/", 1)[0]
    try:
        info = probe.get_file_info(bucket)
    except OSError as e:
        raise RootError(f"corpus root {public_uri(uri)}: {describe(e)}") from None
    if info.type == pafs.FileType.NotFound:
        raise RootError(f"corpus root {public_uri(uri)}: bucket {bucket!r} does not exist")


def describe(e: BaseException) -> str:
    """An object-store error as a reason a user can act on."""
    text = str(e)
    if "NETWORK_CONNECTION" in text or "curlCode" in text or "Could not connect" in text:
        return f"endpoint unreachable ({first_line(e)})"
    if any(
        k in text
        for k in (
            "ACCESS_DENIED",
            "SIGNATURE_DOES_NOT_MATCH",
            "INVALID_ACCESS_KEY",
            "InvalidAccessKeyId",
            "AccessDenied",
            "SignatureDoesNotMatch",
        )
    ):
        return f"credentials refused ({first_line(e)})"
    if "not found" in text.lower() and "bucket" in text.lower():
        return f"bucket does not exist ({first_line(e)})"
    return first_line(e)


# Markers of errors that a later attempt may not meet: the network, a busy or restarting server.
_TRANSIENT = (
    "NETWORK_CONNECTION",
    "curlCode",
    "Could not connect",
    "Connection refused",
    "Connection reset",
    "timed out",
    "Timeout",
    "SLOW_DOWN",
    "SlowDown",
    "INTERNAL_FAILURE",
    "InternalError",
    "SERVICE_UNAVAILABLE",
    "ServiceUnavailable",
    "503",
    "500 ",
    "RequestTimeout",
    "Broken pipe",
    "transient",
)


def is_transient(e: BaseException) -> bool:
    return isinstance(e, OSError) and any(k in str(e) for k in _TRANSIENT)
