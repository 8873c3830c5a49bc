"""Download the dump files of one run into the data root."""

from __future__ import annotations

import urllib.parse
from pathlib import Path

import luigi

from pipeline.dump import DumpFile, Mirror, RetryPolicy, download_file, reuse_verified_copy, run_files, run_folder
from pipeline.storage import read_json, write_json
from tasks.base import StageTask


def connection_resource(mirror: str) -> dict[str, int]:
    """Return the Luigi resource that caps concurrent downloads from the mirror's host.

    luigi.cfg sets its size under [resources]; a resource it does not declare
    allows one download at a time.
    """
    host = urllib.parse.urlparse(mirror).hostname
    return {f"dump_connections_{host.replace('.', '_').replace('-', '_')}": 1} if host else {}


class DownloadDumpFile(StageTask):
    """Download one file of a dump, resuming a partial copy and verifying its size and checksum."""

    stage = "dump"
    file_name = luigi.Parameter(description="file name as the run's file list gives it")
    size = luigi.OptionalIntParameter(default=None, significant=False,
                                      description="size in bytes, where the source publishes it")
    sha1 = luigi.Parameter(default="", significant=False, description="sha1 from dumpstatus.json")
    md5 = luigi.Parameter(default="", significant=False, description="md5 from dumpstatus.json, used when there is no sha1")
    sha256 = luigi.Parameter(default="", significant=False, description="sha256 from a content export's SHA256SUMS")
    attempts = luigi.IntParameter(default=RetryPolicy.attempts, significant=False,
                                  description="requests per file before giving up on timeouts, resets, 429 and 5xx")
    backoff_seconds = luigi.FloatParameter(default=RetryPolicy.backoff_seconds, significant=False,
                                           description="wait before the first retry; it doubles for each retry after it")

    @property
    def resources(self):
        return connection_resource(self.mirror)

    def output_dir(self):
        return self.clone(DownloadDump).output_dir()

    def output(self):
        return self.file_target(self.output_dir() / self.file_name)

    def earlier_copies(self, dump_file: DumpFile) -> list[Path]:
        """Return the files of this wiki's other runs in the data root whose listing gives the same checksum.

        With object storage, the listings and the matching files are copied
        into the local cache first.
        """
        algorithm, expected = dump_file.checksum
        copies = []
        for listing_path in self.data.glob(f"{self.wiki}/*/{self.stage}/{self.source}/files.json"):
            if listing_path.parent == self.output_dir():
                continue
            self.data.fetch(listing_path)
            for entry in read_json(listing_path)["files"]:
                if entry.get(algorithm) == expected:
                    copies.append(listing_path.parent / entry["name"])
        self.data.fetch(*copies)
        return copies

    def produce(self):
        mirror = Mirror(self.mirror, contact=self.contact)
        dump_file = DumpFile(name=self.file_name, size=self.size, sha1=self.sha1, md5=self.md5, sha256=self.sha256,
                             folder=run_folder(self.wiki, self.date, self.source))
        destination = self.output_dir() / self.file_name
        if reuse_verified_copy(self.earlier_copies(dump_file), dump_file, destination):
            return
        retry = RetryPolicy(attempts=self.attempts, backoff_seconds=self.backoff_seconds)
        download_file(mirror, dump_file, destination, on_progress=self.report_progress,
                      retry=retry)


class DownloadDump(StageTask):
    """Download every file of one run of the dump source, each as its own task.

    Output: `{data_root}/{wiki}/{date}/dump/{source}/`, with the dump files
    (and index files, for the multistream source) and files.json (the
    verified file list, in page order), which is written last. A split wiki's
    parts download in parallel, as far as the mirror's connection resource
    allows.
    """

    stage = "dump"

    def output_dir(self):
        # A dump's bytes are fixed by its wiki, date and source, whatever the mirror.
        return self.run_dir / self.stage / self.source

    def output(self):
        return self.file_target(self.output_dir() / "files.json")

    def produce(self):
        mirror = Mirror(self.mirror, contact=self.contact)
        files = run_files(mirror, self.wiki, self.date, self.source)
        self.report_progress(f"downloading {len(files)} files")

        # Luigi runs these first and then re-enters run() from the top.
        yield [self.clone(DownloadDumpFile, file_name=f.name, size=f.size, sha1=f.sha1, md5=f.md5, sha256=f.sha256)
               for f in files]

        write_json(self.output().path, {
            "wiki": self.wiki,
            "date": self.date,
            "source": self.source,
            "mirror": mirror.base,
            "files": [{"name": f.name, "size": self.data.size(self.output_dir() / f.name), "sha1": f.sha1,
                       "md5": f.md5, "sha256": f.sha256, "index": f.is_index} for f in files],
        })
