"""Every SQL text of the snapshot build, in one place: DuckDB (what engine.py runs) and BigQuery (the same build
past one machine, over an external table on ``learning_data/cases/``; checked by sqlglot, never run here).

The build, as the rules of shared/domain/dataset_build.py say it:

1. ``stt_keys``: the latest row of each case (later ``updated_at`` wins; on a tie the later part, then the
   later row of it), the eligible ones (score at least the minimum, a case without one only when that is 0;
   corrected unless uncorrected ones are asked for), the balanced or capped stable sample (``sample_key``,
   then ``case_id``), each with its split from its stored ``split_bucket`` and the request's edges. Narrow:
   only the columns these decisions read, so the long texts are read once, for the selected rows only.
2. ``stt_rows``: the selected rows in the dataset row's columns, numbered (``seq`` over the whole dataset in
   split order then case_id, ``pos`` within its split).
3. ``dataset_lines``: each row's JSONL line, the bytes orjson writes for ``to_row``.

Texts match Python's rules exactly where Python and SQL differ: Python's ``str.strip()`` whitespace is the
list below (SQL's ``trim`` strips spaces only), and a float is formatted as orjson does (DuckDB casts a
double to Python's ``repr``; orjson writes ``1e-05`` as ``0.00001`` and ``1e-07`` as ``1e-7``).

Parameters are named (``$name`` in DuckDB, ``@name`` in BigQuery): min_error_score, include_uncorrected,
balance, max_samples (null for none), edge_train, edge_val, edge_test (shared.domain.case_snapshot.split_edges),
min_duration_s, max_duration_s (null for no bound; DuckDB's statements take them only when the request filters
by duration), and ``parts`` (the local Parquet files) for DuckDB.

The statements are f-strings of this module's own text and the schema's column names; every value (a request's
parameters, the parts' paths) goes in as a query parameter, which is why bandit's B608 is marked nosec on each.
"""

from __future__ import annotations

from collections.abc import Iterable, Mapping

# Python's str.isspace() characters (tests/unit/test_snapshot_sql.py checks the list against Python's own).
PYTHON_WHITESPACE = (
    "\t\n\x0b\x0c\r\x1c\x1d\x1e\x1f \x85\xa0\u1680\u2000\u2001\u2002\u2003\u2004\u2005\u2006\u2007\u2008"
    "\u2009\u200a\u2028\u2029\u202f\u205f\u3000"
)
_WS_CLASS = "".join(f"\\x{{{ord(c):x}}}" for c in PYTHON_WHITESPACE)
# RE2: a character that is not Python whitespace, i.e. s.strip() != "".
NOT_BLANK = f"[^{_WS_CLASS}]"
# dataset_quality.AUDIO_EXTENSIONS, case-insensitively as ``.lower().endswith`` reads them: no non-ASCII
# character lowercases to one of these ASCII letters (the test checks), so an ASCII class is exact.
AUDIO_EXTENSION = r"\.([wW][aA][vV]|[fF][lL][aA][cC]|[mM][pP]3|[oO][gG][gG]|[oO][pP][uU][sS]|[mM]4[aA])$"
_WS_CHARS = " || ".join(f"chr({ord(c)})" for c in PYTHON_WHITESPACE)
_SHORT_ESCAPES = {8: "\\b", 9: "\\t", 10: "\\n", 12: "\\f", 13: "\\r", 34: '\\"', 92: "\\\\"}
# Control characters DuckDB's to_json escapes as \u00XX with upper-case hex, orjson with lower-case.
_UPPER_HEX_CONTROLS = "[\\x0b\\x0e\\x0f\\x1a-\\x1f]"

SPLIT_CASE = (
    "CASE WHEN split_bucket < $edge_train THEN 'train' WHEN split_bucket < $edge_val THEN 'val' "
    "WHEN split_bucket < $edge_test THEN 'test' END"
)
SPLIT_ORDER = "CASE split WHEN 'train' THEN 0 WHEN 'val' THEN 1 ELSE 2 END"


def has_text(column: str) -> str:
    """SQL for Python's ``isinstance(x, str) and x.strip() != ""``."""
    return f"({column} IS NOT NULL AND regexp_matches({column}, '{NOT_BLANK}'))"


def finite(column: str) -> str:
    """SQL for the build's ``_number`` of a stored double: null unless finite."""
    return f"CASE WHEN isfinite({column}) THEN {column} END"


def group_key(speaker: str, audio: str) -> str:
    """SQL for dataset_build.group_key: the speaker when non-empty, else the recording."""
    return f"CASE WHEN coalesce({speaker}, '') <> '' THEN {speaker} ELSE coalesce({audio}, '') END"


def json_text(column: str) -> str:
    """SQL for orjson's encoding of a (non-null) string."""
    cases = " ".join(f"WHEN {code} THEN '{text}'" for code, text in _SHORT_ESCAPES.items())
    char = (
        f"CASE ord(c) {cases} WHEN 127 THEN c ELSE CASE WHEN ord(c) < 32 "
        f"THEN '\\u00' || lpad(lower(hex(ord(c))), 2, '0') ELSE c END END"
    )
    slow = f"'\"' || array_to_string([{char} for c in string_split({column}, '')], '') || '\"'"
    return (
        f"CASE WHEN regexp_matches({column}, '{_UPPER_HEX_CONTROLS}') THEN {slow} "
        f"ELSE CAST(to_json({column}) AS VARCHAR) END"
    )


def json_float(column: str) -> str:
    """SQL for orjson's encoding of a double (null when absent or not finite)."""
    text = f"CAST({column} AS VARCHAR)"
    digits = f"replace(replace(split_part({text}, 'e', 1), '-', ''), '.', '')"
    return (
        f"CASE WHEN {column} IS NULL OR NOT isfinite({column}) THEN 'null' "
        f"WHEN {text} LIKE '%e-05' THEN CASE WHEN {column} < 0 THEN '-' ELSE '' END || '0.0000' || {digits} "
        f"ELSE replace({text}, 'e-0', 'e-') END"
    )


_ROW_TEXTS = ("audio", "text", "case_id", "original_transcript", "speaker_id", "language", "model_version")
_ROW_FLOATS = ("error_score", "duration_s", "wer", "cer")


