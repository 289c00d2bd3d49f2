"""Log files where Bedrock delivers them: local paths, or `s3://bucket/prefix` through fsspec.

Bedrock writes invocation logs to S3 as gzipped JSON Lines under
`AWSLogs/{account}/BedrockModelInvocationLogs/{region}/{YYYY}/{MM}/{DD}/{HH}/…`. A URL
(`s3://…`, or any protocol fsspec knows) names one object, a prefix read recursively
(like a local folder), or a glob (`s3://bucket/AWSLogs/*/BedrockModelInvocationLogs/**/*.json.gz`).
Remote reading needs the `s3` extra (s3fs, which brings fsspec); credentials and the
endpoint come from the usual AWS settings (environment, profile, instance role).
"""

from __future__ import annotations

from typing import IO, Any

from ..errors import Problem, UsageError
from . import containers

_GLOB = frozenset("*?[")


def is_remote(path: str) -> bool:
    """Whether a path is a URL (`s3://…`) rather than a local file, folder or `-`."""
    return "://" in path


def _filesystem(path: str) -> tuple[Any, str]:
    try:
        import fsspec  # optional dependency: the `s3` extra
    except ImportError:
        raise UsageError([Problem(f"reading {path} needs fsspec and s3fs: pip install 'bedrock-rules[s3]'")]) from None
    try:
        return fsspec.core.url_to_fs(path)
    except (ImportError, ValueError) as error:
        raise UsageError([Problem(f"cannot read {path}: {error}")]) from None


def files_of(path: str) -> list[tuple[str, str]]:
    """(label, path) of every log a path names; a URL's prefix gives its objects, recursively, sorted."""
    if not is_remote(path):
        return containers.files_of(path)
    filesystem, root = _filesystem(path)
    protocol = path.split("://", 1)[0]
    try:
        if _GLOB & set(root):
            found = sorted(p for p in filesystem.glob(root) if not filesystem.isdir(p))
        elif filesystem.isdir(root):
            base = root.rstrip("/")
            found = sorted(
                p for p in filesystem.find(base)
                if not any(part.startswith(".") for part in p[len(base):].split("/") if part)
            )
        else:
            found = [root] if filesystem.exists(root) else []
    except OSError as error:
        raise UsageError([Problem(f"cannot list invocation logs: {error}", source=path)]) from None
    urls = [f"{protocol}://{p}" for p in found]
    if not urls:
        raise UsageError([Problem("no invocation log found", source=path)])
    return [(url, url) for url in urls]


def open_binary(path: str) -> IO[bytes]:
    """A log file as bytes, inflated when it is gzip: local (`containers.open_binary`) or a URL."""
    if not is_remote(path):
        return containers.open_binary(path)
    filesystem, root = _filesystem(path)
    return containers.unpack(filesystem.open(root, "rb"))


def is_gzip(path: str) -> bool:
    """Whether a file (local or remote) starts with gzip's magic number."""
    if is_remote(path):
        filesystem, root = _filesystem(path)
        with filesystem.open(root, "rb") as raw:
            return raw.read(2) == b"\x1f\x8b"
    with open(path, "rb") as raw:
        return raw.read(2) == b"\x1f\x8b"


def register(connection: Any, paths: list[str]) -> None:
    """Let a DuckDB connection read the URLs among `paths` through fsspec (no DuckDB extension needed)."""
    protocols = sorted({p.split("://", 1)[0] for p in paths if is_remote(p)})
    for protocol in protocols:
        filesystem, _ = _filesystem(f"{protocol}://bucket")
        connection.register_filesystem(filesystem)
