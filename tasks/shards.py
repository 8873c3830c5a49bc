"""Write the articles as train, validation and test Parquet shards."""

from __future__ import annotations

import luigi
from luigi.util import requires

from pipeline import shards
from pipeline.articles import read_articles
from pipeline.storage import atomic_path, read_json, write_json
from tasks.base import StageTask
from tasks.text import ExtractText


@requires(ExtractText)
class WriteShards(StageTask):
    """Assign each article to a split by its page id and write bounded zstd Parquet shards.

    Output: a folder of `{split}-NNNNN-of-NNNNN.parquet` files and
    _manifest.json (counts, bytes, sha256 per shard, settings, sources).
    """

    stage = "shards"
    validation_fraction = luigi.FloatParameter(default=0.05, description="share of pages in the validation split")
    test_fraction = luigi.FloatParameter(default=0.05, description="share of pages in the test split")
    max_shard_mb = luigi.FloatParameter(default=256.0, description="most UTF-8 text per shard, in MB (10^6 bytes)")

    def upstream(self):
        return self.requires()

    def stage_settings(self):
        return {"validation_fraction": self.validation_fraction, "test_fraction": self.test_fraction,
                "max_shard_mb": self.max_shard_mb}

    def stage_name(self):
        return f"val{self.validation_fraction:g}-test{self.test_fraction:g}-{self.max_shard_mb:g}MB"

    def output(self):
        return self.folder_target(self.output_dir())

    def produce(self):
        shards.check_fractions(self.validation_fraction, self.test_fraction)
        extraction = read_json(self.input().path)
        dump_listing = self.requires().requires().output()
        self.fetch_targets(dump_listing)
        dump = read_json(dump_listing.path)
        part_paths = self.requires().part_paths()
        self.data.fetch(*part_paths)
        metadata = {"wiki": self.wiki, "date": self.date}

        with atomic_path(self.output().path, directory=True) as folder:
            self.report_progress("writing shards")
            manifest = shards.write_shards(
                read_articles(part_paths),
                folder,
                validation_fraction=self.validation_fraction,
                test_fraction=self.test_fraction,
                max_shard_bytes=int(self.max_shard_mb * 1e6),
                metadata=metadata,
            )
            write_json(folder / shards.MANIFEST, {
                "wiki": self.wiki,
                "date": self.date,
                **manifest,
                "settings": self.settings(),
                "source": {"dump_files": dump["files"], "extraction": extraction},
            })
