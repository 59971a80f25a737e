"""The `sttdata` commands (click), their output drawn with rich; every error is one line and exit status 1."""

from __future__ import annotations

import hashlib
import json
import os
import time
from collections.abc import Callable, Mapping, Sequence
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, BinaryIO

import click
from rich import filesize
from rich.console import Console
from rich.progress import BarColumn, DownloadColumn, Progress, SpinnerColumn, TaskProgressColumn, TextColumn
from rich.table import Table

from shared.domain import bucket_layout as layout
from shared.domain.dataset_build import SPLITS
from shared.domain.dataset_request import parse_build_request
from shared.domain.versions import manifest_checksum
from shared.errors import BadInput
from sttdata_cli.config import CliConfig, load_config
from sttdata_cli.errors import CliError
from sttdata_cli.remote import ApiClient, BucketFiles, GcsFiles

POLL_S = 1.0
WAIT_TIMEOUT_S = 1800.0
IMPORT_DONE = ("finished", "rejected", "object gone")
BUILD_DONE = ("built", "no eligible cases", "rejected", "object gone")
CONTENT_TYPES = {".jsonl": "application/x-ndjson", ".parquet": "application/vnd.apache.parquet",
                 ".json": "application/json"}


@dataclass
class Session:
    """What the commands use, built on first use; tests hand in fakes."""

    env_file: str | None = None
    api: ApiClient | None = None
    files: BucketFiles | None = None
    poll_s: float = POLL_S
    clock: Callable[[], float] = time.monotonic
    sleep: Callable[[float], None] = time.sleep
    _config: CliConfig | None = field(default=None, repr=False)

    @property
    def config(self) -> CliConfig:
        if self._config is None:
            self._config = load_config(self.env_file)
        return self._config

    def the_api(self) -> ApiClient:
        if self.api is None:
            self.api = ApiClient(self.config.api_url)
        return self.api

    def the_bucket(self) -> BucketFiles:
        if self.files is None:
            self.files = GcsFiles(self.config)
        return self.files

    def wait(self, deadline: float, what: str) -> None:
        if self.clock() > deadline:
            raise CliError(f"{what} is still running after the --timeout: it goes on in the cloud; follow it with "
                           "`sttdata status`")
        self.sleep(self.poll_s)


class OneLineErrors(click.Group):
    """A group whose commands' unexpected errors (an outage, a credential problem) are one line, not a traceback."""

    def invoke(self, ctx: click.Context) -> Any:
        try:
            return super().invoke(ctx)
        except (click.ClickException, click.exceptions.Exit, click.exceptions.Abort):
            raise
        except BadInput as exc:
            raise CliError(exc.reason) from None
        except Exception as exc:
            if os.environ.get("STT_DEBUG"):
                raise
            raise CliError(_what_to_do(exc)) from None


def _what_to_do(exc: Exception) -> str:
    """A one-line message for an error that no command expected."""
    import google.auth.exceptions
    from google.api_core import exceptions as gexc

    text = str(exc).splitlines()[0] if str(exc) else type(exc).__name__
    if isinstance(exc, google.auth.exceptions.DefaultCredentialsError):
        return ("no Google credentials: run `gcloud auth application-default login`, or start the local stack "
                "with `make up`")
    if isinstance(exc, gexc.Forbidden | gexc.Unauthorized):
        return f"the bucket refused the call ({text}): your identity needs storage access to the bucket"
    if isinstance(exc, gexc.NotFound):
        return f"not found in the bucket ({text}): check STT_BUCKET"
    if isinstance(exc, ConnectionError | OSError) or "Connection" in type(exc).__name__:
        return f"{text}: is the local stack up (`make up`)? in the cloud, check your network"
    return f"{type(exc).__name__}: {text} (set STT_DEBUG=1 for the traceback)"


@click.group(cls=OneLineErrors, context_settings={"help_option_names": ["-h", "--help"]})
@click.option("--env-file", envvar="STT_ENV_FILE", metavar="PATH",
              help="Variables of the deployment (default: the nearest .local/stack.env, which `make up` writes; "
                   "`none`: the environment alone, e.g. for the cloud).")
