"""Extract the plain text of every article of a dump, one task per dump file."""

from __future__ import annotations

import logging
import time
from pathlib import Path
from typing import Optional

import luigi

from pipeline import extract
from pipeline.articles import ArticleWriter, copy_articles
from pipeline.dump import DumpFile
from pipeline.dump_templates import DumpTemplates
from pipeline.storage import atomic_path, file_digest, read_json, write_json
from pipeline.wikitext import TEXT_POLICY_VERSION
from tasks.base import StageTask
from tasks.dump import DownloadDump

log = logging.getLogger(__name__)


def part_name(file_name: str) -> str:
    """Name a dump file's extracted part: enwiki-20160501-pages-articles-multistream1.xml-p1p41242.bz2
    becomes enwiki-20160501-pages-articles-multistream1-p1p41242."""
    return file_name.removesuffix(".bz2").replace(".xml", "")


def dump_paths(dump: DownloadDump) -> list:
    """Return the paths of a downloaded run's dump files (not its indexes), in page order."""
    listing = read_json(dump.output().path)
    return [dump.output_dir() / entry["name"] for entry in listing["files"] if not entry["index"]]


class TextSettings(StageTask):
    """The settings shared by the text stage's tasks."""

    stage = "text"
    processes = luigi.IntParameter(default=0, significant=False,
                                   description="extraction worker processes per task (0: all available cores); "
                                               "the output is the same for any number")
    dump_templates = luigi.BoolParameter(default=True, parsing=luigi.BoolParameter.EXPLICIT_PARSING,
                                         description="expand the simple templates that the dump itself defines")
    keep_disambiguation = luigi.BoolParameter(default=False, parsing=luigi.BoolParameter.EXPLICIT_PARSING,
                                              description="keep disambiguation pages as articles")

    def worker_processes(self) -> int:
        return self.processes or extract.available_cores()


class CollectTemplates(TextSettings):
    """Collect the simple templates and template redirects that the dump defines, from all its files.

    Output: a folder with templates.json. Every part's extraction reads it,
    because a template page can be in any part.
    """

    def requires(self):
        return self.clone(DownloadDump)

    def upstream(self):
        return self.requires()

    def stage_settings(self):
        return {"text_policy": TEXT_POLICY_VERSION}

    def stage_name(self):
        return f"templates-policy{TEXT_POLICY_VERSION}"

    def output(self):
        return self.file_target(self.output_dir() / "templates.json")

    def produce(self):
        paths = dump_paths(self.requires())
        self.data.fetch(*paths)
        self.report_progress("collecting the dump's templates")
        templates = extract.collect_templates(paths, self.worker_processes())
        write_json(self.output().path, templates.to_dict())


class ExtractText(TextSettings):
    """Turn the dump's pages into articles with plain text, one ExtractDumpFile task per dump file.

    Output: a folder with one Parquet file per dump file (the public article
    schema, in dump order) and stats.json, written last: pages read, articles,
    pages skipped and failed by reason, and the list of parts in page order.
    """

    def requires(self):
        return self.clone(DownloadDump)

    def upstream(self):
        return self.requires()

    def stage_settings(self):
        return {"text_policy": TEXT_POLICY_VERSION, "dump_templates": self.dump_templates,
                "keep_disambiguation": self.keep_disambiguation}

    def stage_name(self):
        return f"policy{TEXT_POLICY_VERSION}"

    def output(self):
        return self.file_target(self.output_dir() / "stats.json")

    def complete(self):
        if not super().complete():
            return False
        self.fetch_targets(self.output())
        return all(self.data.exists(path) for path in self.part_paths())

    def part_paths(self) -> list:
        """Return the paths of the extracted parts, in page order; valid once the task is complete."""
        return [self.output_dir() / part["file"] for part in read_json(self.output().path)["parts"]]

    def produce(self):
        dump_files = [path.name for path in dump_paths(self.requires())]
        self.report_progress(f"extracting {len(dump_files)} dump files")

        # Luigi runs these first, in parallel as far as its workers allow, then re-enters run() from the top.
        parts = yield [self.clone(ExtractDumpFile, file_name=name) for name in dump_files]

        self.report_progress("checking that the parts do not overlap")
        self.fetch_targets(parts)
        part_stats = [read_json(target.path) for target in parts]
        part_paths = [self.output_dir() / counts["file"] for counts in part_stats]
        self.data.fetch(*part_paths)
        extract.check_disjoint(part_paths)
        stats = extract.ExtractionStats()
        for counts in part_stats:
            stats.merge(extract.ExtractionStats.from_dict(counts))
        write_json(self.output().path, {
            **stats.to_dict(),
            "seconds": round(sum(counts["seconds"] for counts in part_stats), 3),
            "parts": [{"file": counts["file"], "dump_file": counts["dump_file"], "pages": counts["pages"],
                       "articles": counts["articles"], "seconds": counts["seconds"]} for counts in part_stats],
            "settings": self.settings(),
        })


