"""The dashboard in a real headless Chromium: the `api` function (a process of its own, on this test's collections,
bucket and topics) answers the browser's GET with the page; its figures equal `get_statistics` and the backlog
`list_dead_letters`, its charts have a real size, it refreshes itself with new figures, and its console stays clean.

With STT_DASHBOARD_SCREENSHOT=PATH the page is also saved as a PNG there (`make screenshot`: docs/dashboard.png).
"""

from __future__ import annotations

import os
import random
from collections.abc import Iterator
from dataclasses import replace
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
import requests
from google.cloud import pubsub_v1, storage

from shared import DataManager, FinetuningDatasetPipeline, MetadataTracker
from shared.bootstrap import adapters
from shared.config import Settings
from shared.topology import build_topology
from stack import components, provision
from stack.local_stack import StackInfo, function_env
from stack.processes import Launched, free_port, launch, stop_group, wait_until_answers
from tests.e2e.browser import console_errors, headless_chromium, save_full_page
from tests.e2e.waiting import wait_for

pytestmark = pytest.mark.emulators

SCREENSHOT = os.environ.get("STT_DASHBOARD_SCREENSHOT")
SENTENCES = ["Please call Stella and ask her to bring these things with her from the store.",
             "The meeting is moved to 3:30 on Thursday.", "Turn left at the second light and park behind the bank.",
             "My account number ends in 456.", "Can you send the report to the whole team before noon?"]


@pytest.fixture
def settings(test_settings: Settings, namespace: str) -> Settings:
    """This test's collections, bucket and topics (so its dead-letter backlog is its own)."""
    return replace(test_settings, bucket=f"{namespace}-dash", topic_failures=f"{namespace}-failures",
                   topic_corrections=f"{namespace}-corrections", topic_metrics=f"{namespace}-metrics",
                   topic_bucket_events=f"{namespace}-bucket-events")


@pytest.fixture
def api_url(stack: StackInfo, settings: Settings, namespace: str, log_dir: Path, repo_root: Path) -> Iterator[str]:
    """The `api` function served on `settings`, as the stack serves its own; its topics and bucket made first."""
    topology = build_topology(settings)
    publisher, subscriber = pubsub_v1.PublisherClient(), pubsub_v1.SubscriberClient()
    provision.create_topics(topology, publisher)
    for sink in topology.dead_letter_sinks:
        provision.create_dead_letter_sink(settings.project, sink, subscriber)
    storage.Client(project=settings.project).create_bucket(settings.bucket)
    port = free_port()
    part = components.function_part(f"{namespace}-api", repo_root / "functions/api/main.py", "http", port,
                                    function_env(stack.env, settings), target="api")
    process: Launched = launch(part.name, part.argv, part.env, log_dir)
    try:
        wait_until_answers(process, part.ready_url, part.timeout_s, part.fix)
        yield f"http://127.0.0.1:{port}/"
    finally:
        stop_group(process.pid, grace_s=1.0)


def _workload(settings: Settings, output_dir: Path) -> None:
    """Cases (some corrected, one quarantined), a model history with a regression, two versions, progress notes
    of an import and a build, and two dead letters."""
    rng = random.Random(3)
    manager = DataManager(settings)
    for i in range(60):
        reference = SENTENCES[i % len(SENTENCES)]
        heard = [reference.upper(), reference.lower().rstrip(".?"), " ".join(reference.split()[:-2]),
                 reference.replace("the", "a")][i % 4]
        manager.store_failed_case(f"gs://stt-audio/dash/{i}.wav", heard, reference if i % 3 else None,
                                  error_score=round(rng.uniform(0.6, 1.0), 2), speaker_id=f"spk-{i % 8}",
                                  model_version=["whisper_base_v1", "whisper_base_v2"][i % 2])
    manager.store.quarantine("dash-bad-event", b"this is not JSON", "not JSON", "record_failure")
    tracker = MetadataTracker(settings)
    start = datetime.now(UTC).replace(microsecond=0) - timedelta(days=1)
    for step in range(12):
        wer = 0.32 - 0.01 * step + (0.12 if step == 10 else 0.0)
        tracker.record_performance(round(wer, 3), round(wer / 2, 3), model_version=
                                   "whisper_base_v2" if step >= 6 else "whisper_base_v1",
                                   recorded_at=start + timedelta(hours=step))
    pipeline = FinetuningDatasetPipeline(settings, output_dir=output_dir)
    first = pipeline.prepare_dataset(min_error_score=0.6, balance_error_types=False, create_version=True,
                                     version_name="weekly-1")
    assert "version_id" in first, first.get("quality_gate")
    second = pipeline.prepare_dataset(min_error_score=0.7, balance_error_types=False, create_version=True,
                                      version_name="weekly-2", parent_version=first["version_id"],
                                      allow_failed_quality=True)  # a failed version on the page too
    assert "version_id" in second, second.get("quality_gate")
    board = adapters(settings).progress
    board.note("import", "imports-backlog", {"name": "imports/backlog.jsonl", "state": "finished",
                                             "lines_done": 1001, "accepted": 1000, "duplicates": 0, "rejected": 1})
    board.note("import", "imports-today", {"name": "imports/today.jsonl", "state": "running", "lines_done": 4200,
                                           "accepted": 4190, "duplicates": 3, "rejected": 7})
    board.note("build", "requests-weekly", {"name": "dataset-requests/weekly.json", "state": "running",
                                            "stage": "writing the splits"})
    publisher = pubsub_v1.PublisherClient()
    dead = publisher.topic_path(settings.project, settings.dead_letter_topic(settings.topic_failures))
    for n in range(2):
        publisher.publish(dead, f'{{"audio_path": "gs://stt-audio/dash/dead-{n}.wav"}}'.encode(),
                          CloudPubSubDeadLetterSourceDeliveryCount="5").result(timeout=30)