@click.pass_context
def cli(ctx: click.Context, env_file: str | None) -> None:
    """The command line of sttdata: status, imports and builds with progress, versions, verified pulls,
    rollback, dead letters and reports. The dashboard is the api's URL in a browser (README, "Dashboard").

    Locally it reads .local/stack.env (written by `make up`). In the cloud, set GOOGLE_CLOUD_PROJECT, STT_BUCKET
    and STT_API_URL: it uses Application Default Credentials for the bucket and an identity token for the private
    api (README, "Command line"). Errors are one line; the exit status is 1.
    """
    if ctx.obj is None:
        ctx.obj = Session(env_file=env_file)
    elif env_file is not None and ctx.obj.env_file is None:
        ctx.obj.env_file = env_file


def console() -> Console:
    return Console(highlight=False, soft_wrap=True)


def _json_out(value: Any) -> None:
    click.echo(json.dumps(value, indent=2, sort_keys=True, default=str))


# -- status ----------------------------------------------------------------------------------------------------


@cli.command(short_help="Statistics, quarantined events, recent imports and builds.")
@click.option("--limit", default=5, show_default=True, help="How many recent imports and builds to show.")
@click.option("--json", "as_json", is_flag=True, help="Print the figures as JSON.")
@click.pass_obj
def status(session: Session, limit: int, as_json: bool) -> None:
    """Statistics, quarantined events, and the recent imports and builds."""
    api = session.the_api()
    stats = api.call("get_statistics")
    recent = api.call("recent_work", limit=limit)
    if as_json:
        _json_out({"statistics": stats, **recent})
        return
    out = console()
    figures = Table(title="Cases", show_header=False)
    figures.add_column("figure")
    figures.add_column("value", justify="right")
    score = stats.get("average_error_score")
    for name, value in (("total cases", stats.get("total_cases", 0)),
                        ("corrected", stats.get("corrected_cases", 0)),
                        ("correction rate", f"{stats.get('correction_rate', 0.0):.1%}"),
                        ("average error score", "-" if score is None else f"{score:.3f}"),
                        ("quarantined events", stats.get("quarantined_events", 0))):
        figures.add_row(name, str(value))
    out.print(figures)
    types = stats.get("error_type_distribution") or {}
    if types:
        out.print("error types: " + ", ".join(f"{k} {v}" for k, v in sorted(types.items(), key=lambda kv: -kv[1])))
    imports = Table(title="Recent imports")
    for column in ("import", "state", "lines", "accepted", "duplicates", "rejected", "updated"):
        imports.add_column(column)
    for item in recent.get("imports", []):
        imports.add_row(str(item.get("name", item.get("work_id"))), str(item.get("state")),
                        *(str(item.get(key, "")) for key in ("lines_done", "accepted", "duplicates", "rejected")),
                        str(item.get("updated_at", "")))
    out.print(imports)
    builds = Table(title="Recent builds")
    for column in ("request", "state", "stage", "dataset", "version", "updated"):
        builds.add_column(column)
    for item in recent.get("builds", []):
        builds.add_row(str(item.get("name", item.get("work_id"))), str(item.get("state")), str(item.get("stage", "")),
                       str(item.get("dataset_id", "")), str(item.get("version_id", "")),
                       str(item.get("updated_at", "")))
    out.print(builds)


# -- import ----------------------------------------------------------------------------------------------------


def count_rows(path: Path) -> int:
    """The lines of a JSONL file (as the import counts them) or the rows of a Parquet file, read streamed."""
    if path.suffix == ".parquet":
        import pyarrow.parquet as pq

        return int(pq.ParquetFile(path).metadata.num_rows)
    lines, last = 0, b"\n"
    with path.open("rb") as fh:
        while chunk := fh.read(1 << 20):
            lines += chunk.count(b"\n")
            last = chunk[-1:]
    return lines + (last != b"\n")


