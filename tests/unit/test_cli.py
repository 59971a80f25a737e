"""The `sttdata` command line against a stub api served over real HTTP, the real `api` function on fakes, and an
in-memory bucket: what each command sends, shows, and how each error reads (one line, exit status 1)."""

from __future__ import annotations

import io
import json
import threading
import tomllib
from collections.abc import Callable, Iterator
from pathlib import Path
from typing import Any, BinaryIO

import orjson
import pytest
from click.testing import CliRunner, Result
from flask import Flask, request
from werkzeug.serving import make_server

from shared import bootstrap
from shared.config import Settings
from sttdata_cli import config as cli_config
from sttdata_cli import remote
from sttdata_cli.errors import CliError
from sttdata_cli.main import Session, cli, count_rows, main
from sttdata_cli.remote import ApiClient
from tests.unit.fake_dataset_bucket import FakeBucket, FakeCases, FakeLedger, FakeQuarantine
from tests.unit.fake_progress import InMemoryProgressBoard
from tests.unit.test_dataset_build_service import make_cases

REPO_ROOT = Path(__file__).resolve().parents[2]
Handler = Callable[[dict[str, Any]], tuple[int, Any]]


class StubApi:
    """An HTTP server answering `{"op": ...}` posts from a table of handlers; every call and header is kept."""

    def __init__(self, handlers: dict[str, Handler]) -> None:
        self.handlers = handlers
        self.calls: list[dict[str, Any]] = []
        self.headers: list[dict[str, str]] = []
        app = Flask("stub-api")

        @app.post("/")
        def answer() -> Any:
            body = request.get_json()
            self.calls.append(body)
            self.headers.append(dict(request.headers))
            handler = self.handlers.get(body["op"])
            if handler is None:
                return {"error": f"unknown op {body['op']!r}"}, 400
            status, result = handler(body)
            return (result, status) if status >= 400 else ({"op": body["op"], "result": result}, status)

        self.server = make_server("127.0.0.1", 0, app, threaded=True)
        self.url = f"http://127.0.0.1:{self.server.server_port}"
        self.thread = threading.Thread(target=self.server.serve_forever, daemon=True)
        self.thread.start()

    def ops(self) -> list[str]:
        return [call["op"] for call in self.calls]

    def stop(self) -> None:
        self.server.shutdown()


class MemoryFiles:
    """The CLI's bucket in memory, on the tests' FakeBucket (the same one a fake api may read)."""

    def __init__(self, bucket: FakeBucket | None = None) -> None:
        self.store = bucket or FakeBucket()
        self.bucket = self.store.bucket
        self.content_types: dict[str, str] = {}

    def upload(self, path: Path, name: str, content_type: str) -> int:
        return self.put(name, path.read_bytes(), content_type)

    def put(self, name: str, data: bytes, content_type: str) -> int:
        self.store.put(name, data, content_type)
        self.content_types[name] = content_type
        return self.store.generation(name)

    def download(self, name: str, sink: BinaryIO) -> None:
        data = self.store.get(name)
        if data is None:
            raise FileNotFoundError(name)
        for start in range(0, len(data), 7):  # streamed: many small writes
            sink.write(data[start:start + 7])


@pytest.fixture
def files() -> MemoryFiles:
    return MemoryFiles()


def run(args: list[str], api: StubApi | None, files: MemoryFiles, url: str | None = None) -> Result:
    session = Session(api=ApiClient(url or (api.url if api else "http://127.0.0.1:9")), files=files, poll_s=0.0)
    return CliRunner().invoke(cli, args, obj=session, env={"COLUMNS": "200"})


@pytest.fixture
def stub() -> Iterator[Callable[[dict[str, Handler]], StubApi]]:
    started: list[StubApi] = []

    def start(handlers: dict[str, Handler]) -> StubApi:
        started.append(StubApi(handlers))
        return started[-1]

    yield start
    for api in started:
        api.stop()


def one_line_error(result: Result) -> str:
    assert result.exit_code == 1, result.output
    assert "Traceback" not in result.output
    lines = [line for line in result.output.splitlines() if line.startswith("Error: ")]
    assert len(lines) == 1, result.output
    return lines[0]


