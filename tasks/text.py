"""Extract the plain text of every article of a dump."""

from __future__ import annotations

import luigi
from luigi.util import requires

from pipeline import extract
from pipeline.articles import ArticleWriter
from pipeline.storage import atomic_path, read_json, write_json
from pipeline.wikitext import TEXT_POLICY_VERSION
from tasks.base import StageTask
from tasks.dump import DownloadDump


@requires(DownloadDump)
class ExtractText(StageTask):
    """Turn the dump's pages into articles with plain text, in dump order.

    Output: a folder with articles.parquet (the public article schema) and
    stats.json (pages read, articles, pages skipped and failed by reason).
    """

    stage = "text"
    processes = luigi.IntParameter(default=0, significant=False,
                                   description="extraction worker processes (0: all available cores); the output is the same for any number")
    dump_templates = luigi.BoolParameter(default=True, parsing=luigi.BoolParameter.EXPLICIT_PARSING,
                                         description="expand the simple templates that the dump itself defines")
    keep_disambiguation = luigi.BoolParameter(default=False, parsing=luigi.BoolParameter.EXPLICIT_PARSING,
                                              description="keep disambiguation pages as articles")

    def upstream(self):
        return self.requires()

    def stage_settings(self):
        return {"text_policy": TEXT_POLICY_VERSION, "dump_templates": self.dump_templates,
                "keep_disambiguation": self.keep_disambiguation}

    def stage_name(self):
        return f"policy{TEXT_POLICY_VERSION}"

    def output(self):
        return luigi.LocalTarget(self.output_dir())

    def run(self):
        listing = read_json(self.input().path)
        dump_dir = self.requires().output_dir()
        paths = [dump_dir / entry["name"] for entry in listing["files"] if not entry["index"]]
        stats = extract.ExtractionStats()
        metadata = {"wiki": self.wiki, "date": self.date, "text_policy": str(TEXT_POLICY_VERSION)}

        processes = self.processes or extract.available_cores()
        templates = None
        if self.dump_templates:
            self.report_progress("collecting the dump's templates")
            templates = extract.collect_templates(paths, processes)

        with atomic_path(self.output().path, directory=True) as folder:
            articles = extract.iter_articles(paths, stats, default_site_base=f"https://{self.lang}.wikipedia.org/wiki/",
                                             on_progress=self.report_progress, processes=processes,
                                             templates=templates, keep_disambiguation=self.keep_disambiguation)
            with ArticleWriter(folder / "articles.parquet", metadata) as writer:
                for article in articles:
                    writer.write(article)
            write_json(folder / "stats.json", {**stats.to_dict(), "settings": self.settings()})