def _json_line_exact() -> str:
    """A row's line built field by field with orjson's rules (json_text, json_float): any row."""
    types = f"'[' || array_to_string([{json_text('t')} for t in error_types], ',') || ']'"
    parts = [
        f"'{{\"audio\":' || {json_text('audio')}",
        f"',\"text\":' || {json_text('text')}",
        f"',\"case_id\":' || {json_text('case_id')}",
        f"',\"original_transcript\":' || {json_text('original_transcript')}",
        f"',\"error_types\":' || {types}",
        f"',\"error_score\":' || {json_float('error_score')}",
        "',\"has_correction\":' || CASE WHEN has_correction THEN 'true' ELSE 'false' END",
        f"',\"speaker_id\":' || {json_text('speaker_id')}",
        f"',\"language\":' || {json_text('language')}",
        f"',\"model_version\":' || {json_text('model_version')}",
        f"',\"duration_s\":' || {json_float('duration_s')}",
        f"',\"wer\":' || {json_float('wer')}",
        f"',\"cer\":' || {json_float('cer')}",
        f"',\"split\":' || {json_text('split_field')} || '}}'",
    ]
    return "\n        || ".join(parts)


def _orjson_floats() -> str:
    """True when every float of the row is null, zero, or of magnitude in [1e-5, 1e16): there DuckDB's to_json
    and orjson both write the shortest digits in plain notation (tests/unit/test_snapshot_sql.py checks it on
    random doubles); outside it they differ (3e-06 as 0.000003, 1e16 as 10000000000000000.0)."""
    return " AND ".join(
        f"({name} IS NULL OR {name} = 0 OR (abs({name}) >= 1e-5 AND abs({name}) < 1e16))" for name in _ROW_FLOATS
    )


def source(columns: Mapping[str, str], present: Mapping[str, int], parts: int) -> str:
    """The snapshot's rows as one relation over ``read_parquet($parts)``, every column cast to its type.

    ``columns``: name -> DuckDB type. ``present``: how many of the ``parts`` have each column. A column no part
    has is null; ``split_bucket`` and ``sample_key`` missing from some parts are computed for those rows by the
    engine's Python functions (blake2b has no SQL), ``has_correction`` from the corrected transcript.
    """
    computed = {
        "split_bucket": f"stt_split_bucket({group_key('speaker_id', 'audio_path')})",
        "sample_key": "stt_sample_key(case_id)",
        "has_correction": has_text("corrected_transcript"),
    }
    # A part is its position in $parts (sorted by name, so by watermark): an integer, cheap to sort and join.
    items = ["file_index AS part", "file_row_number AS part_row"]
    for name, sql_type in columns.items():
        count = present.get(name, 0)
        if name in computed and count < parts:
            expr = computed[name] if count == 0 else f"coalesce(CAST({name} AS {sql_type}), {computed[name]})"
        elif count == 0:
            expr = f"CAST(NULL AS {sql_type})"
        else:
            expr = f"CAST({name} AS {sql_type})"
        items.append(f"{expr} AS {name}")
    inner = ",\n        ".join(items)
    return (
        f"SELECT\n        {inner}\n    "  # nosec B608
        "FROM read_parquet($parts, union_by_name = true, file_row_number = true)"
    )


# The latest row of a case: the greatest (updated_at, part, row in part); a null updated_at loses to any.
LATEST_ORDER = "struct_pack(u := coalesce(epoch_us(updated_at), -4611686018427387904), p := part, r := part_row)"


# Balancing (shared/domain/dataset_build.py): each eligible case's rarest type, the types' sizes, the water-filled
# quota and how many cases past it still fit, and which ones (the next of each type at the quota, in selection
# order).
_BALANCE = """
carried AS (
    SELECT t, count(*) AS n FROM (SELECT DISTINCT part, part_row, unnest(error_types) AS t FROM eligible) AS ct
    GROUP BY t
),
labels AS (
    SELECT ct.part, ct.part_row, arg_min(ct.t, struct_pack(n := c.n, t := ct.t)) AS label
    FROM (SELECT part, part_row, unnest(error_types) AS t FROM eligible) AS ct JOIN carried AS c USING (t)
    GROUP BY ct.part, ct.part_row
),
labelled AS (
    SELECT e.case_id, e.part, e.part_row, e.sample_key, e.split_bucket, coalesce(l.label, 'unknown') AS label
    FROM eligible AS e LEFT JOIN labels AS l ON e.part = l.part AND e.part_row = l.part_row
),
sizes AS (SELECT label, count(*) AS n FROM labelled GROUP BY label),
filled AS (
    SELECT i, n, k - i + 1 AS open_types,
        CAST($max_samples AS BIGINT) - coalesce(sum(n) OVER (ORDER BY i ROWS BETWEEN UNBOUNDED PRECEDING
                                                              AND 1 PRECEDING), 0) AS remaining
    FROM (SELECT n, row_number() OVER (ORDER BY n) AS i, count(*) OVER () AS k FROM sizes) AS ordered
),
cut AS (SELECT remaining // open_types AS share, remaining % open_types AS extra FROM filled
        WHERE n > remaining // open_types ORDER BY i LIMIT 1),
quota AS (
    SELECT CASE WHEN CAST($max_samples AS BIGINT) IS NULL THEN CAST(ceil(2 * (SELECT median(n) FROM sizes)) AS BIGINT)
                ELSE coalesce((SELECT share FROM cut), (SELECT max(n) FROM sizes)) END AS per_type,
        CASE WHEN CAST($max_samples AS BIGINT) IS NULL THEN 0 ELSE coalesce((SELECT extra FROM cut), 0) END AS extra
),
ranked AS (
    SELECT *, row_number() OVER (PARTITION BY label ORDER BY sample_key, case_id) AS rank FROM labelled
),
extra_picks AS (
    SELECT part, part_row FROM (
        SELECT part, part_row, row_number() OVER (ORDER BY sample_key, case_id) AS pick
        FROM ranked WHERE rank = (SELECT per_type FROM quota) + 1
    ) AS next_ones
    WHERE pick <= (SELECT extra FROM quota)
),"""


