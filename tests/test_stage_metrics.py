"""bench.stage_metrics: Spark stage metrics summed per seglake job and per job run."""

from __future__ import annotations

from typing import Any

from bench.stage_metrics import summary


def stage(description: str, shuffle: int, spill: int, tasks: int) -> dict[str, Any]:
    return {
        "description": description,
        "name": "save",
        "numTasks": tasks,
        "inputBytes": 0,
        "outputBytes": 0,
        "shuffleWriteBytes": shuffle,
        "shuffleReadBytes": shuffle,
        "memoryBytesSpilled": 0,
        "diskBytesSpilled": spill,
        "executorRunTime": 1000,
    }


SEEN = {
    "app/1/0": stage("seglake features as of 2024-12-31 (run 2ab1141d55aa)", 10, 7, 16),
    "app/2/0": stage("seglake features as of 2024-12-31 (run 2ab1141d55aa)", 5, 2, 90),
    "app/3/0": stage("seglake features as of 2024-12-31 (run 186fd584cba4)", 12, 0, 66),
    "app/4/0": stage("seglake generate: bronze/receipts (run 6514720cd00d)", 0, 0, 128),
    "app/5/0": stage("Delta: an internal query", 1, 0, 4),
}


def test_summary_adds_up_each_job_and_each_run_apart() -> None:
    jobs = summary(SEEN)
    assert set(jobs) == {"features", "generate", "(other)"}
    features = jobs["features"]
    assert (features["shuffleWriteBytes"], features["diskBytesSpilled"], features["maxTasks"]) == (27, 9, 90)
    assert (features["stages"], features["executorRunTime"]) == (3, 3000)
    runs = summary(SEEN, by_run=True)
    assert set(runs) == {"features 2ab1141d", "features 186fd584", "generate 6514720c", "(other)"}
    assert (runs["features 2ab1141d"]["shuffleWriteBytes"], runs["features 2ab1141d"]["diskBytesSpilled"]) == (15, 9)
    assert (runs["features 186fd584"]["diskBytesSpilled"], runs["features 186fd584"]["maxTasks"]) == (0, 66)
