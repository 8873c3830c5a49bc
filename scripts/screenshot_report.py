"""Render a report.html in headless Chromium and save a screenshot, for docs/report.png.

    python scripts/screenshot_report.py data/enwiki/20160501/report/report-<hash>/report.html docs/report.png

Needs Debian's chromium and chromium-driver packages (/usr/bin/chromium and
/usr/bin/chromedriver) and the selenium package (a test dependency).
"""

from __future__ import annotations

import argparse
import shutil
import tempfile
from pathlib import Path

CHROMIUM = Path("/usr/bin/chromium")
CHROMEDRIVER = Path("/usr/bin/chromedriver")


def browser_missing() -> str:
    """Return why the browser cannot start here, or "" when it can."""
    try:
        import selenium  # noqa: F401
    except ImportError:
        return "selenium is not installed (pip install -e '.[test]')"
    missing = [str(path) for path in (CHROMIUM, CHROMEDRIVER) if not path.exists()]
    if missing:
        return (f"{' and '.join(missing)} not found: install Debian's chromium and chromium-driver packages "
                "(.ci/run does so where it runs as root with apt-get)")
    return ""


def open_browser(profile: Path, width: int = 1280, height: int = 900):
    """Return a headless Chromium driven by selenium, with a fresh profile in `profile` and console logging on."""
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = str(CHROMIUM)
    # No sandbox, since tests may run as root; and no background connections, since the network is closed.
    for flag in ("--headless", "--no-sandbox", "--disable-gpu", "--disable-quic", "--no-first-run",
                 "--disable-background-networking", "--disable-component-update", "--disable-sync",
                 f"--user-data-dir={profile}", f"--window-size={width},{height}"):
        options.add_argument(flag)
    options.set_capability("goog:loggingPrefs", {"browser": "ALL"})
    return webdriver.Chrome(service=Service(str(CHROMEDRIVER)), options=options)


def main() -> None:
    parser = argparse.ArgumentParser(description=__doc__, formatter_class=argparse.RawDescriptionHelpFormatter)
    parser.add_argument("report", type=Path, help="a report.html")
    parser.add_argument("output", type=Path, help="the PNG to write")
    parser.add_argument("--height", type=int, default=2200, help="page height in pixels (default: 2200)")
    arguments = parser.parse_args()
    reason = browser_missing()
    if reason:
        parser.error(reason)

    profile = Path(tempfile.mkdtemp(prefix="chromium-profile-"))
    browser = open_browser(profile, height=arguments.height)
    try:
        browser.get(arguments.report.resolve().as_uri())
        browser.save_screenshot(str(arguments.output))
    finally:
        browser.quit()
        shutil.rmtree(profile, ignore_errors=True)
    print(f"Wrote {arguments.output}")


if __name__ == "__main__":
    main()
