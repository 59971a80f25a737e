"""The case snapshot's I/O: Parquet parts in a bucket or a folder, and dataset builds on DuckDB over them.

A package of its own rather than files under shared/adapters: the snapshot is a second store (the analytical
one) with its own engine, and its modules (parts.py: the writer, reader checks and compaction; sql.py: every
SQL text, DuckDB and BigQuery; engine.py: the build) import duckdb and pyarrow.parquet, which shared/domain
must not. It imports nothing of google.*: the bucket is reached through a small port (parts.PartStore).
"""
