"""Self-tests of the parity report's page and summary (conformance/parity.py).

The page must open from disk with no network, show the environment and the
matrix, colour the cells by state, and open a cell onto its checks: checked in
a real headless browser (Debian's chromium through selenium). Without chromium
the browser test skips with the reason, unless XENT_REQUIRE_BROWSER=1 (as CI
sets it), where a missing browser is a failure.
"""

import os
import re
import shutil
from pathlib import Path

import pytest

from conformance import parity

pytestmark = pytest.mark.selftest

ENVIRONMENT = {"python": "3.11.7", "platform": "Linux-x86_64", "machine": "x86_64", "cpu": "Test CPU", "cores": 2,
               "packages": {"numpy": "2.4.6", "torch": "2.13.0+cpu", "tensorflow-cpu": "2.21.0", "keras": "3.15.1"},
               "distributions": {"torch": ["torch"], "tensorflow": ["tensorflow-cpu"], "keras": ["keras"]}}


def _record(binding, dtype, case, outcome, max_ulp=None, kind="value", reason="", bound_ratio=None):
    framework = binding.split(":", 1)[0]
    modules = "tensorflow,keras" if ":keras." in binding else framework
    return {"check": f"softmax-{case}-{binding}-{dtype}", "kind": kind, "framework": framework, "binding": binding,
            "api": binding.split(":", 1)[1], "family": "softmax", "case": case, "dtype": dtype,
            "outcome": outcome, "max_ulp": max_ulp, "reason": reason, "versions_of": modules,
            "bound_ratio": bound_ratio}


RECORDS = [
    _record("torch:nn.functional.cross_entropy", "float32", "article1_normal_data", "passed", 0.4, bound_ratio=0.05),
    # a tiny value judged by the absolute term: many ULPs, far inside the bound
    _record("torch:nn.functional.cross_entropy", "float32", "softmax_tiny_rows", "passed", 8.77e15,
            bound_ratio=0.31),
    _record("torch:nn.functional.cross_entropy", "float64", "softmax_rows_1e4", "failed", 4100.0,
            reason="it does not match the reference on case 'softmax_rows_1e4'", bound_ratio=512.0),
    _record("tensorflow:keras.losses.CategoricalCrossentropy(from_logits=True)", "float32", "softmax_tiny",
            "xfailed", 2.0e6, reason="known divergence tf_flushes_subnormal_losses"),
    _record("tensorflow:keras.losses.CategoricalCrossentropy(from_logits=True)", "bfloat16", "softmax_tiny",
            "skipped", reason="does not support bfloat16"),
    _record("tensorflow:keras.losses.CategoricalCrossentropy(from_logits=True)", "float64", "softmax_tiny",
            "xpassed", 0.2, reason="[XPASS(strict)] known divergence"),
]


def test_framework_versions_are_recorded_per_check():
    document = parity.document(RECORDS, ENVIRONMENT, interrupted=False)
    versions = {row["binding"]: row["framework_version"] for row in document["checks"]}
    assert versions["torch:nn.functional.cross_entropy"] == "torch 2.13.0+cpu"
    assert versions["tensorflow:keras.losses.CategoricalCrossentropy(from_logits=True)"] == \
        "tensorflow-cpu 2.21.0, keras 3.15.1"


def test_cells_take_the_state_of_their_worst_check():
    document = parity.document(RECORDS, ENVIRONMENT, interrupted=False)
    states = {(c["binding"].split(":")[0], c["dtype"]): parity.cell_state(c["counts"]) for c in document["matrix"]}
    assert states == {("torch", "float32"): "pass", ("torch", "float64"): "fail",
                      ("tensorflow", "float32"): "xfail", ("tensorflow", "bfloat16"): "skip",
                      ("tensorflow", "float64"): "fail"}


def test_the_markdown_summary_is_one_row_per_api():
    text = parity.markdown(parity.document(RECORDS, ENVIRONMENT, interrupted=True))
    table = [line for line in text.splitlines() if line.startswith("| `")]
    assert len(table) == 2 and "| API | device | bfloat16 | float32 | float64 |" in text
    assert "🟥 1✗, bound use 5.1e+02" in text and "run interrupted" in text


def test_a_cell_shows_how_close_it_came_to_failing_and_its_ulps_one_click_away():
    """A green cell must not read "worst 8.77e+15 ULP": its figure is the bound use, the ULPs are inside."""
    document = parity.document(RECORDS, ENVIRONMENT, interrupted=False)
    cell = next(c for c in document["matrix"] if c["binding"].startswith("torch") and c["dtype"] == "float32")
    assert cell["bound_use"] == 0.31 and cell["worst_ulp"] == 8.77e15
    row = next(line for line in parity.markdown(document).splitlines() if line.startswith("| `torch"))
    assert "🟩 2✓, bound use 0.31" in row and "ULP" not in row
    page = parity.html_page(document)
    summary, details = page.split("data-binding='torch:nn.functional.cross_entropy' data-device='cpu' "
                                  "data-dtype='float32'><details><summary>", 1)[1].split("</summary>", 1)
    assert "bound use 0.31" in summary and "ULP" not in summary
    assert "worst error 8.77e+15 ULP (softmax_tiny_rows)" in details.split("</details>", 1)[0]
    assert "bound use</b>: the largest error / bound" in page