# A known duration (the event gave one): a finite positive number; any other value is read from the header later.
KNOWN_DURATION = "coalesce(isfinite(duration_s) AND duration_s > 0, false)"


def select_keys(source_sql: str, balance: bool, capped: bool, durations: bool = False) -> str:
    """Step 1: ``stt_keys`` (part, part_row, split, seq, pos) of the selected cases.

    ``balance`` and ``capped`` (the request's balance_error_types and max_samples is not None) say which
    ranking the selection needs; a window over every eligible case is only computed when it is used, and the
    error types are only read for balancing. ``durations`` (the request has min_duration_s or max_duration_s)
    leaves out the cases whose known duration is outside [$min_duration_s, $max_duration_s] (either may be
    null: no bound); a case without a known duration stays, for the engine to read its clip's header.
    """
    if balance:
        picked = (
            "SELECT r.part, r.part_row, r.case_id, r.split_bucket FROM ranked AS r "
            "LEFT JOIN extra_picks AS x ON r.part = x.part AND r.part_row = x.part_row "
            "WHERE r.rank <= (SELECT per_type FROM quota) OR x.part IS NOT NULL"
        )
        steps = _BALANCE
    elif capped:
        picked = (
            "SELECT part, part_row, case_id, split_bucket FROM (SELECT *, row_number() OVER "
            "(ORDER BY sample_key, case_id) AS rank FROM eligible) AS ranked WHERE rank <= CAST($max_samples AS BIGINT)"
        )
        steps = ""
    else:
        picked, steps = "SELECT part, part_row, case_id, split_bucket FROM eligible", ""
    types = ", error_types" if balance else ""
    duration_column = ", duration_s" if durations else ""
    duration_filter = (
        f"\n      AND (NOT {KNOWN_DURATION} OR ("
        "(CAST($min_duration_s AS DOUBLE) IS NULL OR duration_s >= CAST($min_duration_s AS DOUBLE)) AND "
        "(CAST($max_duration_s AS DOUBLE) IS NULL OR duration_s <= CAST($max_duration_s AS DOUBLE))))"
        if durations else ""
    )
    return f"""
CREATE OR REPLACE TEMP TABLE stt_keys AS
WITH latest AS (
    SELECT case_id, part, part_row, error_score, sample_key, split_bucket, has_correction{types}{duration_column}
    FROM ({source_sql}) AS snapshot
    WHERE case_id IS NOT NULL  -- not a case (the writer never writes one; a hand-made part might)
    QUALIFY row_number() OVER (PARTITION BY case_id ORDER BY {LATEST_ORDER} DESC) = 1
),
eligible AS (
    SELECT case_id, part, part_row, sample_key, split_bucket{types}
    FROM latest
    WHERE CASE WHEN error_score IS NULL OR NOT isfinite(error_score) THEN $min_error_score <= 0
               ELSE error_score >= $min_error_score END
      AND ($include_uncorrected OR coalesce(has_correction, false)){duration_filter}
),{steps}
numbered AS MATERIALIZED (
    SELECT part, part_row, split, row_number() OVER (ORDER BY {SPLIT_ORDER}, case_id) AS seq
    FROM (SELECT part, part_row, case_id, {SPLIT_CASE} AS split FROM ({picked}) AS picked) AS selected
)
SELECT part, part_row, split, seq,
    seq - 1 - CASE split WHEN 'train' THEN 0
                         WHEN 'val' THEN (SELECT count(*) FROM numbered WHERE split = 'train')
                         ELSE (SELECT count(*) FROM numbered WHERE split <> 'test') END AS pos
FROM numbered
"""  # nosec B608


def select_rows(source_sql: str) -> str:
    """Step 2: ``stt_rows``, the selected rows in the dataset row's columns (to_row's rules), numbered."""
    return f"""
CREATE OR REPLACE TEMP TABLE stt_rows AS
SELECT
    coalesce(s.audio_path, '') AS audio,
    CASE WHEN s.has_correction THEN s.corrected_transcript ELSE coalesce(s.original_transcript, '') END AS text,
    s.case_id AS case_id,
    coalesce(s.original_transcript, '') AS original_transcript,
    coalesce(s.error_types, CAST([] AS VARCHAR[])) AS error_types,
    {finite('s.error_score')} AS error_score,
    coalesce(s.has_correction, false) AS has_correction,
    coalesce(s.speaker_id, '') AS speaker_id,
    coalesce(s.language, '') AS language,
    coalesce(s.model_version, '') AS model_version,
    {finite('s.duration_s')} AS duration_s,
    {finite('s.wer')} AS wer,
    {finite('s.cer')} AS cer,
    k.split AS split,
    k.split AS split_field,
    k.seq AS seq,
    k.pos AS pos
FROM ({source_sql}) AS s
JOIN stt_keys AS k ON s.part = k.part AND s.part_row = k.part_row
ORDER BY k.seq  -- stored in dataset order, so dataset_lines reads it in order with no sort of its own
"""  # nosec B608


ROWS_WITHOUT_DURATION = f"SELECT case_id, audio, split FROM stt_rows WHERE NOT {KNOWN_DURATION} ORDER BY seq"  # nosec B608

# After the headers were read: the rows whose duration is known and in range, renumbered in the same order.
KEEP_DURATIONS = f"""
CREATE OR REPLACE TEMP TABLE stt_rows AS
SELECT * EXCLUDE (seq, pos),
    row_number() OVER (ORDER BY seq) AS seq,
    row_number() OVER (PARTITION BY split ORDER BY seq) - 1 AS pos
FROM stt_rows
WHERE {KNOWN_DURATION}
  AND (CAST($min_duration_s AS DOUBLE) IS NULL OR duration_s >= CAST($min_duration_s AS DOUBLE))
  AND (CAST($max_duration_s AS DOUBLE) IS NULL OR duration_s <= CAST($max_duration_s AS DOUBLE))
ORDER BY seq  -- kept in dataset order, as dataset_lines reads it (select_rows)
"""  # nosec B608

ROWS_FROM_INPUT = """
CREATE OR REPLACE TEMP TABLE stt_rows AS
SELECT * EXCLUDE (input_order),
    input_order + 1 AS seq,
    row_number() OVER (PARTITION BY split ORDER BY input_order) - 1 AS pos
FROM stt_input
"""


