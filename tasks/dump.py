"""Download the dump files of one run into the data root."""

from __future__ import annotations

import urllib.parse

import luigi

from pipeline.dump import DumpFile, Mirror, download_file, multistream_files
from pipeline.storage import write_json
from tasks.base import StageTask


def connection_resource(mirror: str) -> dict[str, int]:
    """Return the Luigi resource that caps concurrent downloads from the mirror's host.

    luigi.cfg sets its size under [resources]; a resource it does not declare
    allows one download at a time.
    """
    host = urllib.parse.urlparse(mirror).hostname
    return {f"dump_connections_{host.replace('.', '_').replace('-', '_')}": 1} if host else {}


class DownloadDumpFile(StageTask):
    """Download one file of a dump, resuming a partial copy and verifying its size and sha1."""

    stage = "dump"
    file_name = luigi.Parameter(description="file name as listed in dumpstatus.json")
    size = luigi.IntParameter(significant=False, description="size in bytes from dumpstatus.json")
    sha1 = luigi.Parameter(default="", significant=False, description="sha1 from dumpstatus.json")
    md5 = luigi.Parameter(default="", significant=False, description="md5 from dumpstatus.json, used when there is no sha1")

    @property
    def resources(self):
        return connection_resource(self.mirror)

    def output_dir(self):
        return self.run_dir / self.stage

    def output(self):
        return luigi.LocalTarget(self.run_dir / self.stage / self.file_name, format=luigi.format.Nop)

    def run(self):
        mirror = Mirror(self.mirror, contact=self.contact)
        dump_file = DumpFile(name=self.file_name, size=self.size, sha1=self.sha1, md5=self.md5)
        download_file(mirror, self.wiki, self.date, dump_file, self.run_dir / self.stage / self.file_name,
                      on_progress=self.report_progress)


class DownloadDump(StageTask):
    """Download every file of the run's multistream job, each as its own task.

    Output: `{data_root}/{wiki}/{date}/dump/`, with the dump and index files
    and files.json (the verified file list), which is written last. A split
    wiki's parts download in parallel, as far as the mirror's connection
    resource allows.
    """

    stage = "dump"

    def output_dir(self):
        # A dump's bytes are fixed by its wiki and date, whatever the mirror.
        return self.run_dir / self.stage

    def output(self):
        return luigi.LocalTarget(self.output_dir() / "files.json")

    def run(self):
        mirror = Mirror(self.mirror, contact=self.contact)
        files = multistream_files(mirror.read_status(self.wiki, self.date), self.wiki, self.date)
        self.report_progress(f"downloading {len(files)} files")

        # Luigi runs these first and then re-enters run() from the top.
        yield [self.clone(DownloadDumpFile, file_name=f.name, size=f.size, sha1=f.sha1, md5=f.md5) for f in files]

        write_json(self.output().path, {
            "wiki": self.wiki,
            "date": self.date,
            "mirror": mirror.base,
            "files": [{"name": f.name, "size": f.size, "sha1": f.sha1, "md5": f.md5, "index": f.is_index} for f in files],
        })
