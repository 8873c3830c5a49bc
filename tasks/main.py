"""The entry point: `luigi --module tasks TrainWikiModel --lang en`."""

from __future__ import annotations

import logging

import luigi
from luigi.util import inherits

from pipeline.dump import DumpError, Mirror, check_date, resolve_latest_date, wiki_name
from tasks.report import WriteReport

log = logging.getLogger(__name__)


@inherits(WriteReport)
class TrainWikiModel(luigi.WrapperTask):
    """Build the whole pipeline for one wiki, from the dump to the report.

    `--date latest` (the default) is resolved once, to the newest complete
    run of the dump source on the mirror. Every stage then gets that
    concrete date, so a dump published mid-run never mixes into the build.
    """

    date = luigi.Parameter(default="latest", description="dump date YYYYMMDD, or latest")

    def resolved_date(self) -> str:
        # Luigi calls requires() several times per run; resolve once per task instance.
        if getattr(self, "_resolved_date", None) is None:
            if self.date == "latest":
                try:
                    self._resolved_date = resolve_latest_date(Mirror(self.mirror, contact=self.contact), self.wiki,
                                                              self.source)
                except (DumpError, ValueError) as error:
                    # Luigi reports errors raised while scheduling only as a warning, so log the cause plainly.
                    log.error("Cannot find the dump to build: %s", error)
                    raise
            else:
                self._resolved_date = check_date(self.date)
        return self._resolved_date

    @property
    def wiki(self) -> str:
        return wiki_name(self.lang)

    def requires(self):
        return self.clone(WriteReport, date=self.resolved_date())

    def report_path(self) -> str:
        """Return the report's path, or its s3:// or gs:// URI when the data root is on object storage."""
        report = self.requires()
        return report.data.location(report.output_dir() / "report.html")
