"""The base class of stage tasks: the dump's identity, output paths, object storage and progress."""

from __future__ import annotations

import functools
import logging
import types
from pathlib import Path
from typing import Any, Optional

import luigi
from luigi.task import flatten

from pipeline.data_root import DataRoot
from pipeline.dump import MULTISTREAM, SOURCES, check_date, wiki_name
from pipeline.storage import settings_digest

log = logging.getLogger(__name__)


class StoredTarget(luigi.Target):
    """An output in an object storage data root. `path` is its local copy, and exists() checks the store.

    A folder output exists when its `_SUCCESS` marker does, and a file output
    when its object does.
    """

    def __init__(self, data: DataRoot, path: Path, folder: bool):
        self.data = data
        self.path = str(path)
        self.folder = folder

    @property
    def uri(self) -> str:
        return self.data.location(Path(self.path))

    def exists(self) -> bool:
        return self.data.folder_complete(Path(self.path)) if self.folder else self.data.exists(Path(self.path))


class DataRootParameter(luigi.Parameter):
    """A data root: a local folder, or an s3:// or gs:// URI, checked when a task is created."""

    def normalize(self, x):
        # A mistyped URI fails here, before scheduling, where Luigi would only log it and keep-alive workers wait on.
        DataRoot(str(x))
        return str(x)


class StageTask(luigi.Task):
    """A stage of the pipeline for one wiki and one concrete dump date.

    Output paths are `{data_root}/{wiki}/{date}/{stage}/{name}-{hash}`, where
    the hash covers the stage's own settings and the path of the stage it
    reads, so any setting that changes bytes anywhere upstream gives a new
    folder. A stage is complete when its output exists and every stage it
    requires is complete: deleting one stage's output reruns it and every
    stage after it.

    Subclasses implement produce() on local paths. With a data root on object
    storage, those paths are in the cache folder, and run() moves the inputs
    and the output between it and the store (see pipeline.data_root).
    """

    lang = luigi.Parameter(description="Wikipedia language code, such as en or de")
    date = luigi.Parameter(description="dump date, YYYYMMDD")
    data_root = DataRootParameter(default="data", description="folder, or s3:// or gs:// URI, for every output")
    cache_root = luigi.Parameter(
        default="", significant=False,
        description="local folder where stages work when data_root is on object storage "
                    "(default: $XDG_CACHE_HOME/wikichar or ~/.cache/wikichar)",
    )
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

    @functools.cached_property
    def data(self) -> DataRoot:
        return DataRoot(self.data_root, self.cache_root or None)

    @property
    def run_dir(self) -> Path:
        """The local folder of this dump's outputs (a cache folder when the data root is on object storage)."""
        if self.date == "latest":
            raise ValueError(f"{type(self).__name__} needs a concrete --date YYYYMMDD: only TrainWikiModel resolves "
                             "'latest' to the newest complete dump.")
        return self.data.local / self.wiki / check_date(self.date)

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
            identity["upstream"] = upstream.output_dir().relative_to(self.data.local).as_posix()
        return identity

    def output_dir(self) -> Path:
        return self.run_dir / self.stage / f"{self.stage_name()}-{settings_digest(self.settings())}"

    def file_target(self, path: Path) -> luigi.Target:
        """Return the target of an output file, whose presence marks the stage complete."""
        return StoredTarget(self.data, path, folder=False) if self.data.remote else luigi.LocalTarget(path)

    def folder_target(self, path: Path) -> luigi.Target:
        """Return the target of an output folder, which appears whole (locally by a rename, in a store by a marker)."""
        return StoredTarget(self.data, path, folder=True) if self.data.remote else luigi.LocalTarget(path)

    def companion_files(self) -> list[Path]:
        """Return the files this stage writes beside its output file; they are uploaded before it."""
        return []

    def complete(self) -> bool:
        return super().complete() and all(task.complete() for task in flatten(self.requires()))

    def run(self):
        """Copy the inputs into the local cache, build the output with produce(), then upload it.

        With a local data root the copies and the upload are no-ops. A
        produce() that yields tasks (dynamic dependencies) is re-entered by
        Luigi from the top once they are complete, like any run().
        """
        # A missing bucket or bad credentials fail here, not after hours of work that could not be uploaded.
        if self.data.remote:
            self.data.store.check_bucket()
            self.report_progress(f"downloading inputs from {self.data.root}")
        self.fetch_targets(self.input())
        if self.built_in_cache():
            log.info("Uploading %s from the local cache, where an earlier attempt built it", self.output().uri)
        else:
            produced = self.produce()
            if isinstance(produced, types.GeneratorType):
                yield from produced
            if self.data.remote:
                self.unpublished_marker().touch()
        self.publish_output()

    def unpublished_marker(self) -> Path:
        """Return the local file that marks this stage's output as built here but not yet uploaded."""
        output = Path(self.output().path)
        return output.with_name(f"{output.name}.unpublished")

    def built_in_cache(self) -> bool:
        """Return True if this machine built the output and was cut off while uploading it.

        The output's files appeared by renames before the marker was written,
        so they are whole and only need uploading. A copy in the cache that
        was downloaded, or whose upload finished, has no marker: once its
        stored output is deleted, the stage is built again.
        """
        output = self.output()
        return isinstance(output, StoredTarget) and self.unpublished_marker().exists() and \
            Path(output.path).exists() and all(path.exists() for path in self.companion_files())

    def produce(self):
        """Build this stage's output from local files; the subclass's work."""
        raise NotImplementedError

    def fetch_targets(self, targets) -> None:
        """Copy stored output files and folders into the local cache; a no-op for a local data root."""
        for target in flatten(targets):
            if isinstance(target, StoredTarget):
                if target.folder:
                    self.data.fetch_folder(Path(target.path))
                else:
                    self.data.fetch(Path(target.path))

    def publish_output(self) -> None:
        """Upload this stage's output to the object storage data root, its marker last."""
        output = self.output()
        if not isinstance(output, StoredTarget):
            return
        self.report_progress(f"uploading to {output.uri}")
        if output.folder:
            self.data.publish_folder(Path(output.path))
        else:
            self.data.publish(*self.companion_files(), Path(output.path))
        self.unpublished_marker().unlink(missing_ok=True)

    def report_progress(self, message: str, fraction: Optional[float] = None) -> None:
        """Show progress in the scheduler; a no-op when not run by a Luigi worker."""
        if self.set_status_message:
            self.set_status_message(message)
        if fraction is not None and self.set_progress_percentage:
            self.set_progress_percentage(round(100 * min(max(fraction, 0.0), 1.0), 1))


@StageTask.event_handler(luigi.Event.PROCESSING_TIME)
def _log_stage_time(task: StageTask, seconds: float) -> None:
    output = task.output()
    location = output.uri if isinstance(output, StoredTarget) else getattr(output, "path", task.output_dir())
    log.info("Stage %s finished in %.1f s: %s (%s)", task.stage, seconds, location, task.task_id)
