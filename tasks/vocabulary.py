"""Count characters over the training split and choose the vocabulary."""

from __future__ import annotations

import luigi
from luigi.util import requires

from pipeline import vocabulary
from pipeline.articles import iter_texts
from pipeline.shards import MANIFEST, shard_paths
from pipeline.storage import read_json, write_json
from tasks.base import StageTask
from tasks.shards import WriteShards


@requires(WriteShards)
class BuildVocabulary(StageTask):
    """Keep the most frequent characters covering `coverage` of the training text.

    Output: vocabulary.json (kept characters in id order, all counts, the
    coverage reached).
    """

    stage = "vocabulary"
    coverage = luigi.FloatParameter(default=0.9999, description="share of training characters the vocabulary must cover")

    def upstream(self):
        return self.requires()

    def stage_settings(self):
        return {"coverage": self.coverage}

    def stage_name(self):
        return f"coverage{self.coverage:g}"

    def output(self):
        return self.file_target(self.output_dir() / "vocabulary.json")

    def produce(self):
        shard_dir = self.requires().output_dir()
        manifest = read_json(shard_dir / MANIFEST)
        self.report_progress("counting characters in the training split")
        counts = vocabulary.count_characters(iter_texts(shard_paths(shard_dir, manifest, "train")))
        _, document = vocabulary.build_vocabulary(counts, self.coverage)
        write_json(self.output().path, {**document, "settings": self.settings()})