def sequence(*answers: dict[str, Any]) -> Handler:
    """A handler answering each call with the next answer, the last one for ever."""
    queue = list(answers)

    def answer(body: dict[str, Any]) -> tuple[int, Any]:
        return 200, queue.pop(0) if len(queue) > 1 else queue[0]

    return answer


# -- the console script ---------------------------------------------------------------------------------------


def test_pyproject_installs_the_sttdata_console_script_and_its_package() -> None:
    with (REPO_ROOT / "pyproject.toml").open("rb") as fh:
        project = tomllib.load(fh)
    assert project["project"]["scripts"]["sttdata"] == "sttdata_cli.main:main"
    assert "sttdata_cli*" in project["tool"]["setuptools"]["packages"]["find"]["include"]
    assert any(dep.startswith("click") for dep in project["project"]["dependencies"])
    assert any(dep.startswith("rich") for dep in project["project"]["dependencies"])


def test_help_documents_every_command(capsys: pytest.CaptureFixture[str]) -> None:
    with pytest.raises(SystemExit) as exited:
        main(["--help"])
    assert exited.value.code == 0
    shown = capsys.readouterr().out
    for command in ("status", "import", "build", "versions", "pull", "rollback", "dead-letters", "report"):
        assert f"  {command} " in shown
        assert CliRunner().invoke(cli, [command, "--help"]).exit_code == 0


# -- configuration ------------------------------------------------------------------------------------------


def test_the_stack_env_file_is_found_upwards_and_wins_over_the_environment(tmp_path: Path) -> None:
    (tmp_path / ".local").mkdir()
    (tmp_path / ".local" / "stack.env").write_text(
        "export GOOGLE_CLOUD_PROJECT=demo-x\nexport STT_API_URL='http://127.0.0.1:8123'\n# a comment\n\n"
        "export STT_BUCKET=b-local\n")
    (tmp_path / "deep" / "er").mkdir(parents=True)
    found = cli_config.load_config(None, {"STT_BUCKET": "from-env", "HOME": "/h"}, tmp_path / "deep" / "er")
    assert found.source == tmp_path / ".local" / "stack.env"
    assert (found.api_url, found.settings.bucket, found.env["HOME"]) == ("http://127.0.0.1:8123", "b-local", "/h")

    alone = cli_config.load_config("none", {"STT_API_URL": "https://api.example/"}, tmp_path)
    assert alone.source is None and alone.api_url == "https://api.example"
    with pytest.raises(CliError, match="make up"):
        cli_config.load_config(None, {}, Path("/")).api_url  # noqa: B018
    with pytest.raises(CliError, match="does not exist"):
        cli_config.load_config(str(tmp_path / "missing.env"), {}, tmp_path)
    (tmp_path / "bad.env").write_text("export NOPE\n")
    with pytest.raises(CliError, match="line 1"):
        cli_config.load_config(str(tmp_path / "bad.env"), {}, tmp_path)


def test_a_missing_stack_is_one_line_that_says_to_start_it(tmp_path: Path, files: MemoryFiles) -> None:
    result = CliRunner().invoke(cli, ["--env-file", "none", "status"], obj=Session(files=files),
                                env={"STT_API_URL": ""})
    assert "STT_API_URL is not set" in one_line_error(result)
    down = run(["status"], None, files, url="http://127.0.0.1:9")  # nothing listens there
    assert "cannot reach the api" in one_line_error(down) and "make up" in one_line_error(down)


def test_an_https_api_gets_an_identity_token_and_http_gets_none(
    monkeypatch: pytest.MonkeyPatch, stub: Callable[[dict[str, Handler]], StubApi]
) -> None:
    assert remote.identity_token("http://127.0.0.1:8080") is None
    monkeypatch.setenv("STT_ID_TOKEN", "from-env")
    assert remote.identity_token("https://api-xyz.a.run.app") == "from-env"
    api = stub({"get_statistics": lambda body: (200, {"total_cases": 1})})
    fetched: list[str] = []
    client = ApiClient(api.url, token=lambda url: fetched.append(url) or "tok-1")
    client.call("get_statistics")
    client.call("get_statistics")
    assert fetched == [api.url]  # fetched once per run
    assert all(h.get("Authorization") == "Bearer tok-1" for h in api.headers)