def _import_bar(state: Mapping[str, Any], lines_total: int | None) -> dict[str, Any]:
    """Where the import bar stands: the bytes read of the object's size when the import notes them (an exact
    total, known by the api), else the lines done of the lines counted in the local file."""
    lines_done = int(state.get("lines_done") or 0)
    bytes_read, bytes_total = state.get("bytes_read"), state.get("bytes_total")
    if isinstance(bytes_read, int) and isinstance(bytes_total, int) and bytes_total > 0:
        return {"total": bytes_total, "completed": min(bytes_read, bytes_total),
                "detail": f"{lines_done} lines, {filesize.decimal(bytes_read)} of {filesize.decimal(bytes_total)}"}
    return {"total": lines_total, "completed": min(lines_done, lines_total or 0),
            "detail": f"{lines_done}/{lines_total} lines"}


@cli.command("import", short_help="Upload a file of failure events to imports/ [--wait].")
@click.argument("file", type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="Object name under imports/ (default: the file's name).")
@click.option("--wait/--no-wait", default=False, help="Wait for the import, with a bar of the file read.")
@click.option("--timeout", default=WAIT_TIMEOUT_S, show_default=True, help="Seconds --wait waits at most.")
@click.pass_obj
def import_(session: Session, file: Path, name: str | None, wait: bool, timeout: float) -> None:
    """Upload FILE (failure events: .jsonl, one a line, or .parquet) to imports/, which starts a bulk import."""
    object_name = layout.import_object_name(name or file.name)
    files = session.the_bucket()
    total = count_rows(file) if wait else None
    generation = files.upload(file, object_name, CONTENT_TYPES[Path(object_name).suffix])
    out = console()
    out.print(f"uploaded gs://{files.bucket}/{object_name} (generation {generation})")
    if not wait:
        out.print("the import runs in the cloud: `sttdata status` shows how far it got")
        return
    api, deadline = session.the_api(), session.clock() + timeout
    with Progress(TextColumn("{task.description}"), BarColumn(), TaskProgressColumn(),
                  TextColumn("{task.fields[detail]}"), console=out, transient=False) as bar:
        task = bar.add_task("queued", total=total, detail="")
        while True:
            state = api.call("import_status", name=object_name, generation=generation)
            bar.update(task, **_import_bar(state, total),
                       description=f"{state['state']}: {state.get('accepted', 0)} stored, "
                                   f"{state.get('rejected', 0)} rejected")
            if state["state"] in IMPORT_DONE:
                break
            session.wait(deadline, f"the import of {object_name}")
    if state["state"] != "finished":
        reason = state.get("reason") or (state.get("result") or {}).get("reason") or "no reason given"
        raise CliError(f"the import of {object_name} ended {state['state']}: {reason}")
    result = state.get("result") or {}
    out.print(f"imported {result.get('lines', state.get('lines_done'))} lines: {state.get('accepted')} stored, "
              f"{state.get('duplicates')} duplicates, {state.get('rejected')} rejected")
    if result.get("rejected_lines_uri"):
        out.print(f"rejected lines with their reasons: {result['rejected_lines_uri']}")


# -- build -----------------------------------------------------------------------------------------------------


def build_request(file: Path | None, options: Mapping[str, Any]) -> dict[str, Any]:
    """The request: the file's parameters, then the options given; checked as the build function checks it."""
    request: dict[str, Any] = {}
    if file is not None:
        try:
            loaded = json.loads(file.read_text())
        except ValueError as exc:
            raise CliError(f"{file} is not JSON: {exc}") from None
        if not isinstance(loaded, dict):
            raise CliError(f"{file} must hold a JSON object of build parameters")
        request = loaded
    request |= {key: value for key, value in options.items() if value is not None}
    parse_build_request(json.dumps(request).encode())  # BadInput names the bad parameter
    return request


@cli.command(short_help="Ask for a dataset build [--wait].")
@click.argument("request_file", metavar="[REQUEST.json]", required=False,
                type=click.Path(exists=True, dir_okay=False, path_type=Path))
