"""Train the character model on the encoded training split."""

from __future__ import annotations

import dataclasses
import logging
import shutil
import subprocess
import sys
from pathlib import Path
from typing import Optional

import luigi
import torch
from luigi.util import inherits

from pipeline import train
from pipeline.model import load_checkpoint
from pipeline.storage import atomic_path, read_json, write_json
from pipeline.tokens import open_tokens
from pipeline.vocabulary import Vocabulary
from tasks.base import StageTask
from tasks.tokens import EncodeTokens
from tasks.vocabulary import BuildVocabulary

log = logging.getLogger(__name__)


@inherits(EncodeTokens)
class TrainModel(StageTask):
    """Train until max_steps or max_minutes, resuming from the last checkpoint after a crash or SIGTERM.

    Output: a folder with model.pt (the final checkpoint) and training.json.
    While training, checkpoints live in a work folder beside it,
    `.{name}.work`, which is deleted once the output is in place. With
    nproc_per_node above 1, training runs under torchrun with
    DistributedDataParallel, one process per GPU (or per group of CPU cores).
    """

    stage = "model"
    cell = luigi.ChoiceParameter(default="lstm", choices=["lstm", "gru"], description="recurrent cell")
    embedding_size = luigi.IntParameter(default=64, description="size of the character embedding")
    hidden_size = luigi.IntParameter(default=512, description="hidden size of each recurrent layer")
    layers = luigi.IntParameter(default=3, description="number of stacked recurrent layers")
    dropout = luigi.FloatParameter(default=0.1, description="dropout on embeddings, between layers and before the head")
    batch_size = luigi.IntParameter(default=64, description="contiguous streams per process and step")
    sequence_length = luigi.IntParameter(default=256, description="characters per step and stream (backpropagation length)")
    learning_rate = luigi.FloatParameter(default=2e-3, description="AdamW peak learning rate")
    weight_decay = luigi.FloatParameter(default=0.01, description="AdamW weight decay")
    gradient_clip = luigi.FloatParameter(default=1.0, description="maximum gradient norm")
    schedule = luigi.ChoiceParameter(default="cosine", choices=list(train.SCHEDULES),
                                     description="learning rate after warm-up: cosine, step or constant")
    warmup_steps = luigi.IntParameter(default=200, description="steps of linear learning rate warm-up")
    final_learning_rate_ratio = luigi.FloatParameter(default=0.1, description="final learning rate as a share of the peak")
    precision = luigi.ChoiceParameter(default="auto", choices=list(train.PRECISIONS),
                                      description="auto (bf16 autocast on CUDA, fp32 on the CPU), fp32 or bf16")
    max_steps = luigi.IntParameter(default=20000, description="training steps")
    max_minutes = luigi.OptionalFloatParameter(default=None, description="stop after this many minutes of training (none: no limit)")
    eval_interval = luigi.IntParameter(default=500, description="steps between validation runs")
    eval_characters = luigi.IntParameter(default=200000, description="validation characters evaluated each time")
    checkpoint_interval = luigi.IntParameter(default=500, description="steps between checkpoints")
    max_skipped_steps = luigi.IntParameter(default=10, description="non-finite steps in a row that stop training")
    seed = luigi.IntParameter(default=1234, description="random seed of initialisation and dropout")
    nproc_per_node = luigi.IntParameter(default=1, description="training processes under torchrun (1: train in the worker)")
    checkpoint_upload_seconds = luigi.FloatParameter(
        default=60.0, significant=False,
        description="with a data root on object storage, seconds between checks for a new checkpoint to upload",
    )
    threads = luigi.IntParameter(default=0, significant=False,
                                 description="CPU threads for torch per process (0: the available cores divided among processes)")

    @property
    def resources(self):
        # One unit of the "gpu" resource per training process, so that workers sharing a scheduler never start
        # more GPU trainings than [resources] gpu in luigid's configuration allows.
        return {"gpu": self.nproc_per_node} if torch.cuda.is_available() else {}

    def requires(self):
        return {"tokens": self.clone(EncodeTokens), "vocabulary": self.clone(BuildVocabulary)}

    def upstream(self):
        return self.clone(EncodeTokens)

    def training_settings(self) -> train.TrainingSettings:
        names = [field.name for field in dataclasses.fields(train.TrainingSettings)]
        return train.TrainingSettings(**{name: getattr(self, name) for name in names})

    def stage_settings(self):
        return {"training": dataclasses.asdict(self.training_settings()), "nproc_per_node": self.nproc_per_node}

    def stage_name(self):
        return f"{self.cell}-{self.layers}x{self.hidden_size}"

    def output(self):
        return self.folder_target(self.output_dir())

    def work_dir(self):
        final = self.output_dir()
        return final.with_name(f".{final.name}.work")

    def produce(self):
        settings = self.training_settings()
        settings.check()
        if self.nproc_per_node < 1:
            raise ValueError(f"Invalid nproc_per_node {self.nproc_per_node}: expected 1 or more.")

        # A later dump date whose tokens did not change gives the same model: copy it instead of training.
        key = self.reuse_key()
        earlier = self.earlier_model(key) if key else None
        if earlier is not None:
            self.reuse_model(earlier, key)
            return

        work_dir = self.work_dir()
        work_dir.mkdir(parents=True, exist_ok=True)
        vocabulary_path = self.input()["vocabulary"].path
        tokens_dir = self.requires()["tokens"].output_dir()

        # With object storage the checkpoint is uploaded as it changes, so that any machine can resume the training.
        checkpoint_path = work_dir / train.CHECKPOINT
        if self.data.remote and not checkpoint_path.exists() and self.data.exists(checkpoint_path):
            self.data.fetch(checkpoint_path)
        with self.data.uploading_changes(checkpoint_path, self.checkpoint_upload_seconds):
            checkpoint, threads = self.run_training(settings, work_dir, vocabulary_path, tokens_dir)
        summary = {**self.summary(checkpoint, settings, threads), "reuse_key": key}

        with atomic_path(self.output().path, directory=True) as folder:
            shutil.copyfile(checkpoint_path, folder / "model.pt")
            write_json(folder / "training.json", summary)
        self.data.remove_tree(work_dir)

    def reuse_key(self) -> Optional[dict]:
        """Return what fixes the trained model: the tokens' sha256, the vocabulary and the training settings.

        None for token files written before tokens.json listed their sha256.
        """
        tokens = read_json(self.requires()["tokens"].output_dir() / "tokens.json")
        if "sha256" not in tokens:
            return None
        return {"tokens_sha256": tokens["sha256"], "vocabulary_fingerprint": tokens["vocabulary_fingerprint"],
                "training": self.stage_settings()}

    def earlier_model(self, key: dict) -> Optional[Path]:
        """Return the model folder of another dump date of this wiki trained on the same tokens the same way."""
        for summary_path in self.data.glob(f"{self.wiki}/*/{self.stage}/{self.stage_name()}-*/training.json"):
            if summary_path.parent == self.output_dir():
                continue
            self.data.fetch(summary_path)
            if read_json(summary_path).get("reuse_key") == key and self.data.exists(summary_path.parent / "model.pt"):
                self.data.fetch(summary_path.parent / "model.pt")
                return summary_path.parent
        return None

    def reuse_model(self, source: Path, key: dict) -> None:
        """Write this stage's output from the model in `source`, trained for another dump date."""
        location = self.data.location(source)
        self.report_progress(f"copying the model trained on the same tokens from {location}")
        summary = read_json(source / "training.json")
        with atomic_path(self.output().path, directory=True) as folder:
            shutil.copyfile(source / "model.pt", folder / "model.pt")
            write_json(folder / "training.json", {**summary, "settings": self.settings(), "reuse_key": key,
                                                  "reused_from": location})
        log.info("Reused %s: trained on the same tokens with the same settings, nothing trained", location)

    def run_training(self, settings: train.TrainingSettings, work_dir: Path, vocabulary_path: str,
              tokens_dir: Path) -> tuple[dict, Optional[int]]:
        """Train in this process or under torchrun; return the final checkpoint and the threads per process."""
        if self.nproc_per_node == 1:
            vocabulary = Vocabulary.load(vocabulary_path)
            threads = train.configure_threads(self.threads or None)
            checkpoint = train.train(settings, vocabulary, open_tokens(tokens_dir / "train.bin", vocabulary.size),
                                     open_tokens(tokens_dir / "validation.bin", vocabulary.size), work_dir,
                                     on_progress=self.report_progress)
        else:
            threads = self.threads or None
            self.report_progress(f"training with torchrun, {self.nproc_per_node} processes")
            write_json(work_dir / "settings.json", dataclasses.asdict(settings))
            command = [sys.executable, "-m", "torch.distributed.run", "--standalone",
                       f"--nproc-per-node={self.nproc_per_node}", "-m", "pipeline.train",
                       "--tokens", str(tokens_dir), "--vocabulary", vocabulary_path,
                       "--settings", str(work_dir / "settings.json"), "--work-dir", str(work_dir),
                       "--threads", str(self.threads)]
            completed = subprocess.run(command, check=False)
            if completed.returncode != 0:
                raise RuntimeError(f"torchrun training exited with status {completed.returncode}; its log is above. "
                                   f"Run again to resume from the last checkpoint in {work_dir}.")
            checkpoint = load_checkpoint(work_dir / train.CHECKPOINT)
        return checkpoint, threads

    def summary(self, checkpoint: dict, settings: train.TrainingSettings, threads: Optional[int]) -> dict:
        """Return training.json: steps, rates and bits per character of the final checkpoint."""
        history = checkpoint["history"]
        elapsed = checkpoint["elapsed_seconds"]
        return {
            "steps": checkpoint["step"],
            "stopped_by": checkpoint["stopped_by"],
            "parameters": checkpoint["parameters"],
            "device": checkpoint["device"],
            "processes": self.nproc_per_node,
            "threads": threads if checkpoint["device"] == "cpu" else None,
            "training_seconds": elapsed,
            "characters_per_second": checkpoint["step"] * settings.batch_size * settings.sequence_length
            * self.nproc_per_node / max(elapsed, 1e-9),
            "train_bpc": history[-1]["train_bpc"],
            "val_bpc": history[-1]["validation_bpc"],
            "torch": torch.__version__,
            "settings": self.settings(),
        }