def test_a_refused_call_says_which_role_is_missing(stub: Callable[[dict[str, Handler]], StubApi],
                                                   files: MemoryFiles) -> None:
    api = stub({"get_statistics": lambda body: (403, {"error": "forbidden"})})
    assert "roles/run.invoker" in one_line_error(run(["status"], api, files))


def test_an_unexpected_error_is_one_line_too(stub: Callable[[dict[str, Handler]], StubApi], files: MemoryFiles,
                                            tmp_path: Path) -> None:
    from shared.domain.versions import manifest_checksum

    manifest = {"train.jsonl": {"sha256": "0" * 64, "bytes": 1}}
    entry = {"version_id": "v1", "dataset_id": "d", "files": manifest, "checksum": manifest_checksum(manifest)}
    api = stub({"get_version": lambda body: (200, entry)})

    def broken(name: str, sink: BinaryIO) -> None:
        raise RuntimeError("the disk is on fire\nsecond line")

    files.download = broken  # type: ignore[method-assign]
    result = run(["pull", "v1", str(tmp_path / "out")], api, files)
    assert "RuntimeError: the disk is on fire (set STT_DEBUG=1" in one_line_error(result)
    assert not list((tmp_path / "out").rglob("*.part"))

    entry["checksum"] = "not the manifest's"
    assert "damaged" in one_line_error(run(["pull", "v1", str(tmp_path / "out")], api, files))


# -- status --------------------------------------------------------------------------------------------------


def test_status_shows_the_figures_and_recent_work(stub: Callable[[dict[str, Handler]], StubApi],
                                                 files: MemoryFiles) -> None:
    stats = {"total_cases": 1234, "corrected_cases": 617, "correction_rate": 0.5, "average_error_score": 0.42,
             "quarantined_events": 7, "error_type_distribution": {"casing": 3, "substitution": 9}}
    recent = {"imports": [{"name": "imports/day1.jsonl", "state": "running", "lines_done": 5000, "accepted": 4990,
                           "duplicates": 0, "rejected": 10, "updated_at": "2026-12-01T10:00:00Z"}],
              "builds": [{"name": "dataset-requests/weekly.json", "state": "running",
                          "stage": "writing the dataset"}]}
    api = stub({"get_statistics": lambda b: (200, stats), "recent_work": lambda b: (200, recent)})
    result = run(["status", "--limit", "3"], api, files)
    assert result.exit_code == 0, result.output
    for shown in ("1234", "617", "50.0%", "0.420", "quarantined events", "imports/day1.jsonl", "4990",
                  "writing the dataset", "substitution 9"):
        assert shown in result.output
    assert api.calls[1] == {"op": "recent_work", "limit": 3}
    as_json = json.loads(run(["status", "--json"], api, files).output)
    assert as_json["statistics"]["quarantined_events"] == 7 and as_json["builds"][0]["stage"]


# -- import --------------------------------------------------------------------------------------------------


def test_import_uploads_and_waits_with_the_lines_stored(stub: Callable[[dict[str, Handler]], StubApi],
                                                       files: MemoryFiles, tmp_path: Path) -> None:
    source = tmp_path / "day1.jsonl"
    source.write_bytes(b"".join(b'{"n": %d}\n' % i for i in range(1000)))
    api = stub({"import_status": sequence(
        {"state": "queued"},
        {"state": "running", "lines_done": 400, "accepted": 390, "rejected": 10},
        {"state": "finished", "lines_done": 1000, "accepted": 980, "duplicates": 0, "rejected": 20,
         "result": {"lines": 1000, "rejected_lines_uri": "gs://b/import_results/day1.rejected.jsonl"}},
    )})
    result = run(["import", str(source), "--wait"], api, files)
    assert result.exit_code == 0, result.output
    assert files.store.get("imports/day1.jsonl") == source.read_bytes()
    assert files.content_types["imports/day1.jsonl"] == "application/x-ndjson"
    generation = files.store.generation("imports/day1.jsonl")
    assert api.calls[0] == {"op": "import_status", "name": "imports/day1.jsonl", "generation": generation}
    assert len(api.calls) == 3
    assert "1000/1000" in result.output and "980 stored" in result.output
    assert "gs://b/import_results/day1.rejected.jsonl" in result.output