@click.option("--name", help="Request name under dataset-requests/ (default: the file's stem, or a timestamp).")
@click.option("--min-error-score", type=float, help="Keep cases whose error_score is at least this.")
@click.option("--max-samples", type=int, help="At most this many rows over all splits.")
@click.option("--version-name", help="Name of the version the build registers.")
@click.option("--parent-version", help="The version this one derives from.")
@click.option("--balance/--no-balance", "balance_error_types", default=None,
              help="Balance the primary error types (the request's default: balance).")
@click.option("--version/--no-version", "create_version", default=None,
              help="Register the dataset as a version (the request's default: yes).")
@click.option("--wait/--no-wait", default=False, help="Wait for dataset_results/<name>.json, showing the stage.")
@click.option("--timeout", default=WAIT_TIMEOUT_S, show_default=True, help="Seconds --wait waits at most.")
@click.pass_obj
def build(session: Session, request_file: Path | None, name: str | None, wait: bool, timeout: float,
          **options: Any) -> None:
    """Ask for a dataset build: upload REQUEST.json (and/or the options) to dataset-requests/<name>.json."""
    request = build_request(request_file, options)
    stem = name or (request_file.stem if request_file else time.strftime("cli-%Y%m%d-%H%M%S"))
    object_name = layout.request_object_name(stem)
    files = session.the_bucket()
    generation = files.put(object_name, json.dumps(request, indent=2).encode(), CONTENT_TYPES[".json"])
    out = console()
    out.print(f"uploaded gs://{files.bucket}/{object_name} (generation {generation})")
    if not wait:
        out.print(f"the build runs in the cloud: its result will be gs://{files.bucket}/"
                  f"{layout.build_result_name(object_name)}")
        return
    api, deadline = session.the_api(), session.clock() + timeout
    with Progress(SpinnerColumn(), TextColumn("{task.description}"), console=out) as spinner:
        task = spinner.add_task("queued", total=None)
        while True:
            state = api.call("build_status", name=object_name, generation=generation)
            spinner.update(task, description=f"{state['state']}: {state.get('stage', '')}")
            if state["state"] in BUILD_DONE and "result" in state:
                break
            session.wait(deadline, f"the build of {object_name}")
    _show_build(out, state["result"])


def _show_build(out: Console, result: Mapping[str, Any]) -> None:
    status = result.get("status")
    if status == "rejected":
        raise CliError(f"the build request was rejected: {result.get('reason')}")
    if status == "no eligible cases":
        raise CliError("no eligible cases: lower --min-error-score, or import or correct more cases first")
    if status != "built":
        raise CliError(f"the build ended {status}: upload the request again")
    given = result.get("split_sizes") or {}
    sizes = {split: given[split] for split in (*SPLITS, *sorted(given)) if split in given}
    out.print(f"built {result.get('dataset_id')}: {result.get('total_samples')} samples "
              f"({', '.join(f'{k} {v}' for k, v in sizes.items())}), quality "
              f"{'passed' if result.get('quality_passed') else 'FAILED'}")
    if result.get("version_id"):
        out.print(f"version {result['version_id']} (checksum {result.get('checksum')})")
    out.print(f"files: {result.get('gcs_path')}")


# -- versions, pull, rollback ------------------------------------------------------------------------------


def _score(entry: Mapping[str, Any]) -> str:
    report = entry.get("quality_report") or {}
    score = (report.get("quality_metrics") or {}).get("overall_score", report.get("overall_score"))
    return f"{score:.3f}" if isinstance(score, int | float) else "-"


@cli.command(short_help="The dataset versions, newest first.")
@click.option("--json", "as_json", is_flag=True, help="Print the registry entries as JSON.")
@click.pass_obj
def versions(session: Session, as_json: bool) -> None:
    """The dataset versions, newest first; the current one is marked *."""
    api = session.the_api()
    entries = api.call("list_versions")
    current = api.call("generate_version_report").get("current_version")
    if as_json:
        _json_out({"current_version": current, "versions": entries})
        return
    table = Table(title="Dataset versions")
    for column in ("", "version", "created", "samples", "quality", "parent", "checksum"):
        table.add_column(column)
    for entry in entries:
        metadata = entry.get("metadata") or {}
        table.add_row("*" if entry["version_id"] == current else "", entry["version_id"],
                      str(entry.get("created_at", ""))[:19], str(metadata.get("total_samples", "")), _score(entry),
                      str(entry.get("parent_version") or ""), str(entry.get("checksum", ""))[:12])
    console().print(table if entries else "no versions yet: `sttdata build --wait` builds one")


