"""Versioned schema migrations (``NNNN_name.sql``), applied in order by :mod:`..migrate`.

The files name no schema: the runner sets ``search_path`` to the target schema, so one
set of files serves the default ``otel_llm`` schema and the per-run schemas of tests.
"""
