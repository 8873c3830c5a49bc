"""The base class of stage tasks: the dump's identity, output paths and progress."""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any, Optional

import luigi
from luigi.task import flatten

from pipeline.dump import MULTISTREAM, SOURCES, check_date, wiki_name
from pipeline.storage import settings_digest

log = logging.getLogger(__name__)


class StageTask(luigi.Task):
    """A stage of the pipeline for one wiki and one concrete dump date.

    Output paths are `{data_root}/{wiki}/{date}/{stage}/{name}-{hash}`, where
    the hash covers the stage's own settings and the path of the stage it
    reads, so any setting that changes bytes anywhere upstream gives a new
    folder. A stage is complete when its output exists and every stage it
    requires is complete: deleting one stage's output reruns it and every
    stage after it.
    """

    lang = luigi.Parameter(description="Wikipedia language code, such as en or de")
    date = luigi.Parameter(description="dump date, YYYYMMDD")
    data_root = luigi.Parameter(default="data", description="folder for every output")
    mirror = luigi.Parameter(
        default="https://dumps.wikimedia.org", significant=False,
        description="base URL or local folder laid out like dumps.wikimedia.org",
    )
    source = luigi.ChoiceParameter(
        default=MULTISTREAM, choices=SOURCES,
        description="which dumps to read: multistream (the pages-articles-multistream job) or "
                    "content-export (MediaWiki Content File Exports)",
    )
    contact = luigi.Parameter(
        default="", significant=False,
        description="e-mail or URL added to the User-Agent, so that mirror operators can reach you",
    )

    stage: str = ""

    @property
    def wiki(self) -> str:
        return wiki_name(self.lang)

    @property
    def run_dir(self) -> Path:
        if self.date == "latest":
            raise ValueError(f"{type(self).__name__} needs a concrete --date YYYYMMDD: only TrainWikiModel resolves "
                             "'latest' to the newest complete dump.")
        return Path(self.data_root) / self.wiki / check_date(self.date)

    def stage_settings(self) -> dict[str, Any]:
        """Settings of this stage alone that change its output's bytes."""
        return {}

    def stage_name(self) -> str:
        """Readable part of the output folder name."""
        return self.stage

    def upstream(self) -> Optional["StageTask"]:
        """Return the stage whose output this one reads, or None for the first stage."""
        return None

    def settings(self) -> dict[str, Any]:
        """This stage's settings plus the identity of its upstream output."""
        upstream = self.upstream()
        identity = {"stage": self.stage, **self.stage_settings()}
        if upstream is not None:
            identity["upstream"] = upstream.output_dir().relative_to(Path(self.data_root)).as_posix()
        return identity

    def output_dir(self) -> Path:
        return self.run_dir / self.stage / f"{self.stage_name()}-{settings_digest(self.settings())}"

    def complete(self) -> bool:
        return super().complete() and all(task.complete() for task in flatten(self.requires()))

    def report_progress(self, message: str, fraction: Optional[float] = None) -> None:
        """Show progress in the scheduler; a no-op when not run by a Luigi worker."""
        if self.set_status_message:
            self.set_status_message(message)
        if fraction is not None and self.set_progress_percentage:
            self.set_progress_percentage(round(100 * min(max(fraction, 0.0), 1.0), 1))


@StageTask.event_handler(luigi.Event.PROCESSING_TIME)
def _log_stage_time(task: StageTask, seconds: float) -> None:
    output = task.output()
    log.info("Stage %s finished in %.1f s: %s (%s)", task.stage, seconds,
             output.path if isinstance(output, luigi.LocalTarget) else task.output_dir(), task.task_id)
