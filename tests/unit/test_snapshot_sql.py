"""The snapshot build's SQL: both dialects parse (sqlglot), and its text rules are Python's and orjson's."""

from __future__ import annotations

import random
import re
from datetime import UTC, datetime
from pathlib import Path

import duckdb
import numpy as np
import orjson
import pyarrow as pa
import pyarrow.parquet as pq
import pytest
import sqlglot
from sqlglot.errors import ErrorLevel

from shared.domain.case_snapshot import cases_to_table
from shared.domain.dataset_quality import AUDIO_EXTENSIONS
from shared.domain.dataset_request import BuildRequest
from shared.snapshot import sql
from shared.snapshot.engine import SNAPSHOT_TYPES, EngineSettings, SnapshotEngine
from tests.unit.snapshot_cases import random_cases

PARAMETERS = {
    "min_error_score", "include_uncorrected", "balance", "max_samples", "edge_train", "edge_val", "edge_test",
}
DURATION_PARAMETERS = {"min_duration_s", "max_duration_s"}


@pytest.mark.parametrize(("name", "statement"), sorted(sql.duckdb_statements(SNAPSHOT_TYPES).items()))
def test_every_duckdb_statement_parses(name: str, statement: str) -> None:
    parsed = sqlglot.parse(statement, read="duckdb", error_level=ErrorLevel.RAISE)
    assert len(parsed) == 1 and parsed[0] is not None, name


def test_every_duckdb_statement_runs(tmp_path: Path) -> None:
    """Beyond parsing: DuckDB binds and runs each one, the floor and compaction included, over a small part."""
    part = tmp_path / "part-1.parquet"
    pq.write_table(cases_to_table(random_cases(3, 40)), part)
    request = BuildRequest(min_error_score=0.0, include_uncorrected=True)
    with SnapshotEngine(EngineSettings("128MB", 1)) as engine:
        engine.load_parts([part])
        assert sum(engine.select(request).values()) > 0
        engine.quality_report()
        engine.metadata("d", request, datetime(2026, 1, 1, tzinfo=UTC), "test")
        engine.floor_copy(request, tmp_path / "floor")
        engine.compact_to(tmp_path / "compacted.parquet")
    assert sorted(p.name for p in (tmp_path / "floor").iterdir())
    assert pq.read_table(tmp_path / "compacted.parquet").num_rows == 40


def test_the_bigquery_build_parses_and_takes_the_same_parameters() -> None:
    statement = sql.bigquery_build("project.dataset.cases")
    parsed = sqlglot.parse_one(statement, read="bigquery", error_level=ErrorLevel.RAISE)
    assert parsed is not None
    bigquery_params = set(re.findall(r"@(\w+)", statement))
    source = sql.source(SNAPSHOT_TYPES, {}, 1)
    duckdb_params = set(re.findall(r"\$(\w+)", sql.select_keys(source, balance=True, capped=True, durations=True)))
    assert bigquery_params == PARAMETERS | DURATION_PARAMETERS
    # DuckDB's text is composed per request: balancing is chosen in Python, not by a parameter.
    assert duckdb_params == PARAMETERS - {"balance"} | DURATION_PARAMETERS | {"parts"}
    # And the transpiled text is BigQuery again (sqlglot understood its functions, not just its tokens).
    assert "QUALIFY" in parsed.sql(dialect="bigquery")


def _eligible_predicate(statement: str, dialect: str) -> str:
    """The WHERE of a build statement's `eligible` step, as DuckDB SQL."""
    tree = sqlglot.parse_one(statement, read=dialect, error_level=ErrorLevel.RAISE)
    eligible = next(cte for cte in tree.find_all(sqlglot.exp.CTE) if cte.alias == "eligible")
    return str(eligible.this.args["where"].this.sql(dialect="duckdb"))


@pytest.mark.parametrize(("low", "high", "kept"), [
    (None, None, {"none", "nan", "inf", "neg", "zero", "short", "one", "five", "thirty", "long"}),
    (1.0, None, {"none", "nan", "inf", "neg", "zero", "one", "five", "thirty", "long"}),
    (None, 30.0, {"none", "nan", "inf", "neg", "zero", "short", "one", "five", "thirty"}),
    (1.0, 30.0, {"none", "nan", "inf", "neg", "zero", "one", "five", "thirty"}),
])
def test_the_bigquery_build_filters_known_durations_as_duckdb_does(
    low: float | None, high: float | None, kept: set[str],
) -> None:
    """BigQuery's eligibility (transpiled by sqlglot and run on DuckDB) keeps the cases DuckDB's select_keys
    keeps: a known duration (finite, positive) within [min, max], and every case whose duration is unknown (its
    header is read later)."""
    durations = {"none": None, "nan": float("nan"), "inf": float("inf"), "neg": -1.0, "zero": 0.0, "short": 0.5,
                 "one": 1.0, "five": 5.0, "thirty": 30.0, "long": 31.0}
    source = sql.source(SNAPSHOT_TYPES, {}, 1)
    predicates = {
        "bigquery": _eligible_predicate(sql.bigquery_build("p.d.cases"), "bigquery"),
        "duckdb": _eligible_predicate(sql.select_keys(source, balance=False, capped=False, durations=True), "duckdb"),
    }
    parameters = {"min_error_score": 0.5, "include_uncorrected": False, "min_duration_s": low, "max_duration_s": high}
    con = duckdb.connect()
    con.execute("CREATE TABLE cases (case_id VARCHAR, error_score DOUBLE, corrected_transcript VARCHAR, "
                "has_correction BOOLEAN, duration_s DOUBLE)")
    con.executemany("INSERT INTO cases VALUES (?, 0.8, 'Fixed.', true, ?)", list(durations.items()))
    con.execute("INSERT INTO cases VALUES ('low score', 0.1, 'Fixed.', true, 5.0)")
    for dialect, predicate in predicates.items():
        rows = con.execute(f"SELECT case_id FROM cases WHERE {predicate}", parameters).fetchall()  # nosec B608
        assert {case_id for (case_id,) in rows} == kept, dialect