def test_the_page_is_self_contained():
    page = parity.html_page(parity.document(RECORDS, ENVIRONMENT, interrupted=False))
    assert not re.search(r"""(src|href)\s*=\s*['"]?(https?:)?//""", page), "the page must not load anything"
    assert "<script" not in page and "<link" not in page


def _browser():
    reason = None
    try:
        from selenium import webdriver
        from selenium.webdriver.chrome.service import Service
    except ImportError:
        reason = "selenium is not installed (pip install -e '.[browser]' -c constraints.txt)"
    chromium = shutil.which("chromium") or shutil.which("chromium-browser")
    driver = shutil.which("chromedriver")
    if reason is None and not (chromium and driver):
        reason = "Debian's chromium and chromedriver are not installed (apt-get install -y chromium chromium-driver)"
    if reason:
        if os.environ.get("XENT_REQUIRE_BROWSER") == "1":
            pytest.fail(f"XENT_REQUIRE_BROWSER=1 but {reason}")
        pytest.skip(reason)
    options = webdriver.ChromeOptions()
    options.binary_location = chromium
    for argument in ("--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage"):
        options.add_argument(argument)
    return webdriver.Chrome(service=Service(executable_path=driver), options=options)


@pytest.fixture(scope="module")
def browser():
    driver = _browser()
    yield driver
    driver.quit()


def test_the_page_renders_and_a_cell_opens_onto_its_checks(browser, tmp_path):
    from selenium.webdriver.common.by import By

    parity.write(tmp_path, parity.document(RECORDS, ENVIRONMENT, interrupted=False))
    browser.get(Path(tmp_path, "parity.html").as_uri())
    assert browser.title == "Cross-entropy parity"
    assert "Test CPU" in browser.find_element(By.ID, "environment").text
    matrix = browser.find_element(By.ID, "matrix")
    assert len(browser.find_elements(By.CSS_SELECTOR, "#matrix > tbody > tr")) == 2
    failing = matrix.find_element(By.CSS_SELECTOR, "td.fail[data-dtype='float64'][data-binding^='torch:']")
    colour = failing.value_of_css_property("background-color")
    assert colour in ("rgba(249, 208, 205, 1)", "rgb(249, 208, 205)"), colour
    details = failing.find_element(By.TAG_NAME, "details")
    checks = details.find_element(By.CSS_SELECTOR, "table.checks")
    assert details.get_attribute("open") is None and not checks.is_displayed()
    details.find_element(By.TAG_NAME, "summary").click()
    assert details.get_attribute("open") is not None
    assert checks.is_displayed() and "softmax_rows_1e4" in checks.text and "failed" in checks.text


def test_one_api_across_backends_counts_agreement_and_shows_the_widest_difference():
    """The same Keras 3 API on two backends: a check both pass agrees, one that a backend passes and the other's
    known divergence absorbs differs (the widest difference shows both errors), one both fail alike counts in
    neither; a check on one backend only, Keras 2 (another library) and tf.nn are not compared."""
    api = "keras.losses.BinaryCrossentropy(from_logits=True)"
    records = [
        _record(f"tensorflow:{api}", "float32", "a", "passed", 0.4),
        _record(f"keras_torch:{api}", "float32", "a", "passed", 0.6),
        _record(f"tensorflow:{api}", "float64", "a", "passed", 0.5),
        _record(f"keras_torch:{api}", "float64", "a", "xfailed", 5.5e8, reason="[keras_narrows_64_bit_results] why"),
        _record(f"tensorflow:{api}", "float16", "b", "xfailed", 3.0, reason="[an_entry] why"),
        _record(f"keras_torch:{api}", "float16", "b", "xfailed", 4.0, reason="[an_entry] why"),
        _record(f"tensorflow:{api}", "bfloat16", "c", "passed", 0.1),
        _record(f"tf_keras:{api}", "float32", "a", "failed", 9.0),
        _record("tensorflow:nn.sigmoid_cross_entropy_with_logits", "float32", "a", "passed", 0.2),
    ]
    document = parity.document(records, ENVIRONMENT, interrupted=False)
    (row,) = document["backends"]
    assert (row["api"], row["backends"], row["compared"], row["agree"], row["differ"]) == (
        api, ["tensorflow", "keras_torch"], 3, 1, 1)
    assert row["worst"]["dtype"] == "float64" and row["worst"]["backends"]["keras_torch"]["verdict"] == (
        "keras_narrows_64_bit_results")
    text = parity.markdown(document)
    assert "## Keras 3 across backends" in text
    assert "a, float64 value: TensorFlow 0.5 ULP; torch 5.5e+08 ULP (keras_narrows_64_bit_results)" in text
    assert "id='backend-agreement'" in parity.html_page(document)
