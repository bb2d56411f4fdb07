"""Answers read from the stored route observations: costs, SLO checks, anomalies, views.

Each report is a module of its own with a Python API returning typed dataclasses; the
``otel-llm`` commands print them. Nothing is imported here, so importing one report
does not load the others.
"""
