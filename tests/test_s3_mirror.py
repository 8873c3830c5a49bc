"""An s3:// mirror, served by an S3-compatible server (moto) that the test starts on 127.0.0.1."""

from __future__ import annotations

import json

import luigi
import pytest

from pipeline.dump import CONTENT_EXPORT, DumpError, Mirror, resolve_latest_date
from tasks.text import ExtractText

from buckets import Bucket
from conftest import BUNDLED_ARTICLES
from mirror_tree import CONTENT_DATE, SPLIT_DATE, WIKI

pytestmark = pytest.mark.slow

BUCKET = "dumps"
PREFIX = "wikimedia/mirror"


@pytest.fixture
def s3_mirror(s3_environment, mirror_tree_template):
    """Upload the mirror tree under s3://dumps/wikimedia/mirror; yields that base URL."""
    bucket = Bucket("s3", BUCKET, PREFIX)
    for path in mirror_tree_template.rglob("*"):
        if path.is_file():
            bucket.put(f"{PREFIX}/{path.relative_to(mirror_tree_template).as_posix()}", path.read_bytes())
    yield bucket.root
    bucket.remove()


def test_s3_lists_dates_and_picks_complete_runs(s3_mirror):
    mirror = Mirror(s3_mirror)
    # S3 has no empty folders, so the tree's empty 20160901 folder is not there.
    assert mirror.list_dates(WIKI) == ["20160801", "20160701", "20160601", SPLIT_DATE, "20160501"]
    assert mirror.list_dates(WIKI, CONTENT_EXPORT) == ["20160601", CONTENT_DATE]
    # 20160801 lists no files and 20160601 and 20160701 are unfinished: the split run wins.
    assert resolve_latest_date(mirror, WIKI) == SPLIT_DATE
    assert resolve_latest_date(mirror, WIKI, CONTENT_EXPORT) == CONTENT_DATE


def test_s3_missing_wiki_is_clear(s3_mirror):
    with pytest.raises(DumpError, match="No complete multistream dump of dewiki"):
        resolve_latest_date(Mirror(s3_mirror), "dewiki")


def test_s3_mirror_through_the_pipeline(s3_mirror, tmp_path):
    task = ExtractText(lang="en", date=SPLIT_DATE, data_root=str(tmp_path / "data"), mirror=s3_mirror, processes=1)
    result = luigi.build([task], local_scheduler=True, detailed_summary=True, log_level="WARNING")
    assert result.status == luigi.execution_summary.LuigiStatusCode.SUCCESS, result.summary_text
    stats = json.loads(task.output().open().read())
    assert stats["articles"] == BUNDLED_ARTICLES
    assert len(stats["parts"]) == 3