def compacted(source_sql: str, columns: Iterable[str], target: str) -> str:
    """Compaction: the latest row of every case, every snapshot column, into one Parquet file."""
    escaped = target.replace("'", "''")
    return f"""
COPY (
    SELECT {', '.join(columns)}
    FROM ({source_sql}) AS snapshot
    QUALIFY row_number() OVER (
        PARTITION BY case_id ORDER BY {LATEST_ORDER} DESC) = 1
    ORDER BY case_id
) TO '{escaped}' (FORMAT parquet, COMPRESSION zstd)
"""  # nosec B608


def dataset_lines() -> str:
    """Step 3: every row's JSONL line (``orjson.dumps(to_row(case, split))`` and a newline) with its split's
    number (0 train, 1 val, 2 test), split by split, each split by case_id; then the row's columns (engine's
    ROW_SCHEMA order, ``split_field`` as ``split``) for the Parquet copy written in the same pass. In that order
    only when read inside ``SnapshotEngine.insertion_order()``: it is stt_rows' stored order, not an ORDER BY.

    DuckDB's to_json of the row's struct is orjson's bytes for almost every row, and several times faster than
    building the line field by field: it is kept unless a float is outside the range where both write alike,
    or the JSON holds a backslash-u00 (to_json escapes control characters in upper-case hex, orjson in
    lower-case; a literal backslash-u00 in a text also sends its row the exact way, which is only slower).
    """
    fields = ", ".join(
        f"{name} := {name}" for name in (*_ROW_TEXTS[:4], "error_types", "error_score", "has_correction",
                                         *_ROW_TEXTS[4:], *_ROW_FLOATS[1:])
    )
    fast = f"CAST(to_json(struct_pack({fields}, split := split_field)) AS VARCHAR)"
    return f"""
SELECT {SPLIT_ORDER} AS split_no,
    CASE WHEN {_orjson_floats()} AND NOT contains(fast, '\\u00') THEN fast
    ELSE {_json_line_exact()} END || chr(10) AS line,
    audio, text, case_id, original_transcript, error_types, error_score, has_correction, speaker_id, language,
    model_version, duration_s, wer, cer, split_field
FROM (SELECT *, {fast} AS fast FROM stt_rows) AS rows
"""  # nosec B608


MISSING_SPLITS = "SELECT count(*) FROM stt_keys WHERE split IS NULL"


def stripped(column: str) -> str:
    """SQL for Python's ``x.strip()``; only a string whose first or last character is whitespace pays for the
    regex (DuckDB's trim with a list of characters is several times slower)."""
    codes = ", ".join(str(ord(c)) for c in PYTHON_WHITESPACE)
    edge = f"[{_WS_CLASS}]"
    return (
        f"CASE WHEN ord({column}) IN ({codes}) OR ord(substr({column}, length({column}))) IN ({codes}) "
        f"THEN regexp_replace({column}, '^{edge}+|{edge}+$', '', 'g') ELSE {column} END"
    )


# The quality rules in one pass over stt_rows (a table, or a view over Parquet copies or split files): each row's
# per-row rule results and the few keys the repeat and leak rules group by, in a narrow table. The long texts
# are read once, here; the rules after this read stt_qrows, and the rows a report names are read back by
# (split, pos) (ROWS_AT: a Parquet scan skips to those rows).
QUALITY_ROWS = f"""
CREATE OR REPLACE TEMP TABLE stt_qrows AS
SELECT m.seq, m.split, m.pos, m.case_id,
    CASE WHEN m.speaker_id <> '' THEN m.speaker_id ELSE m.audio END AS group_key,
    (m.speaker_id <> '' OR m.audio <> '') AS has_group,
    CASE WHEN NOT (m.audio = '' AND m.text = '') THEN hash(m.audio, m.text) END AS pair_hash,
    {has_text('m.audio')} AND {has_text('m.text')} AND {has_text('m.case_id')} AS complete,
    regexp_matches(m.audio, '{AUDIO_EXTENSION}') AS audio_ok,
    NOT (m.has_correction AND m.stripped_text = m.stripped_original) AS distinct_ok,
    (length(m.stripped_text) = 0 OR length(m.stripped_original) = 0 OR (
        length(m.stripped_original) / 3.0::DOUBLE <= length(m.stripped_text)
        AND length(m.stripped_text) <= length(m.stripped_original) * 3.0::DOUBLE)) AS length_ok,
    CASE WHEN regexp_matches(m.text, '[A-Za-z]') THEN true
         WHEN NOT regexp_matches(m.text, '[^\\x00-\\x7f]') THEN false
         ELSE stt_has_letter(m.text) END AS letter_ok,
    (m.error_score IS NULL OR (m.error_score >= 0 AND m.error_score <= 1)) AS score_ok,
    coalesce(m.split_field = m.split, false) AS split_ok
FROM (
    SELECT seq, split, pos, audio, text, case_id, speaker_id, has_correction, error_score, split_field,
        {stripped('text')} AS stripped_text,
        {stripped('original_transcript')} AS stripped_original
    FROM stt_rows
) AS m
"""  # nosec B608

# Repeated case_ids and (audio, text) pairs, with their first row: usually none, so the per-row flags join
# two small tables instead of sorting every row in a window per key. A pair is two long texts: only the rows
# whose pair hash repeats are read again and grouped by their texts, and the repeats are kept by seq.
QUALITY_DUPLICATES = [
    """
CREATE OR REPLACE TEMP TABLE stt_case_dups AS
SELECT case_id, min(seq) AS first_seq, arg_min(split, seq) AS first_split
FROM stt_qrows WHERE case_id <> '' GROUP BY case_id HAVING count(*) > 1
""",
    """
CREATE OR REPLACE TEMP TABLE stt_pair_candidates AS
SELECT seq FROM stt_qrows
WHERE pair_hash IN (SELECT pair_hash FROM stt_qrows WHERE pair_hash IS NOT NULL GROUP BY pair_hash HAVING count(*) > 1)
""",
    """
CREATE OR REPLACE TEMP TABLE stt_pair_dups AS
SELECT seq, first_seq FROM (
    SELECT r.seq, min(r.seq) OVER (PARTITION BY r.audio, r.text) AS first_seq
    FROM stt_rows AS r SEMI JOIN stt_pair_candidates USING (seq)
) AS pairs
WHERE seq > first_seq
""",
    # The first row of each group (speaker, else audio) in each split; case_ids only where repeated.
    """
CREATE OR REPLACE TEMP TABLE stt_key_splits AS
SELECT 0 AS kind, group_key AS key, split, min(seq) AS first_seq
FROM stt_qrows WHERE has_group GROUP BY ALL
UNION ALL
SELECT 1 AS kind, case_id AS key, split, min(seq) AS first_seq
FROM stt_qrows SEMI JOIN stt_case_dups USING (case_id) GROUP BY ALL
""",
]
# The pair step reads stt_rows again: skipped when no pair hash repeats (the usual case).
PAIR_CANDIDATES = "SELECT count(*) FROM stt_pair_candidates"
NO_PAIR_DUPS = (
    "CREATE OR REPLACE TEMP TABLE stt_pair_dups AS SELECT 0::BIGINT AS seq, 0::BIGINT AS first_seq WHERE false"
)

