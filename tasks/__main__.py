"""Print the path of the report that `TrainWikiModel` builds with the current configuration.

    python -m tasks report-path --lang en [--date 20160501] [--data-root DIR_OR_URI]

It reads the same luigi.cfg and LUIGI_CONFIG_PATH as `luigi` does, resolves
`--date latest` the same way, and exits with 1 if the report does not exist.
"""

import argparse
import logging
import sys
from pathlib import Path

from pipeline.data_root import StorageError
from tasks.main import TrainWikiModel


def main() -> int:
    parser = argparse.ArgumentParser(prog="python -m tasks", description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("command", choices=["report-path"])
    parser.add_argument("--lang", required=True, help="Wikipedia language code, such as en")
    parser.add_argument("--date", default=None, help="dump date YYYYMMDD or latest (default: the configured one)")
    parser.add_argument("--data-root", default=None,
                        help="folder, or s3:// or gs:// URI, of the build (default: the configured data_root)")
    parser.add_argument("--cache-root", default=None,
                        help="local cache folder for a data root on object storage (default: the configured one)")
    arguments = parser.parse_args()

    # Only the path goes to stdout; the date resolution's log lines would clutter `make demo`.
    logging.getLogger("pipeline").setLevel(logging.WARNING)
    options = {"lang": arguments.lang}
    for name in ("date", "data_root", "cache_root"):
        if getattr(arguments, name):
            options[name] = getattr(arguments, name)
    try:
        task = TrainWikiModel(**options)
        data = task.requires().data
        if data.remote:
            data.store.check_bucket()
    except StorageError as error:
        print(error, file=sys.stderr)
        return 1
    location = task.report_path()
    if not task.requires().output().exists():
        print(f"No report yet at {location}: run luigi --module tasks TrainWikiModel --lang {arguments.lang} first.",
              file=sys.stderr)
        return 1
    print(location if data.remote else Path(location).resolve())
    return 0


if __name__ == "__main__":
    sys.exit(main())
