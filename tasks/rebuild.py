"""Build the newest dump of a wiki, for cron or a systemd timer.

    python -m tasks.rebuild --lang en [--data-root DIR_OR_URI] [--cache-root DIR] [--keep 2] [--workers 4]
                            [--local-scheduler]

It resolves the newest complete dump on the mirror once and builds
TrainWikiModel for that concrete date, with the settings of luigi.cfg (and
LUIGI_CONFIG_PATH). Exit codes:

    0  built a new model
    3  up to date: the newest dump's build is already complete
    4  another rebuild of this wiki is still running
    1  the build failed (the log gives the cause); the next run resumes it

A lock file in the wiki's folder of the data root keeps two rebuilds of the
same wiki from overlapping, whatever their dates. With a data root on object
storage, the lock file is in the local cache, so it covers one machine: run
the rebuild of a wiki from one machine only. After a successful build
(or an up-to-date check) it deletes the dated folders older than the
`--keep` newest complete builds. A folder newer than those, such as a build
still in progress, is never deleted.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import sys
from typing import Optional

import luigi

from pipeline.data_root import SUCCESS_MARKER, DataRoot, StorageError
from pipeline.dump import DATE_PATTERN
from tasks.main import TrainWikiModel

# Named explicitly: run with `python -m`, __name__ is "__main__", which has no handler.
log = logging.getLogger("tasks.rebuild")

BUILT, FAILED, UP_TO_DATE, ALREADY_RUNNING = 0, 1, 3, 4
LOCK_NAME = ".rebuild.lock"


def complete_builds(data: DataRoot, wiki: str) -> list[str]:
    """Return the dates of `wiki` in the data root that have a finished report, newest first."""
    # A finished report folder has report.html locally, and a _SUCCESS marker in an object store.
    marker = SUCCESS_MARKER if data.remote else "report.html"
    reports = data.glob(f"{wiki}/*/report/report-*/{marker}")
    return sorted({path.relative_to(data.local / wiki).parts[0] for path in reports}, reverse=True)


def apply_retention(data: DataRoot, wiki: str, keep: int) -> list[str]:
    """Delete the dated folders of `wiki` older than the `keep` newest complete builds; return the deleted dates.

    Nothing is deleted while there are fewer than `keep` complete builds, and
    a folder newer than the oldest kept build stays, complete or not. With
    object storage, the objects and this machine's cached copies are deleted.
    """
    if keep < 1:
        raise ValueError(f"Invalid keep {keep}: expected 1 or more, so that the newest build stays.")
    newest = complete_builds(data, wiki)[:keep]
    if len(newest) < keep:
        return []
    oldest_kept = newest[-1]
    deleted = []
    for date in data.child_folders(data.local / wiki):
        if DATE_PATTERN.match(date) and date < oldest_kept:
            data.remove_tree(data.local / wiki / date)
            deleted.append(date)
    if deleted:
        log.info("Deleted %d older builds of %s: %s", len(deleted), wiki, ", ".join(deleted))
    return deleted


def rebuild(lang: str, keep: int, workers: int, local_scheduler: bool, data_root: Optional[str] = None,
            cache_root: Optional[str] = None) -> int:
    """Run one scheduled rebuild and return its exit code (see the module docstring).

    `data_root` and `cache_root` override the configured ones, for a preset whose config sets its own.
    """
    options = {"lang": lang, **({"data_root": data_root} if data_root else {}),
               **({"cache_root": cache_root} if cache_root else {})}
    latest = TrainWikiModel(**options)
    data = DataRoot(latest.data_root, latest.cache_root or None)
    if data.remote:
        data.store.check_bucket()
    wiki_dir = data.local / latest.wiki
    wiki_dir.mkdir(parents=True, exist_ok=True)

    with open(wiki_dir / LOCK_NAME, "a+") as lock:
        try:
            fcntl.flock(lock, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except BlockingIOError:
            log.warning("Another rebuild of %s is running (it has locked %s); not starting a second one.", latest.wiki,
                        wiki_dir / LOCK_NAME)
            return ALREADY_RUNNING
        lock.seek(0)
        lock.truncate()
        lock.write(f"{os.getpid()}\n")
        lock.flush()

        date = latest.resolved_date()
        task = TrainWikiModel(**options, date=date)
        if task.complete():
            log.info("Up to date: the build of %s %s is complete (%s).", latest.wiki, date, task.report_path())
            apply_retention(data, latest.wiki, keep)
            return UP_TO_DATE

        log.info("Building %s %s.", latest.wiki, date)
        result = luigi.build([task], workers=workers, local_scheduler=local_scheduler, detailed_summary=True)
        if result.status not in (luigi.execution_summary.LuigiStatusCode.SUCCESS,
                                 luigi.execution_summary.LuigiStatusCode.SUCCESS_WITH_RETRY) or not task.complete():
            log.error("The build of %s %s failed. The failed task logged its error above; Luigi's summary: %s",
                      latest.wiki, date, result.summary_text)
            return FAILED
        log.info("Built %s %s: %s", latest.wiki, date, task.report_path())
        apply_retention(data, latest.wiki, keep)
        return BUILT


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.rebuild", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lang", required=True, help="Wikipedia language code, such as en")
    parser.add_argument("--data-root", default=None,
                        help="folder, or s3:// or gs:// URI, for every output (default: the configured data_root)")
    parser.add_argument("--cache-root", default=None,
                        help="local folder where stages work when the data root is on object storage "
                             "(default: the configured cache_root, else ~/.cache/wikichar)")
    parser.add_argument("--keep", type=int, default=2, help="complete builds to keep per wiki (default: 2)")
    parser.add_argument("--workers", type=int, default=1, help="Luigi worker processes (default: 1)")
    parser.add_argument("--local-scheduler", action="store_true",
                        help="run without luigid (by default the build goes to the luigid of luigi.cfg)")
    arguments = parser.parse_args(argv)
    if arguments.keep < 1:
        parser.error(f"invalid --keep {arguments.keep}: expected 1 or more")
    # An exception (a mirror that cannot be reached, say) ends the process with status 1 and its traceback.
    try:
        return rebuild(arguments.lang, arguments.keep, arguments.workers, arguments.local_scheduler,
                       arguments.data_root, arguments.cache_root)
    except StorageError as error:
        log.error("%s", error)
        return FAILED


if __name__ == "__main__":
    sys.exit(main())
