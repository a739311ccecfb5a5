"""seglake: customer segmentation on Spark and Delta Lake.

This package holds the job-side plumbing shared by every job (config, session,
table I/O, run log, command line). Pure DataFrame logic lives in ``transforms``;
entry points live in ``jobs``.
"""

from __future__ import annotations

__version__ = "0.1.0"