def test_python_whitespace_is_pythons() -> None:
    assert sql.PYTHON_WHITESPACE == "".join(chr(c) for c in range(0x110000) if chr(c).isspace())


def test_no_other_character_lowercases_into_an_audio_extension() -> None:
    """The ASCII class in AUDIO_EXTENSION is exact only if no non-ASCII character lowercases to these letters."""
    letters = set("".join(AUDIO_EXTENSIONS))
    for code in range(0x80, 0x110000):
        assert not set(chr(code).lower()) & letters, hex(code)


def random_strings(seed: int, count: int) -> list[str]:
    rng = random.Random(seed)
    alphabet = [*sql.PYTHON_WHITESPACE, *(chr(c) for c in range(0x20)), "\x7f", "a", "Z", '"', "\\", "é", "東",
                "😀", "\u2028", "\ufeff", "\u200b", "/", "WAV", ".wav", ".Mp3", "\u212a", "\u017f"]
    strings = ["", " ", "\u3000", "\x1c\x1d", "a", ".wav", "x.WAV", "x.wav\n", "x.wa\u212a"]
    strings += ["".join(rng.choice(alphabet) for _ in range(rng.randrange(0, 12))) for _ in range(count)]
    return strings


def test_text_rules_match_python() -> None:
    strings = random_strings(1, 3000)
    con = duckdb.connect()
    con.register("strings", pa.table({"s": pa.array(strings, pa.string())}))
    rows = con.sql(
        f"SELECT s, {sql.has_text('s')}, {sql.stripped('s')}, length({sql.stripped('s')}), "
        f"regexp_matches(s, '{sql.AUDIO_EXTENSION}'), {sql.json_text('s')} FROM strings"
    ).fetchall()
    for text, has, stripped, length, audio, encoded in rows:
        assert has == (text.strip() != ""), repr(text)
        assert stripped == text.strip(), repr(text)
        assert length == len(text.strip()), repr(text)
        assert audio == text.lower().endswith(AUDIO_EXTENSIONS), repr(text)
        assert encoded.encode() == orjson.dumps(text), repr(text)


def test_floats_are_formatted_as_orjson_formats_them() -> None:
    rng = np.random.default_rng(2)
    bits = rng.integers(0, 2**64 - 1, size=200_000, dtype=np.uint64).view(np.float64)
    values = np.concatenate(
        [
            bits[np.isfinite(bits)],
            rng.random(50_000),
            rng.random(50_000) * 10.0 ** rng.integers(-9, 20, size=50_000),
            -rng.random(5_000) * 1e-5,
            np.array([0.0, -0.0, 1.0, 1e-5, 1.5e-5, 9.99e-5, 1e-4, 1e-6, 1e16, 1e15, 5e-324, 1.7976931348623157e308]),
            np.array([np.nan, np.inf, -np.inf]),
        ]
    )
    con = duckdb.connect()
    con.register("floats", pa.table({"x": values}))
    encoded = [row[0] for row in con.sql(f"SELECT {sql.json_float('x')} FROM floats").fetchall()]
    for value, text in zip(values.tolist(), encoded, strict=True):
        expected = orjson.dumps(value if np.isfinite(value) else None).decode()
        assert text == expected, repr(value)
    null = con.sql(f"SELECT {sql.json_float('CAST(NULL AS DOUBLE)')}").fetchall()[0][0]
    assert null == "null"


def test_duckdb_to_json_writes_floats_as_orjson_in_the_range_the_fast_path_keeps() -> None:
    """dataset_lines keeps DuckDB's to_json of a row whose floats are 0 or of magnitude in [1e-5, 1e16)."""
    rng = np.random.default_rng(3)
    magnitudes = 10.0 ** rng.uniform(-5, 16, size=300_000)
    values = np.concatenate(
        [
            magnitudes,
            -magnitudes[:50_000],
            *(np.round(rng.random(10_000), digits) for digits in range(1, 6)),
            np.arange(0, 1_000_000, 7, dtype=np.float64),
            np.array([0.0, -0.0, 1e-5, np.nextafter(1e16, 0), 0.1, 1 / 3]),
        ]
    )
    con = duckdb.connect()
    con.register("floats", pa.table({"x": values}))
    in_range = "error_score IS NULL OR error_score = 0 OR (abs(error_score) >= 1e-5 AND abs(error_score) < 1e16)"
    assert f"({in_range})" in sql._orjson_floats()
    rows = con.sql(f"SELECT x, CAST(to_json(x) AS VARCHAR) FROM floats WHERE {in_range.replace('error_score', 'x')}")
    rows = rows.fetchall()
    assert len(rows) == len(values)
    for value, text in rows:
        assert text.encode() == orjson.dumps(value), repr(value)