QUALITY_FLAGS = """
CREATE OR REPLACE TEMP TABLE stt_flags AS
SELECT q.seq, q.split, q.pos, q.complete, q.audio_ok, q.distinct_ok, q.length_ok, q.letter_ok, q.score_ok,
    q.split_ok,
    coalesce(q.seq > c.first_seq, false) AS case_repeat,
    c.first_split AS case_first_split,
    coalesce(q.seq > p.first_seq, false) AS pair_repeat
FROM stt_qrows AS q
LEFT JOIN stt_case_dups AS c ON q.case_id = c.case_id
LEFT JOIN stt_pair_dups AS p ON q.seq = p.seq
"""

QUALITY_COUNTS = """
SELECT
    count(*) FILTER (WHERE complete) AS complete,
    count(*) FILTER (WHERE audio_ok AND distinct_ok AND length_ok) AS consistent,
    count(*) FILTER (WHERE letter_ok AND score_ok AND split_ok) AS valid,
    count(*) FILTER (WHERE NOT case_repeat AND NOT pair_repeat) AS "unique",
    count(*) FILTER (WHERE NOT complete) AS completeness_events,
    count(*) FILTER (WHERE NOT audio_ok) + count(*) FILTER (WHERE NOT distinct_ok)
        + count(*) FILTER (WHERE NOT length_ok) AS consistency_events,
    count(*) FILTER (WHERE NOT letter_ok) + count(*) FILTER (WHERE NOT score_ok)
        + count(*) FILTER (WHERE NOT split_ok) AS validity_events,
    count(*) FILTER (WHERE case_repeat) AS case_repeats,
    count(*) FILTER (WHERE pair_repeat) AS pair_repeats
FROM stt_flags
"""

# The first $cap rows with an issue of each per-row category: replaying them in order gives the kept issues.
QUALITY_REPLAY = """
WITH picks AS (
    (SELECT seq FROM stt_flags WHERE NOT complete ORDER BY seq LIMIT $cap)
    UNION (SELECT seq FROM stt_flags WHERE NOT (audio_ok AND distinct_ok AND length_ok) ORDER BY seq LIMIT $cap)
    UNION (SELECT seq FROM stt_flags WHERE NOT (letter_ok AND score_ok AND split_ok) ORDER BY seq LIMIT $cap)
    UNION (SELECT seq FROM stt_flags WHERE case_repeat OR pair_repeat ORDER BY seq LIMIT $cap)
)
SELECT f.split, f.pos, f.case_repeat, f.case_first_split, f.pair_repeat
FROM picks JOIN stt_flags AS f USING (seq)
ORDER BY seq
"""

# The fields of a report's rows, by their split and their places in it.
ROWS_AT = """
SELECT pos, audio, text, case_id, original_transcript, speaker_id, has_correction, error_score, split_field
FROM stt_rows WHERE split = $split AND pos = ANY($positions)
"""

# Groups (speaker, else audio) and case_ids found in more than one split, in the order a pass over the rows
# finds them (at the first row of their second split), with their splits in order of appearance.
QUALITY_LEAKS = """
WITH leaked AS (SELECT kind, key FROM stt_key_splits GROUP BY kind, key HAVING count(*) > 1)
SELECT kind, key, list(split ORDER BY first_seq) AS splits
FROM stt_key_splits SEMI JOIN leaked USING (kind, key)
GROUP BY kind, key
ORDER BY kind, list(first_seq ORDER BY first_seq)[2]
LIMIT $cap
"""

QUALITY_GROUPS = """
SELECT
    count(DISTINCT key) FILTER (WHERE kind = 0) AS groups,
    (SELECT count(*) FROM (SELECT key FROM stt_key_splits WHERE kind = 0 GROUP BY key HAVING count(*) > 1))
        AS leaked_groups,
    (SELECT count(*) FROM (SELECT key FROM stt_key_splits WHERE kind = 1 GROUP BY key HAVING count(*) > 1))
        AS leaked_cases
FROM stt_key_splits
"""

QUALITY_TABLES = ("stt_flags", "stt_case_dups", "stt_pair_candidates", "stt_pair_dups", "stt_key_splits", "stt_qrows")

# -- metadata.json's figures (dataset_build.dataset_metadata) -----------------------------------------------

METADATA_SPLITS = """
SELECT split, count(*) AS size, count(*) FILTER (WHERE has_correction) AS corrected,
    count(DISTINCT CASE WHEN speaker_id <> '' THEN speaker_id ELSE audio END) AS groups
FROM stt_rows GROUP BY split
"""
METADATA_TYPES = "SELECT t AS name, count(*) AS n FROM (SELECT unnest(error_types) AS t FROM stt_rows) GROUP BY t"
METADATA_SCORES = "SELECT error_score FROM stt_rows WHERE error_score IS NOT NULL ORDER BY seq"


# -- a finished dataset's split files (shared/snapshot/dataset_files.py) -------------------------------------

# The fields check_quality reads, as raw JSON (null when absent or null), from each line that is a JSON object.
SPLIT_FIELDS = ("audio", "text", "case_id", "original_transcript", "speaker_id", "has_correction", "error_score",
                "split")


