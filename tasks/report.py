"""Sample from the trained model and write the build's report."""

from __future__ import annotations

import logging
import os
import shlex
from pathlib import Path

import luigi
import torch
from luigi.util import inherits

from pipeline import report
from pipeline.dump import DumpFile
from pipeline.model import load_model
from pipeline.sample import sample_grid
from pipeline.shards import MANIFEST
from pipeline.storage import atomic_path, read_json
from pipeline.tokens import open_tokens
from pipeline.train import configure_threads, unigram_bpc
from pipeline.vocabulary import Vocabulary
from tasks.base import StageTask
from tasks.dump import DownloadDump
from tasks.shards import WriteShards
from tasks.text import ExtractText
from tasks.tokens import EncodeTokens
from tasks.train import TrainModel
from tasks.vocabulary import BuildVocabulary

log = logging.getLogger(__name__)


def configured_preset() -> str:
    """Return the preset that LUIGI_CONFIG_PATH names (configs/cpu.cfg gives "cpu"), or "luigi.cfg" without one."""
    path = Path(os.environ.get("LUIGI_CONFIG_PATH", ""))
    if path.suffix == ".cfg" and path.parent.name == "configs":
        return path.stem
    return str(path) if path.name else "luigi.cfg"

DEFAULT_PROMPTS = ["The ", "In 1990, ", "History\n"]


@inherits(TrainModel)
class WriteReport(StageTask):
    """Write report.html, report.md, metrics.json and loss.png for one trained model."""

    stage = "report"
    prompts = luigi.ListParameter(default=DEFAULT_PROMPTS, description="texts that start the samples")
    temperatures = luigi.ListParameter(default=[0.5, 0.8, 1.0], description="sampling temperatures")
    sample_length = luigi.IntParameter(default=400, description="characters generated per sample")
    sample_seed = luigi.IntParameter(default=7, description="random seed of the first sample")

    def requires(self):
        return {"model": self.clone(TrainModel)}

    def upstream(self):
        return self.clone(TrainModel)

    def stage_settings(self):
        return {"prompts": list(self.prompts), "temperatures": list(self.temperatures),
                "sample_length": self.sample_length, "sample_seed": self.sample_seed}

    def output(self):
        return self.folder_target(self.output_dir())

    def produce(self):
        model_task = self.clone(TrainModel)
        vocabulary_task = self.clone(BuildVocabulary)
        tokens_task = self.clone(EncodeTokens)
        shard_task = self.clone(WriteShards)
        text_task = self.clone(ExtractText)
        dump_task = self.clone(DownloadDump)
        self.fetch_targets([vocabulary_task.output(), text_task.output(), dump_task.output()])
        self.data.fetch(shard_task.output_dir() / MANIFEST, tokens_task.output_dir() / "validation.bin")

        training = read_json(model_task.output_dir() / "training.json")
        vocabulary_document = read_json(vocabulary_task.output().path)
        vocabulary = Vocabulary.load(vocabulary_task.output().path)
        manifest = read_json(shard_task.output_dir() / MANIFEST)
        extraction = read_json(text_task.output_dir() / "stats.json")
        dump_listing = read_json(dump_task.output().path)
        configure_threads(self.threads or None)

        self.report_progress("sampling")
        model, checkpoint = load_model(model_task.output_dir() / "model.pt")
        samples = sample_grid(model, vocabulary, list(self.prompts), [float(t) for t in self.temperatures],
                              self.sample_length, self.sample_seed)

        # The baseline is scored on the same validation characters as the model.
        validation_tokens = open_tokens(tokens_task.output_dir() / "validation.bin", vocabulary.size)
        baseline = unigram_bpc(vocabulary_document["counts"], vocabulary, validation_tokens, self.eval_characters)

        with atomic_path(self.output().path, directory=True) as folder:

            metrics = {
                "wiki": self.wiki,
                "date": self.date,
                "pages": extraction["pages"],
                "skipped": extraction["skipped"],
                "failed": extraction["failed"],
                "source": self.source,
                "dump_files": [{"name": entry["name"], "size": entry["size"],
                                "checksum": ":".join(DumpFile.from_listing(entry).checksum)}
                               for entry in dump_listing["files"]],
                "articles": {split: totals["articles"] for split, totals in manifest["splits"].items()},
                "characters": {split: totals["characters"] for split, totals in manifest["splits"].items()},
                "text_bytes": {split: totals["text_bytes"] for split, totals in manifest["splits"].items()},
                "extraction_seconds": extraction["seconds"],
                "pages_per_second": extraction["pages"] / max(extraction["seconds"], 1e-9),
                "residues": extraction["residues"],
                "rarest_characters": [[character, vocabulary_document["counts"][character]]
                                      for character in vocabulary_document["characters"][-10:]],
                "vocabulary_size": vocabulary_document["size"],
                "vocabulary_coverage": vocabulary_document["coverage"],
                "preset": configured_preset(),
                "cell": self.cell,
                "layers": self.layers,
                "embedding_size": self.embedding_size,
                "hidden_size": self.hidden_size,
                "parameters": training["parameters"],
                "steps": training["steps"],
                "stopped_by": training["stopped_by"],
                "training_seconds": training["training_seconds"],
                "characters_per_second": training["characters_per_second"],
                "model_reused_from": training.get("reused_from"),
                "device": training["device"],
                "train_bpc": training["train_bpc"],
                "val_bpc": training["val_bpc"],
                "unigram_bpc": baseline,
                "torch": torch.__version__,
                "command": self.reproduce_command(),
                "paths": {"model": self.data.location(model_task.output_dir()),
                          "shards": self.data.location(shard_task.output_dir())},
            }
            report.write_report(folder, metrics, checkpoint["history"], samples)

    def publish_output(self) -> None:
        super().publish_output()
        log.info("Report written: %s", self.data.location(self.output_dir() / "report.html"))

    def reproduce_command(self) -> str:
        """Return the luigi command line that rebuilds this report from the same dump."""
        words = ["luigi", "--module", "tasks", "TrainWikiModel", "--local-scheduler", "--mirror", self.mirror]
        for name, parameter in self.get_params():
            if not parameter.significant:
                continue
            value = getattr(self, name)
            if value is None:
                continue
            words += [f"--{name.replace('_', '-')}", parameter.serialize(value)]
        return " ".join(shlex.quote(word) for word in words)
