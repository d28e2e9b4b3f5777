"""Benchmarks run as scripts (``python benchmarks/<name>.py``); ``benchmarks.stack`` is their shared kit."""
