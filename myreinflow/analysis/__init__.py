"""Aggregation of a study's CSVs into tidy summary tables, and its figures (`myreinflow summarize`)."""
