"""Encode the training and validation shards into token files for training."""

from __future__ import annotations

import luigi
from luigi.util import requires

from pipeline.articles import iter_texts
from pipeline.shards import MANIFEST, shard_paths
from pipeline.storage import atomic_path, file_digest, read_json, write_json
from pipeline.tokens import encode_texts, token_dtype
from pipeline.vocabulary import Vocabulary
from tasks.base import StageTask
from tasks.vocabulary import BuildVocabulary

SPLITS = ("train", "validation")


@requires(BuildVocabulary)
class EncodeTokens(StageTask):
    """Turn the train and validation shards into flat token files that training memory-maps.

    Output: a folder with train.bin, validation.bin (vocabulary ids, articles
    joined by a blank line) and tokens.json (their lengths, type and sha256).
    """

    stage = "tokens"

    def upstream(self):
        return self.requires()

    def output(self):
        return self.folder_target(self.output_dir())

    def produce(self):
        vocabulary = Vocabulary.load(self.input().path)
        shard_task = self.requires().requires()
        self.fetch_targets(shard_task.output())
        shard_dir = shard_task.output_dir()
        manifest = read_json(shard_dir / MANIFEST)
        lengths = {}
        with atomic_path(self.output().path, directory=True) as folder:
            for split in SPLITS:
                self.report_progress(f"encoding the {split} split")
                lengths[split] = encode_texts(iter_texts(shard_paths(shard_dir, manifest, split)), vocabulary,
                                              folder / f"{split}.bin")
            # The digests let training find a model trained on the same tokens for another dump date.
            digests = {split: file_digest(folder / f"{split}.bin", "sha256") for split in SPLITS}
            write_json(folder / "tokens.json", {"tokens": lengths, "dtype": str(token_dtype(vocabulary.size)),
                                                "sha256": digests, "vocabulary_fingerprint": vocabulary.fingerprint,
                                                "settings": self.settings()})
