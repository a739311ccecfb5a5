"""Calendar helpers: months of timestamps and as-of dates, as ``YYYY-MM`` labels.

Every calendar date is taken in the session time zone (``spark.timezone``): a receipt's
month, the months an as-of date and its window cut, and the months read back from
silver, whose ``receipt_month`` partition is the month in the zone cleanse ran in.
"""

from __future__ import annotations

import datetime as dt
from dataclasses import dataclass

from pyspark.sql import Column, DataFrame
from pyspark.sql import functions as F


def month_of(timestamp: str | Column) -> Column:
    """Calendar month (``YYYY-MM``) of a timestamp in the session time zone (``spark.timezone``).

    The ``receipt_month`` partition of bronze and silver is this month when they were written,
    the rollup's ``month`` the same at features time: in another zone they can differ near a
    month edge (see :func:`receipts_of_months`).
    """
    return F.date_format(timestamp, "yyyy-MM")


def month_label(day: dt.date) -> str:
    """``YYYY-MM`` of ``day``."""
    return f"{day:%Y-%m}"


def shift_month(label: str, months: int) -> str:
    """The month ``months`` calendar months after ``label`` (``YYYY-MM``; negative: before)."""
    year, month = (int(part) for part in label.split("-"))
    index = year * 12 + (month - 1) + months
    return f"{index // 12:04d}-{index % 12 + 1:02d}"


def neighbour_months(months: list[str]) -> list[str]:
    """``months`` and the month before and after each (``YYYY-MM``), sorted."""
    return sorted({shift_month(label, step) for label in months for step in (-1, 0, 1)})


def trend_months(last_whole_month: str) -> tuple[list[str], list[str]]:
    """The 3 calendar months ending with ``last_whole_month`` (``YYYY-MM``) and the 3 before."""
    labels = [shift_month(last_whole_month, -back) for back in range(6)]
    return labels[:3], labels[3:]


def as_of_cuts_month(as_of: dt.date) -> bool:
    """True unless ``as_of`` is the last day of its month."""
    return (as_of + dt.timedelta(days=1)).day != 1


def last_whole_month(as_of: dt.date) -> str:
    """Latest month (``YYYY-MM``) that ends on or before ``as_of``."""
    if not as_of_cuts_month(as_of):
        return month_label(as_of)
    return month_label(as_of.replace(day=1) - dt.timedelta(days=1))


@dataclass(frozen=True)
class ProfilePeriod:
    """Which months an as-of date ``D`` and a window of ``W`` days cut, as ``YYYY-MM`` labels."""

    as_of: dt.date
    window_days: int

    @property
    def window_start(self) -> dt.date:
        """First day inside the window ``(D-W, D]``."""
        return self.as_of - dt.timedelta(days=self.window_days - 1)

    @property
    def as_of_cuts_month(self) -> bool:
        return as_of_cuts_month(self.as_of)

    @property
    def last_whole_month(self) -> str:
        """Latest month that ends on or before ``D``."""
        return last_whole_month(self.as_of)

    @property
    def first_whole_window_month(self) -> str:
        """Earliest month that starts on or after the window start."""
        start = self.window_start
        if start.day == 1:
            return month_label(start)
        return month_label((start.replace(day=28) + dt.timedelta(days=4)).replace(day=1))

    @property
    def as_of_month(self) -> str | None:
        """``D``'s month when ``D`` cuts it (read from receipts), else None."""
        return month_label(self.as_of) if self.as_of_cuts_month else None

    @property
    def cut_months(self) -> list[str]:
        """The months read from the receipts: the ones the window start and ``D`` cut."""
        months = [month_label(self.window_start)] if self.window_start.day != 1 else []
        if self.as_of_month is not None:
            months.append(self.as_of_month)
        return sorted(set(months))


def receipts_of_months(receipts: DataFrame, months: list[str]) -> DataFrame:
    """The silver receipts whose month in the session time zone is one of ``months``.

    Silver's ``receipt_month`` partition is the month in the time zone of the run that
    cleansed it. In another session zone a receipt within a day of a month edge lies in
    the neighbouring partition, so the partitions of the neighbouring months are read
    too (pruning), and the month is recomputed from ``receipt_ts`` to select the rows.
    """
    return receipts.where(F.col("receipt_month").isin(neighbour_months(months)) & month_of("receipt_ts").isin(months))