def _json_string(column: str) -> str:
    """SQL for _Row.of's reading of a raw JSON field: the string, or '' when absent or not a string (a JSON
    string's text starts with a quote; only one with a backslash needs JSON's unescaping)."""
    text = f"CAST({column} AS VARCHAR)"
    return (
        f"CASE WHEN NOT coalesce(starts_with({text}, '\"'), false) THEN '' "
        f"WHEN contains({text}, '\\') THEN {column} ->> '$' "
        f"ELSE substr({text}, 2, length({text}) - 2) END"
    )


# A split file's row in the columns the engine's quality path reads (check_quality's normalisation of each raw
# JSON field), plus its raw score and split for the rows a report replays.
_ROW_COLUMNS = f"""
    {_json_string('audio')} AS audio,
    {_json_string('text')} AS text,
    {_json_string('case_id')} AS case_id,
    {_json_string('original_transcript')} AS original_transcript,
    {_json_string('speaker_id')} AS speaker_id,
    coalesce(CAST(has_correction AS VARCHAR) = 'true', false) AS has_correction,
    CASE WHEN error_score IS NULL OR json_type(error_score) = 'NULL' THEN NULL
         WHEN json_type(error_score) IN ('UBIGINT', 'BIGINT', 'DOUBLE') THEN CAST(error_score AS DOUBLE)
         ELSE CAST('NaN' AS DOUBLE) END AS error_score,
    CASE WHEN starts_with(CAST(split AS VARCHAR), '"') THEN split ->> '$' END AS split_field,
    CAST(error_score AS VARCHAR) AS score_json,
    CAST(split AS VARCHAR) AS split_json"""


def _lines_columns(fields: tuple[str, ...]) -> str:
    """The columns a lines table keeps: the quality path's row, or only the raw case_id (for comparisons)."""
    return _ROW_COLUMNS if fields == SPLIT_FIELDS else ", ".join(fields)


def split_lines_fast(table: str, fields: tuple[str, ...] = SPLIT_FIELDS) -> str:
    """One split file's lines as ``table`` (file order = rowid) with DuckDB's JSON reader, each field read as
    raw JSON.

    A line that is malformed or not an object comes out as a row of nulls, like an object with none of the
    fields: such a row is marked ``unreadable``, and a file that has any is read again with
    ``split_lines_exact``."""
    columns = ", ".join(f"{name}: 'JSON'" for name in fields)
    unreadable = " AND ".join(f"{name} IS NULL" for name in fields)
    return f"""
CREATE OR REPLACE TEMP TABLE {table} AS
SELECT {_lines_columns(fields)}, {unreadable} AS unreadable
FROM read_json($path, format = 'newline_delimited', records = true, columns = {{{columns}}},
               ignore_errors = true)
"""  # nosec B608


def unreadable_lines(table: str) -> str:
    """How many lines of a ``split_lines_fast`` table its reader could not tell from an object."""
    return f"SELECT count(*) FROM {table} WHERE unreadable"  # nosec B608


def split_lines_exact(table: str, fields: tuple[str, ...] = SPLIT_FIELDS) -> str:
    """``split_lines_fast`` for a file with unreadable lines: each line parsed whole, only JSON objects kept
    (a case_id line only when the key is there, as case_splits reads it; a null one stays JSON null)."""
    keep = "json_type(json) = 'OBJECT'"
    if fields == ("case_id",):
        keep += " AND json_exists(json, '$.case_id')"
    values = ", ".join(f"json -> '$.{name}' AS {name}" for name in fields)
    return f"""
CREATE OR REPLACE TEMP TABLE {table} AS
SELECT {_lines_columns(fields)}, false AS unreadable
FROM (SELECT {values} FROM read_ndjson_objects($path, ignore_errors = true) WHERE {keep}) AS lines
"""  # nosec B608


def empty_split_lines(table: str, fields: tuple[str, ...] = SPLIT_FIELDS) -> str:
    """``table`` for a missing or empty file (no rows, the columns of the others)."""
    nulls = ", ".join(f"CAST(NULL AS JSON) AS {name}" for name in fields)
    return f"""
CREATE OR REPLACE TEMP TABLE {table} AS
SELECT {_lines_columns(fields)}, false AS unreadable FROM (SELECT {nulls}) AS lines WHERE false
"""  # nosec B608


def rows_from_split_lines(tables: Mapping[str, str]) -> str:
    """stt_rows as the engine's quality path reads it: a view over each split's lines table (split -> table,
    in dataset order). seq orders the rows split by split, then in file order; pos is the row's place in its
    file (a table's rowid: the tables are written in file order)."""
    union = "\nUNION ALL ".join(
        f"SELECT * EXCLUDE (unreadable), '{split}' AS split, {number} * 4294967296 + rowid + 1 AS seq, rowid AS pos "
        f"FROM {table}"  # nosec B608
        for number, (split, table) in enumerate(tables.items())
    )
    return f"CREATE OR REPLACE TEMP VIEW stt_rows AS\n{union}"


# The raw score and split of the rows a report replays, by (split, pos).
RAW_OF_ROWS = """
SELECT split, pos, score_json, split_json FROM stt_rows
WHERE struct_pack(s := split, p := pos) IN (SELECT unnest($keys))
"""

# A case_id line's key as case_splits keys it: str() of the JSON value (Python's spelling of null and booleans).
_CASE_KEY_OF_JSON = """CASE json_type(case_id)
            WHEN 'VARCHAR' THEN case_id ->> '$'
            WHEN 'NULL' THEN 'None'
            WHEN 'BOOLEAN' THEN CASE WHEN CAST(case_id AS VARCHAR) = 'true' THEN 'True' ELSE 'False' END
            ELSE stt_python_str(CAST(case_id AS VARCHAR)) END"""

