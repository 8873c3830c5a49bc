"""Download the dump files of one run into the data root."""

from __future__ import annotations

import luigi

from pipeline.dump import Mirror, download_file, multistream_files
from pipeline.storage import write_json
from tasks.base import StageTask


class DownloadDump(StageTask):
    """Copy every file of the run's multistream job, verified by size and sha1.

    Output: `{data_root}/{wiki}/{date}/dump/`, with the dump and index files
    and files.json (the verified file list), which is written last.
    """

    stage = "dump"

    def output_dir(self):
        # A dump's bytes are fixed by its wiki and date, whatever the mirror.
        return self.run_dir / self.stage

    def output(self):
        return luigi.LocalTarget(self.output_dir() / "files.json")

    def run(self):
        mirror = Mirror(self.mirror, contact=self.contact)
        status = mirror.read_status(self.wiki, self.date)
        files = multistream_files(status, self.wiki, self.date)

        for number, dump_file in enumerate(files):
            destination = self.output_dir() / dump_file.name
            # Files appear only after verification, so one that exists was verified before.
            if destination.exists() and destination.stat().st_size == dump_file.size:
                continue
            self.report_progress(f"downloading {dump_file.name} ({number + 1}/{len(files)})", number / len(files))
            download_file(mirror, self.wiki, self.date, dump_file, destination, on_progress=self.report_progress)

        write_json(self.output().path, {
            "wiki": self.wiki,
            "date": self.date,
            "mirror": mirror.base,
            "files": [{"name": f.name, "size": f.size, "sha1": f.sha1, "index": f.is_index} for f in files],
        })
