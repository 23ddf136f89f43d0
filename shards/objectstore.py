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
import re
from dataclasses import dataclass
from urllib.parse import quote, unquote

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


# query keys that carry credentials: taken as credentials, never shown or stored
SECRET_KEYS = ("access_key", "secret_key", "session_token")

# ``KEY:SECRET@bucket`` at the start of a URI's authority. An AWS secret often holds ``/``
# (and other stores' secrets ``#`` or ``?``), which a URL parser takes for the start of the
# path, query or fragment, and would then print part of the secret as the bucket or path.
# So the credentials run up to the first ``@`` that is followed by a host (a bucket name,
# an optional port) and then the path, the query or the end: an access key id holds no
# ``:``, ``/`` or ``@``, and a bucket name no ``@``.
_USERINFO = re.compile(r"(?P<user>[^:/@?#]*)(?::(?P<secret>.*?))?@(?=(?P<host>[A-Za-z0-9][A-Za-z0-9._-]*(?::\d+)?)(?:[/?]|$))", re.S)


@dataclass(frozen=True)
class ParsedUri:
    """A root URI taken apart: its credentials (user part or query) kept apart from what may be shown."""

    scheme: str
    host: str
    path: str
    options: tuple[tuple[str, str], ...]  # the query, in order, credentials left out
    user: str | None = None
    secret: str | None = None
    token: str | None = None

    @property
    def has_credentials(self) -> bool:
        return bool(self.user or self.secret or self.token)

    def public(self) -> str:
        """The URI without credentials: what messages print and what files in the root store."""
        query = "&".join(f"{k}={quote(v, safe=':/.,-_')}" for k, v in self.options)
        return f"{self.scheme}://{self.host}{self.path}" + (f"?{query}" if query else "")


def parse_uri(uri: str) -> ParsedUri | None:
    """``scheme://[user[:secret]@]host/path?k=v&...`` taken apart; None for a plain path. The
    query is split on ``&`` and ``=`` only, so a secret holding ``#`` or ``?`` stays a value."""
    scheme, sep, rest = uri.partition("://")
    if not sep or not re.fullmatch(r"[A-Za-z][A-Za-z0-9+.-]*", scheme):
        return None
    user = secret = token = None
    m = _USERINFO.match(rest)
    if m:
        user, secret = unquote(m["user"]) or None, unquote(m["secret"]) if m["secret"] is not None else None
        rest = rest[m.end() :]
    location, _, query = rest.partition("?")
    host, slash, path = location.partition("/")
    options = []
    for pair in query.split("&") if query else ():
        key, _, value = pair.partition("=")
        key, value = unquote(key), unquote(value)
        if key == "access_key":
            user = value
        elif key == "secret_key":
            secret = value
        elif key == "session_token":
            token = value
        else:
            options.append((key, value))
    return ParsedUri(scheme, host, slash + path, tuple(options), user, secret, token)


def public_uri(uri: str) -> str:
    """The URI without credentials, for messages, logs and every file written into a root."""
    parsed = parse_uri(uri)
    return parsed.public() if parsed else uri


def s3_filesystem(uri: str, *, attempts: int | None = None) -> tuple[pafs.S3FileSystem, str]:
    """(filesystem, bucket/path) for an s3:// URI; RootError naming the URI for a malformed one."""
    parts = parse_uri(uri)
    shown = public_uri(uri)
    if parts is None or not parts.host:
        raise RootError(f"corpus root {shown}: no bucket in the URI (s3://BUCKET/path)")
    kwargs: dict = {}
    for key, value in parts.options:
        if key not in _KEYS:
            raise RootError(f"corpus root {shown}: unknown option {key!r} (known: {', '.join(sorted([*_KEYS, *SECRET_KEYS]))})")
        try:
            kwargs[key] = _KEYS[key](value)
        except ValueError:
            raise RootError(f"corpus root {shown}: option {key}={value!r} is not valid") from None
    retries = kwargs.pop("retries", None) or attempts or int(os.environ.get("WEBMILL_S3_RETRIES", 10))
    if parts.user or parts.secret:
        kwargs["access_key"], kwargs["secret_key"] = parts.user or "", parts.secret or ""
        if parts.token:
            kwargs["session_token"] = parts.token
    kwargs.setdefault("connect_timeout", 5.0)
    fs = pafs.S3FileSystem(retry_strategy=pafs.AwsStandardS3RetryStrategy(max_attempts=retries), **kwargs)
    return fs, (parts.host.split(":", 1)[0] + parts.path).rstrip("/")


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
