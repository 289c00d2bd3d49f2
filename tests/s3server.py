"""A local S3-compatible server (moto's) holding invocation logs in the layout Bedrock writes."""

from __future__ import annotations

import contextlib
import os
import socket
from collections.abc import Iterator, Mapping

# What the tests' fsspec/s3fs (and DuckDB and Spark through them) use to reach the server.
CREDENTIALS = {"AWS_ACCESS_KEY_ID": "testing", "AWS_SECRET_ACCESS_KEY": "testing", "AWS_DEFAULT_REGION": "us-east-1"}
PREFIX = "AWSLogs/111122223333/BedrockModelInvocationLogs/us-east-1/2024/07"


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return probe.getsockname()[1]


@contextlib.contextmanager
def serving(bucket: str, objects: Mapping[str, bytes]) -> Iterator[str]:
    """A moto server on a free local port holding `objects` (key: bytes) in `bucket`; yields its URL.

    The environment points the AWS SDK there (AWS_ENDPOINT_URL) while it runs."""
    from moto.server import ThreadedMotoServer

    port = _free_port()
    server = ThreadedMotoServer(ip_address="127.0.0.1", port=port, verbose=False)
    server.start()
    endpoint = f"http://127.0.0.1:{port}"
    saved = {name: os.environ.get(name) for name in (*CREDENTIALS, "AWS_ENDPOINT_URL")}
    os.environ.update({**CREDENTIALS, "AWS_ENDPOINT_URL": endpoint})
    try:
        import boto3

        client = boto3.client("s3", endpoint_url=endpoint)
        client.create_bucket(Bucket=bucket)
        for key, data in objects.items():
            client.put_object(Bucket=bucket, Key=key, Body=data)
        import fsspec

        fsspec.config.conf.pop("s3", None)
        yield endpoint
    finally:
        for name, value in saved.items():
            if value is None:
                os.environ.pop(name, None)
            else:
                os.environ[name] = value
        server.stop()
