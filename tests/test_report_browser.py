"""The report in headless Chromium: it loads without errors, the loss curve shows, and no dump text runs as code."""

from __future__ import annotations

import sys

import pytest

from pipeline.report import write_report

from conftest import REPO
from test_report import HISTORY, SAMPLES, _metrics

sys.path.insert(0, str(REPO / "scripts"))
from screenshot_report import browser_missing, open_browser  # noqa: E402

MISSING = browser_missing()
pytestmark = pytest.mark.skipif(bool(MISSING), reason=f"headless Chromium is not available: {MISSING}")


def test_report_renders_in_chromium(tmp_path):
    write_report(tmp_path, _metrics(), HISTORY, SAMPLES)
    browser = open_browser(tmp_path / "profile")
    try:
        browser.get((tmp_path / "report.html").as_uri())
        assert browser.execute_script("return document.readyState") == "complete"
        images = browser.execute_script(
            "return Array.from(document.images).map(image => [image.complete, image.naturalWidth, image.naturalHeight])")
        assert images, "the loss curve is missing"
        assert all(complete and width > 300 and height > 200 for complete, width, height in images), images
        # The sample and the skip reason hold script tags; escaped, they never become elements.
        assert browser.execute_script("return document.querySelectorAll('script, img[onerror]').length") == 0
        assert "<script>alert(\"x\")</script>" in browser.execute_script("return document.body.innerText")
        errors = [entry for entry in browser.get_log("browser") if entry["level"] == "SEVERE"]
        assert errors == []
        assert browser.get_screenshot_as_png().startswith(b"\x89PNG")
    finally:
        browser.quit()
