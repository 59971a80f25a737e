"""The dashboard page from given facts (no stack): its figures, its charts as inline SVG of one size, its tables,
escaping, the refresh period, and which GET of the api is answered the page."""

from __future__ import annotations

import re
from datetime import UTC, datetime, timedelta
from pathlib import Path
from typing import Any

import pytest
from flask import Flask

from shared.dashboard.page import refresh_seconds, render_page

REPO_ROOT = Path(__file__).resolve().parents[2]
T0 = datetime(2026, 12, 1, tzinfo=UTC)


def sample_facts() -> dict[str, Any]:
    wer = [{"recorded_at": (T0 + timedelta(hours=h)).isoformat(), "value": v}
           for h, v in enumerate((0.3, 0.29, 0.28, 0.27, 0.4))]
    return {
        "generated_at": T0.isoformat(),
        "statistics": {"total_cases": 1201, "corrected_cases": 1087, "correction_rate": 1087 / 1201,
                       "average_error_score": 0.6, "quarantined_events": 2,
                       "error_type_distribution": {"all_caps": 300, "truncation": 280, "<script>": 1}},
        "dead_letters": {"total": 1000, "complete": False, "topics": {"transcription-failures": 1000}},
        "performance": {"series": {"wer": {"m<1>": wer}, "cer": {}},
                        "regressions": [{"metric": "wer", "value": 0.4, "recorded_at": wer[-1]["recorded_at"],
                                         "model_version": "m<1>", "window_mean": 0.285,
                                         "relative_change_percent": 40.4}],
                        "best_model": {"model_version": "m<1>", "mean_wer": 0.308, "count": 5}, "record_count": 5},
        "versions": {"total": 2, "current_version": "v_b", "current_lineage": ["v_a", "v_b"],
                     "shown": [{"version_id": "v_b", "created_at": T0.isoformat(), "samples": 900,
                                "quality_score": 0.97, "quality_passed": True, "parent_version": "v_a",
                                "current": True},
                               {"version_id": "v_a", "created_at": T0.isoformat(), "samples": 100,
                                "quality_score": 0.81, "quality_passed": False, "parent_version": None,
                                "current": False}]},
        "recent_work": {"imports": [{"name": "imports/day2.jsonl", "state": "running", "lines_done": 5000,
                                     "accepted": 4990, "duplicates": 0, "rejected": 10}],
                        "builds": [{"name": "dataset-requests/typo.json", "state": "rejected", "stage": "done"}]},
    }


def figure(page: str, name: str) -> str:
    found = re.search(rf'data-figure="{name}">\s*([^<]*)<', page)
    assert found, name
    return found.group(1).strip()


def test_the_page_shows_the_figures_charts_and_tables_of_its_facts() -> None:
    page = render_page(sample_facts(), refresh_s=15)
    assert [figure(page, n) for n in ("total_cases", "corrected_cases", "correction_rate", "average_error_score",
                                       "quarantined_events", "dead_letters")] == [
        "1201", "1087", "90.5%", "0.600", "2", "1000+"]
    charts = re.findall(r'<figure class="chart" data-chart="([a-z-]+)"><svg [^>]*width="([\d.]+)pt" '
                        r'height="([\d.]+)pt"', page)
    assert [c[0] for c in charts] == ["error-types", "quality", "wer", "cer"]
    assert {(float(w), float(h)) for _, w, h in charts} == {(460.8, 216.0)}
    assert "regression (1)" in page and "no evaluations yet" in page  # WER circled, CER empty
    assert "v_a → v_b" in page and 'data-version="v_b"' in page and "passed" in page and "failed" in page
    assert "<progress></progress> 5000 lines" in page and 'class="state bad">rejected' in page
    assert 'data-refresh-seconds="15"' in page
    assert "<script>" not in page.replace("<script>\n// Refresh", "")  # data is escaped, in HTML and in SVG
    assert "m&lt;1&gt;" in page


def test_a_running_import_that_notes_its_bytes_shows_a_percentage() -> None:
    facts = sample_facts()
    facts["recent_work"]["imports"][0] |= {"bytes_read": 2_500, "bytes_total": 10_000}
    page = render_page(facts, refresh_s=15)
    assert re.search(r'<progress\s+value="2500" max="10000"></progress>\s+25%,\s+5000 lines', page), page


def test_an_empty_deployment_still_draws_every_chart_and_an_unreadable_backlog_says_so() -> None:
    facts = sample_facts()
    facts["statistics"] |= {"total_cases": 0, "corrected_cases": 0, "correction_rate": 0.0,
                            "average_error_score": None, "error_type_distribution": {}}
    facts["performance"] = {"series": {"wer": {}, "cer": {}}, "regressions": [], "best_model": None,
                            "record_count": 0}
    facts["versions"] = {"total": 0, "current_version": None, "current_lineage": [], "shown": []}
    facts["dead_letters"] = {"total": None, "complete": False, "topics": {}, "error": "PermissionDenied: no"}
    page = render_page(facts, refresh_s=0)
    assert figure(page, "average_error_score") == "-" and figure(page, "dead_letters") == "?"
    assert "(unavailable)" in page and 'title="PermissionDenied: no"' in page
    assert page.count("<svg ") == 4 and "no cases yet" in page and "no versions yet" in page
    assert "No regression." in page and "No version yet" in page


@pytest.mark.parametrize(("asked", "seconds"), [(None, 30), ("5", 5), ("0", 0), ("-3", 0), ("1", 2),
                                                ("99999", 3600), ("soon", 30)])
def test_the_refresh_period_is_clamped(asked: str | None, seconds: int) -> None:
    assert refresh_seconds(asked) == seconds


@pytest.mark.parametrize(("path", "accept", "dashboard"), [
    ("/", "text/html,application/xhtml+xml,application/xml;q=0.9,*/*;q=0.8", True),  # a browser
    ("/", "*/*", False),  # curl, requests, a readiness probe
    ("/", "application/json", False),
    ("/favicon.ico", "text/html", False),
])
def test_only_a_browser_s_get_of_the_root_is_answered_the_page(path: str, accept: str, dashboard: bool) -> None:
    from functions.api.main import wants_dashboard

    with Flask("probe").test_request_context(path, headers={"Accept": accept}):
        from flask import request

        assert wants_dashboard(request) is dashboard