# versions.compare_cases of two datasets' case -> split maps (case_splits: str() of each case_id, the last
# row of a case_id wins), without building the maps: a full join of each dataset's latest split per case.
# The case lines: (version, split, line, case_key) of both datasets.
CASE_DIFF = """
WITH latest AS (
    SELECT version, case_key, arg_max(split, line) AS split FROM ({case_lines}) AS lines GROUP BY version, case_key
),
joined AS (
    SELECT coalesce(a.case_key, b.case_key) AS case_key, a.split AS split1, b.split AS split2
    FROM (SELECT * FROM latest WHERE version = 1) AS a
    FULL JOIN (SELECT * FROM latest WHERE version = 2) AS b ON a.case_key = b.case_key
)
SELECT
    count(*) FILTER (WHERE split1 IS NULL) AS added,
    count(*) FILTER (WHERE split2 IS NULL) AS removed,
    count(*) FILTER (WHERE split1 IS NOT NULL AND split2 IS NOT NULL) AS kept,
    count(*) FILTER (WHERE split1 <> split2) AS moved,
    coalesce(min(case_key, $cap) FILTER (WHERE split1 <> split2), []) AS moved_case_ids
FROM joined
"""


def parquet_case_ids(table: str) -> str:
    """A Parquet copy's case_ids as ``table`` (case_key, line_no: the row's place in its file)."""
    return f"""
CREATE OR REPLACE TEMP TABLE {table} AS
SELECT case_id AS case_key, file_row_number AS line_no FROM read_parquet($path, file_row_number = true)
"""  # nosec B608


def case_diff(tables: Mapping[tuple[int, str], tuple[str, bool]]) -> str:
    """CASE_DIFF over both datasets' case tables ((version, split) -> (table, from a Parquet copy), in dataset
    order): a split file's lines table (raw JSON case_id, file order = rowid) or a ``parquet_case_ids`` table."""
    union = "\n        UNION ALL ".join(
        f"SELECT {version} AS version, '{split}' AS split, {number} * 4294967296 + line_no AS line, case_key "
        f"FROM {table}" if parquet else  # nosec B608
        f"SELECT {version} AS version, '{split}' AS split, {number} * 4294967296 + rowid AS line, "
        f"{_CASE_KEY_OF_JSON} AS case_key FROM {table}"  # nosec B608
        for number, ((version, split), (table, parquet)) in enumerate(tables.items())
    )
    return CASE_DIFF.replace("{case_lines}", union)


def rows_from_parquet_copies(paths: Mapping[str, str]) -> str:
    """stt_rows for a quality check, as a view over a dataset's Parquet copies (split -> local path, in dataset
    order): the columns the quality rules read, numbered as ``rows_from_split_lines`` numbers a split file's rows
    (seq split by split then in file order, pos the row's place in its file: a filter on it skips to those
    rows). A view, not a table: QUALITY_ROWS reads the texts once; it takes no parameters, so the paths are
    literals, quoted."""
    union = "\nUNION ALL ".join(
        f"SELECT audio, text, case_id, original_transcript, speaker_id, has_correction, error_score, "
        f"'{split}' AS split, c.split AS split_field, "
        f"{number} * 4294967296 + file_row_number + 1 AS seq, file_row_number AS pos "
        f"FROM read_parquet('{path.replace(chr(39), chr(39) * 2)}', file_row_number = true) AS c"  # nosec B608
        for number, (split, path) in enumerate(paths.items())
    )
    return f"CREATE OR REPLACE TEMP VIEW stt_rows AS\n{union}"


def floor_copy(source_sql: str, target: str) -> str:
    """The benchmark's floor: DuckDB's bare read, latest row, score filter, stored split, JSON COPY per split."""
    escaped = target.replace("'", "''")
    return f"""
COPY (
    SELECT case_id, audio_path, coalesce(corrected_transcript, original_transcript) AS text, original_transcript,
        error_types, error_score, speaker_id, language, model_version, duration_s, wer, cer, {SPLIT_CASE} AS split
    FROM ({source_sql}) AS snapshot
    WHERE error_score >= $min_error_score AND corrected_transcript IS NOT NULL
    QUALIFY row_number() OVER (PARTITION BY case_id ORDER BY updated_at DESC NULLS LAST) = 1
) TO '{escaped}' (FORMAT json, PARTITION_BY (split), OVERWRITE_OR_IGNORE)
"""  # nosec B608


def duckdb_statements(columns: Mapping[str, str]) -> dict[str, str]:
    """Every DuckDB statement of a build over parts that all have ``columns`` (for checks and docs)."""
    src = source(columns, dict.fromkeys(columns, 1), 1)
    return {
        "select_keys": select_keys(src, balance=True, capped=True),
        "select_keys_capped": select_keys(src, balance=False, capped=True),
        "select_keys_all": select_keys(src, balance=False, capped=False),
        "select_keys_durations": select_keys(src, balance=True, capped=True, durations=True),
        "select_rows": select_rows(src),
        "dataset_lines": dataset_lines(),
        "quality_rows": QUALITY_ROWS,
        **{f"quality_duplicates_{n}": text for n, text in enumerate(QUALITY_DUPLICATES)},
        "no_pair_dups": NO_PAIR_DUPS,
        "quality_flags": QUALITY_FLAGS,
        "rows_at": ROWS_AT,
        "quality_counts": QUALITY_COUNTS,
        "quality_replay": QUALITY_REPLAY,
        "quality_leaks": QUALITY_LEAKS,
        "quality_groups": QUALITY_GROUPS,
        "metadata_splits": METADATA_SPLITS,
        "metadata_types": METADATA_TYPES,
        "metadata_scores": METADATA_SCORES,
        "rows_from_input": ROWS_FROM_INPUT,
        "keep_durations": KEEP_DURATIONS,
        "split_lines_fast": split_lines_fast("stt_lines_train"),
        "split_lines_exact": split_lines_exact("stt_lines_train"),
        "case_lines_exact": split_lines_exact("stt_cases_1_train", ("case_id",)),
        "rows_from_split_lines": rows_from_split_lines({"train": "stt_lines_train", "val": "stt_lines_val"}),
        "case_diff": case_diff({(1, "train"): ("stt_cases_1_train", False), (2, "train"): ("stt_cases_2_train", True)}),
        "parquet_case_ids": parquet_case_ids("stt_cases_2_train"),
        "rows_from_parquet_copies": rows_from_parquet_copies({"train": "train.parquet", "val": "it's.parquet"}),
        "compacted": compacted(src, columns, "compacted.parquet"),
        "floor_copy": floor_copy(src, "floor"),
    }


# -- BigQuery: the same selection over an external table of the parts ---------------------------------------

