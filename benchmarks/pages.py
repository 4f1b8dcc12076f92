"""The reports a reviewer opens, in a real browser: how long ``report.html`` and ``parity.html`` take to load.

Each page is opened from disk in headless chromium (Debian's, through selenium, as the parity page's browser
test drives it) ``repeat`` times; a load ends when the browser's load event has run, which is after
pytest-html's script has built its results table from the data embedded in the page. The rows the page then
shows are counted, so that a page that loaded without rendering cannot pass for a fast one. The target is
5 s per page for the reports of a whole run (issue 27): ``--part reports`` measures those in ``reports/``
(the last run in this checkout; ``--reports-dir`` names others), and the suite part those of its plain
``pytest`` run.
"""

from __future__ import annotations

import shutil
import time
from pathlib import Path

from benchmarks.measure import ROOT, Figure, spread_text, table

TARGET_SECONDS = 5.0
REPORTS_DIR = ROOT / "reports"
PAGES = ("report.html", "parity.html")
# what each page shows once rendered: pytest-html's result rows (one tbody per shown result) and the parity
# matrix's rows (one per API) with the checks behind its cells
ROWS_SCRIPT = ("return {results: document.querySelectorAll('#results-table > tbody').length, "
               "matrix: document.querySelectorAll('#matrix > tbody > tr').length, "
               "rows: document.querySelectorAll('tr').length}")


def _driver():
    """A headless chromium, or the reason there is none."""
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        return None, "selenium is not installed (pip install -e '.[browser]' -c constraints.txt)"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if not (chromium and driver):
        return None, "Debian's chromium and chromedriver are not installed (apt-get install -y chromium chromium-driver)"
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    browser = webdriver.Chrome(service=Service(executable_path=driver), options=options)
    browser.set_page_load_timeout(300)
    return browser, None


def measure(directory: Path, repeat: int, log) -> dict:
    """Per page of ``directory``: its size, the load's seconds (median and spread) and the rows it shows."""
    browser, reason = _driver()
    if browser is None:
        return {"directory": str(directory), "skipped": reason}
    pages = {}
    try:
        for name in PAGES:
            path = Path(directory, name)
            if not path.is_file():
                pages[name] = {"missing": True}
                continue
            load = Figure()
            for attempt in range(repeat):
                log(f"  {path} in headless chromium ({attempt + 1}/{repeat})")
                browser.get("about:blank")
                start = time.perf_counter()
                browser.get(path.as_uri())  # returns once the load event has run
                load.add(time.perf_counter() - start)
            pages[name] = {"megabytes": path.stat().st_size / 1e6, "load": load.as_dict(),
                           "shown": browser.execute_script(ROWS_SCRIPT)}
    finally:
        browser.quit()
    return {"directory": str(directory), "target": TARGET_SECONDS, "pages": pages}


def render(part: dict, whose: str = "") -> str:
    if part.get("skipped"):
        return f"Not measured: {part['skipped']}."
    rows = []
    for name, page in part["pages"].items():
        if page.get("missing"):
            rows.append([name, "missing", "", "", ""])
            continue
        shown = page["shown"]
        rendered = (f"{shown['results']} result rows" if name == "report.html"
                    else f"{shown['matrix']} APIs, {shown['rows']} rows in all")
        verdict = "met" if page["load"]["median"] <= part["target"] else "NOT met"
        rows.append([name, f"{page['megabytes']:.1f} MB", spread_text(page["load"]), rendered,
                     f"{verdict} ({page['load']['median'] / part['target']:.2f} of {part['target']:g} s)"])
    return "\n\n".join([f"{whose or 'The pages of ' + part['directory']}, opened from disk in headless chromium:",
                        table(["page", "size", "load", "shown", "target"], rows)])
