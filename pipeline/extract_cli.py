"""`python -m pipeline.extract`: extract plain text from dump files, as a drop-in for wikiextractor.

    python -m pipeline.extract DUMP [DUMP ...] -o DIR|- [--json] [-b SIZE] [--processes N] [-q] [--parquet]

The options that wikiextractor users know mean the same here: -o is the
output folder (or - for standard output), -b the size of each output file
(such as 500K or 1M), --json writes JSON lines with id, revid, url, title and
text instead of <doc> blocks, --processes the number of worker processes,
--no-templates skips expanding the templates defined in the dump itself.
--parquet writes Parquet files with the project's article schema, and
--keep-disambiguation keeps disambiguation pages, which are dropped by default.

Exit status: 0 on success; 1 when a file is missing, empty, truncated, corrupt,
not MediaWiki XML, in an unknown encoding or carries a <!DOCTYPE>, after
writing every complete page before the fault; 2 for invalid options.
"""

from __future__ import annotations

import argparse
import json
import logging
import re
import signal
import sys
from pathlib import Path

from pipeline.export import RotatingWriter
from pipeline.extract import Budget, ExtractionError, ExtractionStats, available_cores, collect_templates, iter_articles

SIZE = re.compile(r"^(\d+)([KMG]?)$", re.IGNORECASE)
UNITS = {"": 1, "K": 1024, "M": 1024**2, "G": 1024**3}


def parse_size(text: str) -> int:
    """Parse a size such as 500K, 1M or 1048576 into bytes, the way wikiextractor's -b does."""
    match = SIZE.match(text.strip())
    if not match or int(match.group(1)) == 0:
        raise argparse.ArgumentTypeError(f"invalid size {text!r}: expected a positive number with an optional K, M or G, such as 1M")
    return int(match.group(1)) * UNITS[match.group(2).upper()]


def build_parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(prog="python -m pipeline.extract", description=__doc__,
                                     formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("dumps", nargs="+", type=Path, metavar="DUMP",
                        help="dump files: bzip2 (multistream or not) or plain XML")
    parser.add_argument("-o", "--output", required=True, help="output folder, or - for standard output")
    parser.add_argument("-b", "--bytes", type=parse_size, default=parse_size("1M"), help="bytes per output file (default 1M)")
    output = parser.add_mutually_exclusive_group()
    output.add_argument("--json", action="store_true", help="write JSON lines instead of <doc> blocks")
    output.add_argument("--parquet", action="store_true", help="write Parquet files with the article schema")
    parser.add_argument("--processes", type=int, default=available_cores(), help="worker processes (default: all available cores)")
    parser.add_argument("-q", "--quiet", action="store_true", help="log only warnings and errors")
    parser.add_argument("--no-templates", action="store_true",
                        help="do not expand templates defined in the dump (built-in prose templates are still rendered)")
    parser.add_argument("--keep-disambiguation", action="store_true", help="keep disambiguation pages as articles")
    parser.add_argument("--stats", type=Path, help="also write the page counts by reason to this JSON file")
    parser.add_argument("--max-page-bytes", type=int, default=Budget().max_page_bytes, help="skip pages with more wikitext than this")
    parser.add_argument("--max-page-seconds", type=float, default=Budget().max_page_seconds, help="skip pages that take longer than this to convert")
    return parser


def main(argv: list[str] | None = None) -> int:
    arguments = build_parser().parse_args(argv)
    if arguments.processes < 1:
        build_parser().error(f"--processes must be at least 1, got {arguments.processes}")
    logging.basicConfig(level=logging.WARNING if arguments.quiet else logging.INFO, stream=sys.stderr,
                        format="%(asctime)s %(levelname)s %(name)s: %(message)s")

    # Writing to a closed pipe (`... -o - | head`) ends the program quietly, as other command-line tools do.
    signal.signal(signal.SIGPIPE, signal.SIG_DFL)
    output_format = "doc"
    if arguments.parquet:
        output_format = "parquet"
    elif arguments.json:
        output_format = "json"
    if arguments.output != "-" and Path(arguments.output).exists() and not Path(arguments.output).is_dir():
        logging.getLogger("pipeline.extract").error("Output %s exists and is not a folder: give a folder for -o, or - for standard output.", arguments.output)
        return 1
    writer = RotatingWriter(arguments.output, output_format, arguments.bytes)
    stats = ExtractionStats()
    budget = Budget(max_page_bytes=arguments.max_page_bytes, max_page_seconds=arguments.max_page_seconds)
    status = 0
    try:
        templates = None if arguments.no_templates else collect_templates(arguments.dumps, arguments.processes)
        for article in iter_articles(arguments.dumps, stats, default_site_base="https://en.wikipedia.org/wiki/",
                                     processes=arguments.processes, budget=budget, templates=templates,
                                     keep_disambiguation=arguments.keep_disambiguation):
            writer.write(article)
    except ExtractionError as error:
        logging.getLogger("pipeline.extract").error("%s", error)
        status = 1
    finally:
        writer.close()

    summary = stats.to_dict()
    logging.getLogger("pipeline.extract").info(
        "Wrote %d articles from %d pages; skipped %s; failed %s", summary["articles"], summary["pages"],
        summary["skipped"] or "none", summary["failed"] or "none")
    if arguments.stats:
        arguments.stats.write_text(json.dumps(summary, indent=2) + "\n", encoding="utf-8")
    return status
