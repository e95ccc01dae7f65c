"""The MLflow UI in a real headless Chromium: a user finds the sweep and compares two trials.

One experiment holds an Optuna sweep and a Keras Tuner sweep of the same space; the compare
view of one trial from each must show the same parameter, metric and tag rows, filled for both.
Screenshots go to test-artifacts/ (or $TEST_ARTIFACTS) for a person to look at.
"""

from __future__ import annotations

import json
import os
import shutil
import socket
import subprocess
import sys
import time
import urllib.parse
import urllib.request
from pathlib import Path

import pytest
from mlflow.tracking import MlflowClient
from selenium.webdriver.common.by import By
from selenium.webdriver.support.ui import WebDriverWait

from tests.test_end_to_end import QUICK, SMALL, cli

pytestmark = pytest.mark.slow
CHROMIUM, DRIVER = shutil.which("chromium"), shutil.which("chromedriver")
ARTIFACTS = Path(os.environ.get("TEST_ARTIFACTS", Path(__file__).parents[1] / "test-artifacts"))
BOTH = ["optimizer", "learning_rate", "batch_size", "n_layers", "units_l0", "dropout_l0", "epochs"]


@pytest.fixture
def browser():
    if not (CHROMIUM and DRIVER):
        if os.environ.get("CI"):
            pytest.fail("chromium and chromedriver are missing; .ci/run installs them with apt")
        pytest.skip("no chromium/chromedriver: apt-get install chromium chromium-driver")
    from selenium import webdriver
    from selenium.webdriver.chrome.service import Service

    options = webdriver.ChromeOptions()
    options.binary_location = CHROMIUM
    for arg in ("--headless=new", "--no-sandbox", "--disable-dev-shm-usage", "--window-size=1600,1000"):
        options.add_argument(arg)
    driver = webdriver.Chrome(service=Service(DRIVER), options=options)
    yield driver
    driver.quit()


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return s.getsockname()[1]


@pytest.fixture
def ui(tmp_path):
    port = free_port()
    server = subprocess.Popen([sys.executable, "-m", "mnist_sweep", "ui", "--port", str(port)], cwd=tmp_path,
                              stdout=subprocess.DEVNULL, stderr=subprocess.DEVNULL, start_new_session=True)
    base = f"http://127.0.0.1:{port}"
    deadline = time.monotonic() + 180
    while True:
        try:
            urllib.request.urlopen(f"{base}/health", timeout=5).close()
            break
        except OSError:
            assert server.poll() is None and time.monotonic() < deadline, "the MLflow UI did not start"
            time.sleep(1)
    yield base
    os.killpg(server.pid, 15)
    server.wait(timeout=30)


def body(driver) -> str:
    return driver.find_element(By.TAG_NAME, "body").text


def wait_for(driver, text: str) -> None:
    WebDriverWait(driver, 90).until(lambda d: text in body(d), f"'{text}' never appeared")


def with_query(url: str, **params: str) -> str:
    """`url`, a route of the UI (after '#'), with `params` set in its query: the link's query
    varies (a CI run appended to a link that had none, and the UI showed 'Page Not Found')."""
    route, _, query = url.partition("?")
    merged = {**dict(urllib.parse.parse_qsl(query)), **params}
    return f"{route}?{urllib.parse.urlencode(merged, quote_via=urllib.parse.quote)}"


def test_both_engines_trials_sit_side_by_side_in_the_mlflow_compare_view(real_data, tmp_path, ui, browser):
    for engine, extra in (("optuna", QUICK), ("kerastuner", ["--tuner", "random", *SMALL])):
        done = cli(tmp_path, engine, "--trials", "2", "--study-name", engine, "--data", str(real_data), *extra,
                   "--no-warm-start")
        assert done.returncode == 0, done.stderr[-2000:]
    ARTIFACTS.mkdir(parents=True, exist_ok=True)

    browser.get(f"{ui}/#/experiments")  # the experiment list, as a user lands on it
    wait_for(browser, "mnist-sweep")
    browser.find_element(By.LINK_TEXT, "mnist-sweep").click()
    wait_for(browser, "Training runs")
    runs_page = browser.find_element(By.XPATH, "//a[.//text()='Training runs']").get_attribute("href")
    browser.get(with_query(runs_page, workflowType="machine_learning", searchFilter="tags.run_kind = 'trial'"))
    # Each study's parent run folds its trials under it. The count of matching runs shows
    # before the rows do (a CI run failed on that race), so wait for both parents' expanders.
    def expanders(d):
        return d.find_elements(By.CSS_SELECTOR, ".ag-row button.du-bois-light-btn-link")
    WebDriverWait(browser, 90).until(lambda d: len(expanders(d)) >= 2, "the two parent runs never appeared")
    for i in range(2):
        expanders(browser)[i].click()  # found again: the grid re-renders after each click
        time.sleep(1)
    wait_for(browser, "trial-001")
    rows = [row.text for row in browser.find_elements(By.CSS_SELECTOR, ".ag-row")]
    assert sum(row.startswith("Pin run") for row in rows) and sum("trial-00" in row for row in rows) == 4
    browser.save_screenshot(str(ARTIFACTS / "mlflow-runs.png"))

    client = MlflowClient(f"sqlite:///{tmp_path / 'mlruns' / 'mlflow.db'}")
    experiment = client.get_experiment_by_name("mnist-sweep").experiment_id
    pair = [client.search_runs([experiment], f"tags.run_kind = 'trial' and tags.study = '{engine}'")[0]
            for engine in ("optuna", "kerastuner")]
    ids = json.dumps([run.info.run_id for run in pair])
    browser.get(f"{ui}/#/compare-runs?runs={urllib.parse.quote(ids)}&experiments={urllib.parse.quote(json.dumps([experiment]))}")
    wait_for(browser, "engine optuna keras-tuner")  # one tag row, one value per engine
    text = body(browser)
    browser.save_screenshot(str(ARTIFACTS / "mlflow-compare.png"))
    (ARTIFACTS / "mlflow-compare.txt").write_text(text)
    lines = text.splitlines()
    params, metrics, tags = (lines[lines.index(a):lines.index(b)] for a, b in
                             (("Parameters", "Metrics"), ("Metrics", "Artifacts"), ("Tags", "MLflow Assistant")))
    for name in BOTH:  # a parameter every trial has shows a value for each run
        (row,) = [line for line in params if line.split(" ")[0] == name]
        assert len(row.split(" ")) == 3, row
    for tag in ("run_kind trial trial", "outcome completed completed", "space mlp mlp", "data_digest"):
        assert any(line.startswith(tag) for line in tags), tag
    keys = set(pair[0].data.metrics)
    assert keys == set(pair[1].data.metrics) and "val_accuracy" in keys  # the same schema in the store
    values = [line for line in metrics[2:] if _number(line)]
    assert len(values) == 2 * len(keys)  # and on screen: every metric with a value for both runs
    assert {"epochs_run", "rss_mb"} <= {line for line in metrics[2:] if not _number(line)} <= keys


def _number(text: str) -> bool:
    try:
        float(text)
    except ValueError:
        return False
    return True