def _call(url: str, op: str, **arguments: Any) -> Any:
    answer = requests.post(url, json={"op": op, **arguments}, timeout=60)
    assert answer.status_code == 200, answer.text
    return answer.json()["result"]


def _figures(driver: Any) -> dict[str, str]:
    # One script reads them all at once: element by element, a refresh swapping the content in between would
    # leave a stale reference.
    return dict(driver.execute_script(
        "return Object.fromEntries(Array.from(document.querySelectorAll('main [data-figure]'),"
        " (element) => [element.getAttribute('data-figure'), element.innerText.trim()]));"))


def _shown(stats: dict[str, Any], backlog: int) -> dict[str, str]:
    """The figures as the page writes them."""
    return {"total_cases": str(stats["total_cases"]), "corrected_cases": str(stats["corrected_cases"]),
            "correction_rate": f"{100 * stats['correction_rate']:.1f}%",
            "average_error_score": f"{stats['average_error_score']:.3f}",
            "quarantined_events": str(stats["quarantined_events"]), "dead_letters": str(backlog)}


def test_the_dashboard_shows_the_live_figures_with_real_charts_and_refreshes_itself(
    settings: Settings, api_url: str, tmp_path: Path
) -> None:
    from selenium.webdriver.common.by import By

    _workload(settings, tmp_path / "datasets")
    stats = _call(api_url, "get_statistics")
    backlog = _call(api_url, "list_dead_letters")["total"]
    assert (stats["total_cases"], stats["quarantined_events"], backlog) == (60, 1, 2)
    versions = _call(api_url, "list_versions")
    assert len(versions) == 2

    with headless_chromium() as driver:
        driver.get(api_url + "?refresh=0")  # still while it is read element by element
        assert driver.title == "sttdata dashboard", driver.page_source[:3000]
        assert _figures(driver) == _shown(stats, backlog)

        charts = driver.find_elements(By.CSS_SELECTOR, "figure.chart svg")
        assert [c.find_element(By.XPATH, "..").get_attribute("data-chart") for c in charts] == [
            "error-types", "quality", "wer", "cer"]
        for chart in charts:
            assert chart.rect["width"] >= 400 and 180 <= chart.rect["height"] <= 600, chart.rect
        wer = driver.find_element(By.CSS_SELECTOR, 'figure[data-chart="wer"]').text
        assert "whisper_base_v1" in wer and "whisper_base_v2" in wer and "regression (1)" in wer
        regressions = driver.find_element(By.CSS_SELECTOR, '[data-list="regressions"]').text
        assert "WER 0.340" in regressions and "whisper_base_v2" in regressions
        for error_type in stats["error_type_distribution"]:
            assert error_type in driver.find_element(By.CSS_SELECTOR, 'figure[data-chart="error-types"]').text

        newest, oldest = versions[0]["version_id"], versions[1]["version_id"]
        lineage = driver.find_element(By.CSS_SELECTOR, "[data-lineage]").text
        assert lineage == f"{oldest} → {newest}"
        row = driver.find_element(By.CSS_SELECTOR, f'tr[data-version="{newest}"]').text
        score = versions[0]["quality_report"]["quality_metrics"]["overall_score"]
        assert "current" in row and oldest in row and f"{score:.3f} failed" in row
        assert f"{versions[1]['quality_report']['quality_metrics']['overall_score']:.3f} passed" in \
            driver.find_element(By.CSS_SELECTOR, f'tr[data-version="{oldest}"]').text
        imports = driver.find_element(By.CSS_SELECTOR, '[data-table="imports"]').text
        assert "imports/today.jsonl running 4200 lines 4190 3 7" in imports
        assert "imports/backlog.jsonl finished 1001 lines 1000 0 1" in imports
        assert "writing the splits" in driver.find_element(By.CSS_SELECTOR, '[data-table="builds"]').text

        # Live: a new case shows up without a reload.
        driver.get(api_url + "?refresh=2")
        assert _figures(driver) == _shown(stats, backlog)
        manager = DataManager(settings)
        manager.store_failed_case("gs://stt-audio/dash/late.wav", "A LATE ONE", "A late one.", error_score=0.9)
        later = _call(api_url, "get_statistics")
        assert later["total_cases"] == 61
        wait_for(lambda: _figures(driver) == _shown(later, backlog), timeout_s=60, interval_s=0.5)
        assert int(driver.find_element(By.TAG_NAME, "body").get_attribute("data-refreshes")) >= 1
        assert console_errors(driver) == []
        if SCREENSHOT:
            save_full_page(driver, Path(SCREENSHOT))
