"""A test bucket in the S3-compatible store or the Google Cloud Storage emulator that conftest starts."""

from __future__ import annotations

import boto3


class Bucket:
    """A test bucket, created empty and read and written with the store's own client, not with the code under test."""

    def __init__(self, scheme: str, name: str, prefix: str = "wikichar"):
        self.scheme = scheme
        self.name = name
        self.root = f"{scheme}://{name}/{prefix}"
        if scheme == "s3":
            self.client = boto3.client("s3")
            self.client.create_bucket(Bucket=self.name)
        else:
            from google.cloud import storage

            self.client = storage.Client()
            self.bucket = self.client.create_bucket(name)

    def put(self, key: str, body: bytes) -> None:
        if self.scheme == "s3":
            self.client.put_object(Bucket=self.name, Key=key, Body=body)
        else:
            self.bucket.blob(key).upload_from_string(body)

    def get(self, key: str) -> bytes:
        if self.scheme == "s3":
            return self.client.get_object(Bucket=self.name, Key=key)["Body"].read()
        return self.bucket.blob(key).download_as_bytes()

    def keys(self, prefix: str = "") -> list[str]:
        if self.scheme == "gs":
            return sorted(blob.name for blob in self.client.list_blobs(self.name, prefix=prefix))
        keys = []
        for page in self.client.get_paginator("list_objects_v2").paginate(Bucket=self.name, Prefix=prefix):
            keys.extend(entry["Key"] for entry in page.get("Contents", []))
        return sorted(keys)

    def remove(self) -> None:
        """Delete every object and then the bucket."""
        if self.scheme == "gs":
            self.bucket.delete(force=True)
            return
        for key in self.keys():
            self.client.delete_object(Bucket=self.name, Key=key)
        self.client.delete_bucket(Bucket=self.name)