def test_import_wait_shows_a_percentage_of_the_bytes_read_when_the_import_notes_them(
    stub: Callable[[dict[str, Handler]], StubApi], files: MemoryFiles, tmp_path: Path
) -> None:
    source = tmp_path / "day2.jsonl"
    source.write_bytes(b"".join(b'{"n": %d}\n' % i for i in range(1000)))
    size = source.stat().st_size
    api = stub({"import_status": sequence(
        {"state": "running", "lines_done": 250, "accepted": 250, "bytes_read": size // 4, "bytes_total": size},
        {"state": "finished", "lines_done": 1000, "accepted": 1000, "duplicates": 0, "rejected": 0,
         "bytes_read": size, "bytes_total": size, "result": {"lines": 1000}},
    )})
    result = run(["import", str(source), "--wait"], api, files)
    assert result.exit_code == 0, result.output
    assert "100%" in result.output and f"1000 lines, {size / 1000:.1f} kB of {size / 1000:.1f} kB" in result.output


def test_the_import_bar_follows_the_bytes_read_else_the_lines_counted() -> None:
    from sttdata_cli.main import _import_bar

    assert _import_bar({"lines_done": 10, "bytes_read": 300, "bytes_total": 1200}, 40) == {
        "total": 1200, "completed": 300, "detail": "10 lines, 300 bytes of 1.2 kB"}
    assert _import_bar({"lines_done": 10, "bytes_total": 1200}, 40) == {  # a Parquet import: its rows counted
        "total": 40, "completed": 10, "detail": "10/40 lines"}


def test_an_import_without_wait_only_uploads_and_a_rejected_one_fails(
    stub: Callable[[dict[str, Handler]], StubApi], files: MemoryFiles, tmp_path: Path
) -> None:
    source = tmp_path / "x.parquet"
    source.write_bytes(b"not parquet")
    api = stub({"import_status": sequence({"state": "rejected", "reason": "not a readable Parquet file"})})
    quick = run(["import", str(source), "--name", "bulk/x2.parquet".replace("/", "_")], api, files)
    assert quick.exit_code == 0 and api.calls == [] and files.store.get("imports/bulk_x2.parquet")

    source.write_bytes(_parquet_bytes(3))
    waited = run(["import", str(source), "--wait"], api, files)
    assert "ended rejected: not a readable Parquet file" in one_line_error(waited)
    wrong = run(["import", str(source), "--name", "x.csv"], api, files)
    assert "ends with .jsonl or .parquet" in one_line_error(wrong)


def _parquet_bytes(rows: int) -> bytes:
    import pyarrow as pa
    import pyarrow.parquet as pq

    sink = io.BytesIO()
    pq.write_table(pa.table({"n": list(range(rows))}), sink)
    return sink.getvalue()


def test_rows_are_counted_as_the_import_counts_lines(tmp_path: Path) -> None:
    for data, lines in ((b"", 0), (b"a\n", 1), (b"a\nb", 2), (b"a\n\nb\n", 3)):
        (tmp_path / "f.jsonl").write_bytes(data)
        assert count_rows(tmp_path / "f.jsonl") == lines
    (tmp_path / "f.parquet").write_bytes(_parquet_bytes(5))
    assert count_rows(tmp_path / "f.parquet") == 5


def test_a_wait_that_outlasts_its_timeout_says_how_to_follow_up(
    stub: Callable[[dict[str, Handler]], StubApi], files: MemoryFiles, tmp_path: Path
) -> None:
    source = tmp_path / "slow.jsonl"
    source.write_bytes(b"{}\n")
    api = stub({"import_status": sequence({"state": "running", "lines_done": 0})})
    assert "sttdata status" in one_line_error(run(["import", str(source), "--wait", "--timeout", "0"], api, files))


# -- build -----------------------------------------------------------------------------------------------------


BUILT = {"status": "built", "dataset_id": "weekly-1", "version_id": "v_weekly_1", "total_samples": 30,
         "split_sizes": {"train": 24, "val": 3, "test": 3}, "quality_passed": True, "checksum": "abc",
         "gcs_path": "gs://b/finetuning_datasets/weekly-1/"}


def test_build_uploads_the_request_from_options_and_waits_for_its_result(
    stub: Callable[[dict[str, Handler]], StubApi], files: MemoryFiles
) -> None:
    api = stub({"build_status": sequence(
        {"state": "queued", "stage": "waiting"}, {"state": "running", "stage": "writing the dataset"},
        {"state": "built", "stage": "done", "result": BUILT})})
    result = run(["build", "--name", "weekly", "--min-error-score", "0.7", "--version-name", "w1", "--no-balance",
                  "--wait"], api, files)
    assert result.exit_code == 0, result.output
    assert orjson.loads(files.store.get("dataset-requests/weekly.json") or b"") == {
        "min_error_score": 0.7, "version_name": "w1", "balance_error_types": False}
    assert api.calls[0]["name"] == "dataset-requests/weekly.json"
    assert api.calls[0]["generation"] == files.store.generation("dataset-requests/weekly.json")
    assert "built weekly-1: 30 samples (train 24, val 3, test 3)" in result.output
    assert "v_weekly_1" in result.output


def test_build_takes_a_request_file_with_options_over_it_and_refuses_a_bad_one_before_uploading(
    stub: Callable[[dict[str, Handler]], StubApi], files: MemoryFiles, tmp_path: Path
) -> None:
    request_file = tmp_path / "monthly.json"
    request_file.write_text(json.dumps({"min_error_score": 0.2, "max_samples": 100}))
    ok = run(["build", str(request_file), "--max-samples", "50"], stub({}), files)
    assert ok.exit_code == 0, ok.output
    assert orjson.loads(files.store.get("dataset-requests/monthly.json") or b"") == {
        "min_error_score": 0.2, "max_samples": 50}

    bad = run(["build", "--name", "oops", "--min-error-score", "2"], stub({}), files)
    assert "min_error_score" in one_line_error(bad)
    assert files.store.get("dataset-requests/oops.json") is None


@pytest.mark.parametrize(("result", "said"), [
    ({"status": "no eligible cases"}, "lower --min-error-score"),
    ({"status": "rejected", "reason": "parent_version 'v_x' is not in the registry"}, "parent_version 'v_x'"),
])
def test_a_build_that_builds_nothing_exits_1_saying_why(
    stub: Callable[[dict[str, Handler]], StubApi], files: MemoryFiles, result: dict[str, Any], said: str
) -> None:
    api = stub({"build_status": sequence({"state": result["status"], "stage": "done", "result": result})})
    assert said in one_line_error(run(["build", "--name", "n", "--wait"], api, files))


# -- versions, pull, rollback, report on the real api function over fakes ------------------------------------


@pytest.fixture
def real_api(files: MemoryFiles) -> Iterator[StubApi]:
    """The `api` function itself (functions-framework's app) over HTTP, on fakes sharing the CLI's bucket, with
    two versions built."""
    import functions_framework

    settings = Settings.from_env()
    ledger, cases = FakeLedger(), FakeCases(make_cases())
    for name, body in (("first", {"min_error_score": 0.5, "version_name": "first"}),
                       ("second", {"min_error_score": 0.5, "version_name": "second", "max_samples": 20})):
        generation = files.put(f"dataset-requests/{name}.json", orjson.dumps(body), "application/json")
        from shared.services.dataset_builds import run_build_request

        run_build_request(f"dataset-requests/{name}.json", str(generation), ledger=ledger, cases=cases,
                          bucket=files.store, quarantine=FakeQuarantine())
    fakes = bootstrap.Adapters(settings, cases=cases, bucket=files.store, builds=ledger,
                               progress=InMemoryProgressBoard())
    app = functions_framework.create_app("api", str(REPO_ROOT / "functions/api/main.py"), "http")
    server = make_server("127.0.0.1", 0, app, threaded=True)
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    holder = StubApi.__new__(StubApi)
    holder.url = f"http://127.0.0.1:{server.server_port}"
    with bootstrap.use(fakes):
        thread.start()
        yield holder
        server.shutdown()


def test_versions_lists_the_registry_with_the_current_one_marked(real_api: StubApi, files: MemoryFiles) -> None:
    result = run(["versions"], real_api, files)
    assert result.exit_code == 0, result.output
    rows = [line for line in result.output.splitlines() if "v_" in line]
    assert len(rows) == 2 and "*" in rows[0] and "v_second" in rows[0]
    listed = json.loads(run(["versions", "--json"], real_api, files).output)
    assert listed["current_version"].startswith("v_second") and len(listed["versions"]) == 2


def test_pull_downloads_every_file_verified_and_a_changed_one_is_refused(
    real_api: StubApi, files: MemoryFiles, tmp_path: Path
) -> None:
    listed = json.loads(run(["versions", "--json"], real_api, files).output)
    entry = listed["versions"][0]
    out = tmp_path / "pulled"
    result = run(["pull", entry["version_id"], str(out)], real_api, files)
    assert result.exit_code == 0, result.output
    import hashlib

    for name, expected in entry["files"].items():
        assert hashlib.sha256((out / name).read_bytes()).hexdigest() == expected["sha256"]
    assert not list(out.rglob("*.part"))

    prefix = f"finetuning_datasets/{entry['dataset_id']}/"
    files.store.put(prefix + "val.jsonl", b'{"tampered": true}\n')
    again = tmp_path / "again"
    refused = run(["pull", entry["version_id"], str(again)], real_api, files)
    assert "val.jsonl: sha256" in one_line_error(refused)
    assert not (again / "val.jsonl").exists() and not list(again.rglob("*.part"))

    unknown = run(["pull", "v_nope", str(tmp_path / "x")], real_api, files)
    assert "get_version" in one_line_error(unknown)


def test_rollback_and_report_go_through_the_api(real_api: StubApi, files: MemoryFiles) -> None:
    listed = json.loads(run(["versions", "--json"], real_api, files).output)
    first = listed["versions"][1]["version_id"]
    result = run(["rollback", first], real_api, files)
    assert result.exit_code == 0, result.output
    assert f"current version: {first}" in result.output
    assert json.loads(run(["versions", "--json"], real_api, files).output)["current_version"] == first
    assert "unknown version 'v_nope'" in one_line_error(run(["rollback", "v_nope"], real_api, files))


# -- dead letters --------------------------------------------------------------------------------------------


def test_dead_letters_lists_the_backlog_and_replays_it_on_demand(stub: Callable[[dict[str, Handler]], StubApi],
                                                                files: MemoryFiles) -> None:
    letter = {"message_id": "4711", "bytes": 12, "preview": '{"bad": true}', "replay_count": 1,
              "delivery_attempts": "5", "from_subscription": "failures-push", "attributes": {}}
    listed = {"topics": {"transcription-failures": {"subscription": "s", "count": 1, "complete": True,
                                                    "letters": [letter]},
                         "training-metrics": {"subscription": "m", "count": 0, "complete": True, "letters": []}},
              "total": 1, "complete": True, "max_messages": 100}
    replayed = {"topics": {"transcription-failures": {"subscription": "s", "replayed": 1, "quarantined": 0}},
                "replayed": 1, "quarantined": 0, "max_replays": 2}
    api = stub({"list_dead_letters": lambda b: (200, listed), "replay_dead_letters": lambda b: (200, replayed)})
    shown = run(["dead-letters"], api, files)
    assert shown.exit_code == 0, shown.output
    for text in ("4711", '{"bad": true}', "transcription-failures 1", "training-metrics 0", "--replay"):
        assert text in shown.output
    assert api.calls[-1] == {"op": "list_dead_letters", "max_messages": 100}
    again = run(["dead-letters", "--replay", "--topic", "transcription-failures", "--max-replays", "2"], api, files)
    assert again.exit_code == 0, again.output
    assert "1 replayed, 0 quarantined" in again.output
    assert api.calls[-1] == {"op": "replay_dead_letters", "topic": "transcription-failures", "max_messages": 100,
                             "max_replays": 2}
    assert json.loads(run(["dead-letters", "--json"], api, files).output)["total"] == 1
    none = {**listed, "topics": {"training-metrics": listed["topics"]["training-metrics"]}, "total": 0}
    api.handlers["list_dead_letters"] = lambda b: (200, none)
    assert "no dead letters (training-metrics 0)" in run(["dead-letters"], api, files).output
    refused = run(["dead-letters", "--max-messages", "0"], api, files)
    assert refused.exit_code == 2 and "max-messages" in refused.output
