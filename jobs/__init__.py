"""Thin job entry points.

Each runs as ``spark-submit jobs/<job>.py``, ``python -m jobs.<job>`` and ``seglake <job>``.
"""
