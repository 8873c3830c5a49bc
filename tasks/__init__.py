"""Luigi tasks that wire the pipeline's stages together.

    luigi --module tasks TrainWikiModel --lang en

DownloadDump (one DownloadDumpFile per file) -> ExtractText (one
ExtractDumpFile per dump file, and CollectTemplates) -> WriteShards ->
BuildVocabulary -> EncodeTokens -> TrainModel -> WriteReport, and
TrainWikiModel, a wrapper that resolves `--date latest` and requires the
report.
"""

import logging
import sys

from tasks.dump import DownloadDump, DownloadDumpFile
from tasks.main import TrainWikiModel
from tasks.report import WriteReport
from tasks.shards import WriteShards
from tasks.text import CollectTemplates, ExtractDumpFile, ExtractText
from tasks.tokens import EncodeTokens
from tasks.train import TrainModel
from tasks.vocabulary import BuildVocabulary


def _configure_logging() -> None:
    """Send the pipeline's INFO logs to stderr.

    Luigi configures only its own logger, so without a handler here the
    stages' milestones and rates would not be shown.
    """
    for name in ("pipeline", "tasks"):
        logger = logging.getLogger(name)
        if logger.handlers:
            continue
        handler = logging.StreamHandler(sys.stderr)
        handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s: %(message)s"))
        logger.addHandler(handler)
        logger.setLevel(logging.INFO)
        logger.propagate = False


_configure_logging()

__all__ = ["DownloadDump", "DownloadDumpFile", "CollectTemplates", "ExtractDumpFile", "ExtractText", "WriteShards",
           "BuildVocabulary", "EncodeTokens", "TrainModel", "WriteReport", "TrainWikiModel"]