class ExtractDumpFile(TextSettings):
    """Extract the articles of one dump file into a Parquet part of the text stage's folder.

    Output: `{part}.parquet` and, written last, `{part}.stats.json` in
    ExtractText's folder, where `{part}` is part_name(file_name).
    """

    file_name = luigi.Parameter(description="the dump file to extract, as the run's file list names it")

    def requires(self):
        required = {"dump": self.clone(DownloadDump)}
        if self.dump_templates:
            required["templates"] = self.clone(CollectTemplates)
        return required

    def output_dir(self):
        return self.clone(ExtractText).output_dir()

    def output(self):
        return self.file_target(self.output_dir() / f"{part_name(self.file_name)}.stats.json")

    def part_path(self) -> Path:
        return self.output_dir() / f"{part_name(self.file_name)}.parquet"

    def companion_files(self):
        return [self.part_path()]

    def reuse_key(self) -> dict:
        """Return what fixes this part's articles: the dump file's checksum, the text settings and the templates."""
        listing = read_json(self.requires()["dump"].output().path)
        entry = next(entry for entry in listing["files"] if entry["name"] == self.file_name)
        templates = file_digest(self.input()["templates"].path) if self.dump_templates else ""
        return {"dump_checksum": ":".join(DumpFile.from_listing(entry).checksum), "templates_sha256": templates,
                "text_settings": self.clone(ExtractText).stage_settings()}

    def earlier_part(self, key: dict) -> Optional[tuple[Path, dict]]:
        """Return (Parquet part, its stats) of another run of this wiki extracted from the same bytes the same way."""
        pattern = f"{self.wiki}/*/{self.stage}/policy{TEXT_POLICY_VERSION}-*/*.stats.json"
        for stats_path in self.data.glob(pattern):
            if stats_path.parent == self.output_dir():
                continue
            self.data.fetch(stats_path)
            counts = read_json(stats_path)
            part = stats_path.parent / counts["file"]
            if counts.get("reuse_key") == key and self.data.exists(part):
                self.data.fetch(part)
                return part, counts
        return None

    def produce(self):
        key = self.reuse_key()
        metadata = {"wiki": self.wiki, "date": self.date, "dump_file": self.file_name,
                    "text_policy": str(TEXT_POLICY_VERSION)}
        part = self.part_path().name
        started = time.monotonic()

        # A later dump date whose file did not change gives the same articles: copy them instead of extracting.
        earlier = self.earlier_part(key)
        if earlier is not None:
            source, counts = earlier
            self.report_progress(f"copying the articles of an identical file from {self.data.location(source)}")
            with atomic_path(self.output_dir() / part) as temporary:
                copy_articles(source, temporary, metadata)
            log.info("Reused %s for %s: same bytes and settings, nothing extracted", self.data.location(source),
                     self.file_name)
            write_json(self.output().path, {**counts, "file": part, "dump_file": self.file_name,
                                            "seconds": round(time.monotonic() - started, 3),
                                            "reused_from": self.data.location(source)})
            return

        templates = None
        if self.dump_templates:
            templates = DumpTemplates.from_dict(read_json(self.input()["templates"].path))
        dump_path = self.requires()["dump"].output_dir() / self.file_name
        self.data.fetch(dump_path)
        stats = extract.ExtractionStats()
        with atomic_path(self.output_dir() / part) as temporary:
            articles = extract.iter_articles(
                [dump_path], stats,
                default_site_base=f"https://{self.lang}.wikipedia.org/wiki/", on_progress=self.report_progress,
                processes=self.worker_processes(), templates=templates, keep_disambiguation=self.keep_disambiguation)
            with ArticleWriter(temporary, metadata) as writer:
                for article in articles:
                    writer.write(article)
        write_json(self.output().path, {"file": part, "dump_file": self.file_name,
                                        "seconds": round(time.monotonic() - started, 3), **stats.to_dict(),
                                        "reuse_key": key})