_BQ_NOT_BLANK = f"REGEXP_CONTAINS(corrected_transcript, r'{NOT_BLANK}')"
# KNOWN_DURATION in BigQuery: a finite positive number (NaN compares false there too, +inf is excluded by hand).
_BQ_KNOWN_DURATION = "COALESCE(duration_s > 0 AND NOT IS_INF(duration_s) AND NOT IS_NAN(duration_s), FALSE)"


def bigquery_build(table: str) -> str:
    """The build's rows (split, then the row's columns) in BigQuery, over ``table`` (an external table on the
    snapshot's parts; ``_FILE_NAME`` is its pseudo-column). Parameters as for DuckDB, with ``@``; DuckDB's
    duration filter is here always, with ``@min_duration_s`` / ``@max_duration_s`` (FLOAT64, NULL: no bound):
    a case whose known duration is outside them is not eligible (before balancing and ``max_samples``, as in
    select_keys), and one without a known duration stays, for the build to read its clip's header.

    Each split's file is then ``EXPORT DATA OPTIONS (format = 'JSON', uri = '.../<split>-*.jsonl') AS SELECT
    ... WHERE split = '<split>'``; BigQuery's JSON differs from orjson's in number formatting, so a split file
    written there is checked by its rows, not byte for byte with the DuckDB build.
    """
    split_case = (
        "CASE WHEN split_bucket < @edge_train THEN 'train' WHEN split_bucket < @edge_val THEN 'val' "
        "WHEN split_bucket < @edge_test THEN 'test' END"
    )
    return f"""
WITH latest AS (
    SELECT *, _FILE_NAME AS part
    FROM `{table}`
    WHERE TRUE
    QUALIFY ROW_NUMBER() OVER (PARTITION BY case_id ORDER BY updated_at DESC, _FILE_NAME DESC) = 1
),
eligible AS (
    SELECT *, (corrected_transcript IS NOT NULL AND {_BQ_NOT_BLANK}) AS has_correction
    FROM latest
    WHERE (CASE WHEN error_score IS NULL OR IS_NAN(error_score) OR IS_INF(error_score) THEN @min_error_score <= 0
                ELSE error_score >= @min_error_score END)
      AND (@include_uncorrected OR (corrected_transcript IS NOT NULL AND {_BQ_NOT_BLANK}))
      AND (NOT {_BQ_KNOWN_DURATION}
           OR ((@min_duration_s IS NULL OR duration_s >= @min_duration_s)
               AND (@max_duration_s IS NULL OR duration_s <= @max_duration_s)))
),
carried AS (
    SELECT t, COUNT(*) AS n FROM (SELECT DISTINCT case_id, t FROM eligible, UNNEST(error_types) AS t) GROUP BY t
),
labels AS (
    SELECT e.case_id, ARRAY_AGG(t ORDER BY c.n, t LIMIT 1)[OFFSET(0)] AS label
    FROM eligible AS e, UNNEST(e.error_types) AS t JOIN carried AS c USING (t)
    GROUP BY e.case_id
),
labelled AS (
    SELECT e.*, COALESCE(l.label, 'unknown') AS label FROM eligible AS e LEFT JOIN labels AS l USING (case_id)
),
sizes AS (SELECT label, COUNT(*) AS n FROM labelled GROUP BY label),
filled AS (
    SELECT i, n, k - i + 1 AS open_types,
        @max_samples - COALESCE(SUM(n) OVER (ORDER BY i ROWS BETWEEN UNBOUNDED PRECEDING AND 1 PRECEDING), 0)
            AS remaining
    FROM (SELECT n, ROW_NUMBER() OVER (ORDER BY n) AS i, COUNT(*) OVER () AS k FROM sizes)
),
cut AS (
    SELECT DIV(remaining, open_types) AS share, MOD(remaining, open_types) AS extra
    FROM filled WHERE n > DIV(remaining, open_types) ORDER BY i LIMIT 1
),
quota AS (
    SELECT
        IF(@max_samples IS NULL,
           CAST(CEIL(2 * (SELECT PERCENTILE_CONT(n, 0.5) OVER () FROM sizes LIMIT 1)) AS INT64),
           COALESCE((SELECT share FROM cut), (SELECT MAX(n) FROM sizes))) AS per_type,
        IF(@max_samples IS NULL, 0, COALESCE((SELECT extra FROM cut), 0)) AS extra
),
ranked AS (
    SELECT *,
        ROW_NUMBER() OVER (PARTITION BY label ORDER BY sample_key, case_id) AS type_rank,
        ROW_NUMBER() OVER (ORDER BY sample_key, case_id) AS overall_rank
    FROM labelled
),
next_picks AS (
    SELECT case_id FROM (
        SELECT r.case_id, ROW_NUMBER() OVER (ORDER BY r.sample_key, r.case_id) AS pick
        FROM ranked AS r CROSS JOIN quota AS q WHERE r.type_rank = q.per_type + 1
    )
    WHERE pick <= (SELECT extra FROM quota)
)
SELECT
    {split_case} AS split,
    COALESCE(audio_path, '') AS audio,
    IF(has_correction, corrected_transcript, COALESCE(original_transcript, '')) AS text,
    case_id,
    COALESCE(original_transcript, '') AS original_transcript,
    COALESCE(error_types, []) AS error_types,
    IF(IS_NAN(error_score) OR IS_INF(error_score), NULL, error_score) AS error_score,
    has_correction,
    COALESCE(speaker_id, '') AS speaker_id,
    COALESCE(language, '') AS language,
    COALESCE(model_version, '') AS model_version,
    IF(IS_NAN(duration_s) OR IS_INF(duration_s), NULL, duration_s) AS duration_s,
    IF(IS_NAN(wer) OR IS_INF(wer), NULL, wer) AS wer,
    IF(IS_NAN(cer) OR IS_INF(cer), NULL, cer) AS cer
FROM ranked CROSS JOIN quota LEFT JOIN next_picks AS picked USING (case_id)
WHERE IF(@balance, type_rank <= per_type OR picked.case_id IS NOT NULL,
         @max_samples IS NULL OR overall_rank <= @max_samples)
ORDER BY split, case_id
"""  # nosec B608

