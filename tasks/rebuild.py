"""Build the newest dump of a wiki, for cron or a systemd timer.

    python -m tasks.rebuild --lang en [--data-root DIR] [--keep 2] [--workers 4] [--local-scheduler]

It resolves the newest complete dump on the mirror once and builds
TrainWikiModel for that concrete date, with the settings of luigi.cfg (and
LUIGI_CONFIG_PATH). Exit codes:

    0  built a new model
    3  up to date: the newest dump's build is already complete
    4  another rebuild of this wiki is still running
    1  the build failed (the log gives the cause); the next run resumes it

A lock file in the wiki's folder of the data root keeps two rebuilds of the
same wiki from overlapping, whatever their dates. After a successful build
(or an up-to-date check) it deletes the dated folders older than the
`--keep` newest complete builds. A folder newer than those, such as a build
still in progress, is never deleted.
"""

from __future__ import annotations

import argparse
import fcntl
import logging
import os
import shutil
import sys
from pathlib import Path
from typing import Optional

import luigi

from pipeline.dump import DATE_PATTERN
from tasks.main import TrainWikiModel

# Named explicitly: run with `python -m`, __name__ is "__main__", which has no handler.
log = logging.getLogger("tasks.rebuild")

BUILT, FAILED, UP_TO_DATE, ALREADY_RUNNING = 0, 1, 3, 4
LOCK_NAME = ".rebuild.lock"


def complete_builds(wiki_dir: Path) -> list[str]:
    """Return the dates under `wiki_dir` that have a finished report, newest first."""
    if not wiki_dir.is_dir():
        return []
    dates = [entry.name for entry in wiki_dir.iterdir() if entry.is_dir() and DATE_PATTERN.match(entry.name)]
    return sorted((date for date in dates if any((wiki_dir / date / "report").glob("report-*/report.html"))), reverse=True)


def apply_retention(wiki_dir: Path, keep: int) -> list[str]:
    """Delete the dated folders older than the `keep` newest complete builds; return the deleted dates.

    Nothing is deleted while there are fewer than `keep` complete builds, and
    a folder newer than the oldest kept build stays, complete or not.
    """
    if keep < 1:
        raise ValueError(f"Invalid keep {keep}: expected 1 or more, so that the newest build stays.")
    newest = complete_builds(wiki_dir)[:keep]
    if len(newest) < keep:
        return []
    oldest_kept = newest[-1]
    deleted = []
    for entry in sorted(wiki_dir.iterdir()):
        if entry.is_dir() and DATE_PATTERN.match(entry.name) and entry.name < oldest_kept:
            shutil.rmtree(entry)
            deleted.append(entry.name)
    if deleted:
        log.info("Deleted %d older builds of %s: %s", len(deleted), wiki_dir.name, ", ".join(deleted))
    return deleted


def rebuild(lang: str, keep: int, workers: int, local_scheduler: bool, data_root: Optional[str] = None) -> int:
    """Run one scheduled rebuild and return its exit code (see the module docstring).

    `data_root` overrides the configured one, for a preset whose config sets its own.
    """
    options = {"lang": lang, **({"data_root": data_root} if data_root else {})}
    latest = TrainWikiModel(**options)
    wiki_dir = Path(latest.data_root) / latest.wiki
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
            apply_retention(wiki_dir, keep)
            return UP_TO_DATE

        log.info("Building %s %s.", latest.wiki, date)
        result = luigi.build([task], workers=workers, local_scheduler=local_scheduler, detailed_summary=True)
        if result.status not in (luigi.execution_summary.LuigiStatusCode.SUCCESS,
                                 luigi.execution_summary.LuigiStatusCode.SUCCESS_WITH_RETRY) or not task.complete():
            log.error("The build of %s %s failed: %s", latest.wiki, date, result.summary_text)
            return FAILED
        log.info("Built %s %s: %s", latest.wiki, date, task.report_path())
        apply_retention(wiki_dir, keep)
        return BUILT


def main(argv: Optional[list[str]] = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks.rebuild", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("--lang", required=True, help="Wikipedia language code, such as en")
    parser.add_argument("--data-root", default=None, help="folder for every output (default: the configured data_root)")
    parser.add_argument("--keep", type=int, default=2, help="complete builds to keep per wiki (default: 2)")
    parser.add_argument("--workers", type=int, default=1, help="Luigi worker processes (default: 1)")
    parser.add_argument("--local-scheduler", action="store_true",
                        help="run without luigid (by default the build goes to the luigid of luigi.cfg)")
    arguments = parser.parse_args(argv)
    if arguments.keep < 1:
        parser.error(f"invalid --keep {arguments.keep}: expected 1 or more")
    # An exception (a mirror that cannot be reached, say) ends the process with status 1 and its traceback.
    return rebuild(arguments.lang, arguments.keep, arguments.workers, arguments.local_scheduler, arguments.data_root)


if __name__ == "__main__":
    sys.exit(main())