class Sha256Writer:
    """A file being written that hashes and counts its bytes on the way."""

    def __init__(self, sink: BinaryIO, on_bytes: Callable[[int], None]) -> None:
        self.sink, self.on_bytes = sink, on_bytes
        self.digest = hashlib.sha256()
        self.size = 0

    def write(self, data: bytes) -> int:
        self.digest.update(data)
        self.size += len(data)
        self.on_bytes(len(data))
        return self.sink.write(data)

    def flush(self) -> None:
        self.sink.flush()


def _local_path(folder: Path, name: str) -> Path:
    parts = name.split("/")
    if not name or any(part in ("", ".", "..") for part in parts):
        raise CliError(f"the registry names a file {name!r} that cannot be written safely; the registry is damaged")
    return folder.joinpath(*parts)


def pull_version(entry: Mapping[str, Any], folder: Path, files: BucketFiles,
                 on_bytes: Callable[[int], None] = lambda n: None) -> list[Path]:
    """Download a version's files into `folder`, each streamed and checked against the registry's sha256 before it
    takes its name (a bad copy is deleted, never left); the paths written."""
    manifest: Mapping[str, Mapping[str, Any]] = entry.get("files") or {}
    if manifest_checksum(manifest) != entry.get("checksum"):
        raise CliError(f"version {entry.get('version_id')}: its file list does not match its checksum; the "
                       "registry entry is damaged")
    prefix = layout.dataset_prefix(str(entry["dataset_id"]))
    written = []
    for name in sorted(manifest):
        expected = manifest[name]
        target = _local_path(folder, name)
        target.parent.mkdir(parents=True, exist_ok=True)
        partial = target.with_name(target.name + ".part")
        try:
            with partial.open("wb") as sink:
                writer = Sha256Writer(sink, on_bytes)
                files.download(prefix + name, writer)  # type: ignore[arg-type]  # a file-like for the download
            digest = writer.digest.hexdigest()
            if digest != expected.get("sha256"):
                raise CliError(f"{prefix}{name}: sha256 {digest[:16]}… is not the registry's "
                               f"{str(expected.get('sha256'))[:16]}…: the bucket's copy changed since the version "
                               "was made; nothing of it was kept")
        except BaseException:
            partial.unlink(missing_ok=True)
            raise
        partial.replace(target)
        written.append(target)
    return written


@cli.command(short_help="Download a version's files, sha256-verified.")
@click.argument("version")
@click.argument("folder", metavar="DIR", type=click.Path(file_okay=False, path_type=Path))
@click.pass_obj
def pull(session: Session, version: str, folder: Path) -> None:
    """Download VERSION's files into DIR, streamed, each verified against the registry's sha256."""
    entry = session.the_api().call("get_version", version_id=version)
    files = session.the_bucket()
    total = sum(int(item.get("bytes") or 0) for item in (entry.get("files") or {}).values())
    out = console()
    with Progress(TextColumn("pulling"), BarColumn(), DownloadColumn(), console=out) as bar:
        task = bar.add_task("pull", total=total)
        written = pull_version(entry, folder, files, lambda n: bar.advance(task, n))
    out.print(f"{len(written)} files of {version} in {folder}, each matching its sha256 in the registry "
              f"(checksum {entry['checksum']})")


