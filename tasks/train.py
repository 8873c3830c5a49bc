"""Train the character LSTM on the training shards."""

from __future__ import annotations

import dataclasses
import shutil

import luigi
import torch
from luigi.util import inherits

from pipeline import train
from pipeline.articles import iter_texts
from pipeline.shards import MANIFEST, shard_paths
from pipeline.storage import atomic_path, read_json, write_json
from pipeline.vocabulary import Vocabulary
from tasks.base import StageTask
from tasks.shards import WriteShards
from tasks.vocabulary import BuildVocabulary


@inherits(BuildVocabulary)
class TrainModel(StageTask):
    """Train until max_steps or max_minutes, resuming from the last checkpoint after a crash.

    Output: a folder with model.pt (the final checkpoint) and training.json.
    While training, checkpoints and the encoded texts live in a work folder
    beside it, `.{name}.work`, which is deleted once the output is in place.
    """

    stage = "model"
    embedding_size = luigi.IntParameter(default=64, description="size of the character embedding")
    hidden_size = luigi.IntParameter(default=512, description="LSTM hidden size")
    layers = luigi.IntParameter(default=3, description="number of stacked LSTM layers")
    dropout = luigi.FloatParameter(default=0.1, description="dropout on embeddings, between layers and before the head")
    batch_size = luigi.IntParameter(default=64, description="sequences per step")
    sequence_length = luigi.IntParameter(default=256, description="characters per training sequence")
    learning_rate = luigi.FloatParameter(default=2e-3, description="AdamW learning rate")
    weight_decay = luigi.FloatParameter(default=0.01, description="AdamW weight decay")
    gradient_clip = luigi.FloatParameter(default=1.0, description="maximum gradient norm")
    max_steps = luigi.IntParameter(default=20000, description="training steps")
    max_minutes = luigi.OptionalFloatParameter(default=None, description="stop after this many minutes of training (none: no limit)")
    eval_interval = luigi.IntParameter(default=500, description="steps between validation runs")
    eval_characters = luigi.IntParameter(default=200000, description="validation characters evaluated each time")
    checkpoint_interval = luigi.IntParameter(default=500, description="steps between checkpoints")
    seed = luigi.IntParameter(default=1234, description="random seed of initialisation, batches and dropout")
    threads = luigi.IntParameter(default=0, significant=False, description="CPU threads for torch (0: all available cores)")

    def requires(self):
        return {"shards": self.clone(WriteShards), "vocabulary": self.clone(BuildVocabulary)}

    def upstream(self):
        return self.clone(BuildVocabulary)

    def training_settings(self) -> train.TrainingSettings:
        return train.TrainingSettings(
            embedding_size=self.embedding_size, hidden_size=self.hidden_size, layers=self.layers,
            dropout=self.dropout, batch_size=self.batch_size, sequence_length=self.sequence_length,
            learning_rate=self.learning_rate, weight_decay=self.weight_decay, gradient_clip=self.gradient_clip,
            max_steps=self.max_steps, max_minutes=self.max_minutes, eval_interval=self.eval_interval,
            eval_characters=self.eval_characters, checkpoint_interval=self.checkpoint_interval, seed=self.seed,
        )

    def stage_settings(self):
        return {"training": dataclasses.asdict(self.training_settings())}

    def stage_name(self):
        return f"lstm-{self.layers}x{self.hidden_size}"

    def output(self):
        return luigi.LocalTarget(self.output_dir())

    def work_dir(self):
        final = self.output_dir()
        return final.with_name(f".{final.name}.work")

    def run(self):
        settings = self.training_settings()
        settings.check()
        work_dir = self.work_dir()
        work_dir.mkdir(parents=True, exist_ok=True)
        vocabulary = Vocabulary.load(self.input()["vocabulary"].path)
        threads = train.configure_threads(self.threads or None)

        tokens = {}
        shard_dir = self.requires()["shards"].output_dir()
        manifest = read_json(shard_dir / MANIFEST)
        for split in ("train", "validation"):
            path = work_dir / f"tokens-{split}.bin"
            if not path.exists():
                self.report_progress(f"encoding the {split} split")
                train.encode_texts(iter_texts(shard_paths(shard_dir, manifest, split)), vocabulary, path)
            tokens[split] = train.open_tokens(path)

        checkpoint = train.train(settings, vocabulary, tokens["train"], tokens["validation"], work_dir,
                                 on_progress=self.report_progress)

        history = checkpoint["history"]
        elapsed = checkpoint["elapsed_seconds"]
        summary = {
            "steps": checkpoint["step"],
            "stopped_by": checkpoint["stopped_by"],
            "parameters": checkpoint["parameters"],
            "device": checkpoint["device"],
            "threads": threads if checkpoint["device"] == "cpu" else None,
            "training_seconds": elapsed,
            "characters_per_second": checkpoint["step"] * settings.batch_size * settings.sequence_length / max(elapsed, 1e-9),
            "train_bpc": history[-1]["train_bpc"],
            "val_bpc": history[-1]["validation_bpc"],
            "torch": torch.__version__,
            "settings": self.settings(),
        }
        with atomic_path(self.output().path, directory=True) as folder:
            shutil.copyfile(work_dir / train.CHECKPOINT, folder / "model.pt")
            write_json(folder / "training.json", summary)
        shutil.rmtree(work_dir, ignore_errors=True)