@cli.command(short_help="Make a version the current one again.")
@click.argument("version")
@click.option("--target", help="Also copy the version's files to this prefix under restores/.")
@click.pass_obj
def rollback(session: Session, version: str, target: str | None) -> None:
    """Make VERSION the current version again (after its files are verified in the bucket)."""
    result = session.the_api().call("rollback_to_version", version_id=version, target_path=target)
    out = console()
    previous = (result.get("history") or {}).get("previous")
    out.print(f"current version: {result['current_version']} (was {previous}); "
              f"{len(result.get('verified_files') or [])} files verified")
    if target and result.get("restored_to"):
        out.print(f"{len(result['restored_to'])} files copied to gs://{session.the_bucket().bucket}/"
                  f"{layout.restore_prefix(target)}")


# -- dead letters ----------------------------------------------------------------------------------------------


@cli.command("dead-letters", short_help="The dead-letter backlog per topic [--replay].")
@click.option("--topic", help="Only this topic's dead letters (its name, or its dead-letter topic's).")
@click.option("--max-messages", default=100, show_default=True, type=click.IntRange(1, 1000),
              help="Look at (or replay) at most this many per topic.")
@click.option("--replay", is_flag=True, help="Republish them to their topics (once their cause is fixed); one "
                                             "replayed --max-replays times already is quarantined instead.")
@click.option("--max-replays", default=3, show_default=True, type=click.IntRange(0, 100),
              help="With --replay: how often one message may be replayed.")
@click.option("--json", "as_json", is_flag=True, help="Print the answer as JSON.")
@click.pass_obj
def dead_letters(session: Session, topic: str | None, max_messages: int, replay: bool, max_replays: int,
                 as_json: bool) -> None:
    """The dead letters waiting in each topic's dead-letter subscription, with a preview of each, left where they
    are; with --replay, republish them to their topics instead (the api's replay_dead_letters)."""
    api = session.the_api()
    if replay:
        result = api.call("replay_dead_letters", topic=topic, max_messages=max_messages, max_replays=max_replays)
        if as_json:
            _json_out(result)
            return
        table = Table(title="Dead letters replayed")
        for column in ("topic", "replayed", "quarantined"):
            table.add_column(column)
        for name, counts in sorted(result.get("topics", {}).items()):
            table.add_row(name, str(counts.get("replayed", 0)), str(counts.get("quarantined", 0)))
        out = console()
        out.print(table)
        out.print(f"{result.get('replayed', 0)} replayed, {result.get('quarantined', 0)} quarantined as replayed "
                  f"{max_replays} times already (`sttdata status` counts the quarantined)")
        return
    listed = api.call("list_dead_letters", topic=topic, max_messages=max_messages)
    if as_json:
        _json_out(listed)
        return
    out = console()
    table = Table(title="Dead letters waiting")
    for column in ("topic", "message", "deliveries", "replays", "bytes", "payload"):
        table.add_column(column)
    for name, found in sorted(listed.get("topics", {}).items()):
        for letter in found.get("letters", []):
            table.add_row(name, str(letter.get("message_id")), str(letter.get("delivery_attempts") or ""),
                          str(letter.get("replay_count")), str(letter.get("bytes")), str(letter.get("preview")))
    counts = ", ".join(f"{name} {'' if t.get('complete') else 'at least '}{t.get('count', 0)}"
                       for name, t in sorted(listed.get("topics", {}).items()))
    if not listed.get("total"):
        out.print(f"no dead letters ({counts})")
        return
    out.print(table)
    out.print(f"{listed['total']} dead letters ({counts}); fix their cause, then `sttdata dead-letters --replay`")


# -- report ----------------------------------------------------------------------------------------------------


@cli.command(short_help="The comprehensive report, as JSON.")
@click.option("--save", metavar="NAME", help="Also write the report to reports/NAME in the bucket.")
@click.pass_obj
def report(session: Session, save: str | None) -> None:
    """The comprehensive report (statistics, performance, data quality, recommendations) as JSON."""
    result = session.the_api().call("generate_comprehensive_report", output_path=save)
    _json_out(result)


def main(argv: Sequence[str] | None = None) -> None:
    """The `sttdata` console script."""
    cli.main(args=list(argv) if argv is not None else None, prog_name="sttdata")
