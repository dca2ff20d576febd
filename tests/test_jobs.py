"""The one background job runner and its error policy."""

from __future__ import annotations

import copy
import pickle
import threading

import pytest

from lightning_ner_viz.runtime.jobs import JobRunner


@pytest.mark.parametrize("enabled", [True, False])
def test_errors_are_kept_in_order_and_later_jobs_of_a_failed_group_are_skipped(enabled):
    runner = JobRunner("test-jobs", enabled=enabled)
    ran: list[str] = []

    def job(name: str, fail: bool = False) -> None:
        ran.append(name)
        if fail:
            raise ValueError(name)

    runner.submit(job, "a1", group="a")
    runner.submit(job, "a2", True, group="a")
    runner.submit(job, "a3", group="a")  # skipped: it depends on a2
    runner.submit(job, "b1", True, group="b")
    runner.submit(job, "free", True)  # no group: never skipped, its error kept too
    runner.submit(job, "b2", group="b")
    runner.wait()
    assert ran == ["a1", "a2", "b1", "free"]
    assert [str(e) for e in runner.take_errors()] == ["a2", "b1", "free"]
    assert runner.take_errors() == [] and runner.pending == 0
    runner.close()
    runner.submit(job, "a4", group="a")  # a closed runner forgets failed groups and starts a new thread
    runner.wait()
    assert ran[-1] == "a4"
    runner.close()


def test_a_bounded_queue_blocks_the_submitter_until_a_job_is_done():
    runner = JobRunner("test-bounded", max_pending=1)
    gate = threading.Event()
    runner.submit(gate.wait)  # running
    runner.submit(lambda: None)  # waiting: the queue is full
    submitted = threading.Event()
    thread = threading.Thread(target=lambda: (runner.submit(lambda: None), submitted.set()))
    thread.start()
    assert not submitted.wait(0.3)
    gate.set()
    assert submitted.wait(5)
    thread.join()
    runner.close()
    assert runner.take_errors() == []


def test_a_runner_pickles_and_copies_without_its_thread():
    runner = JobRunner("test-pickle", max_pending=3)
    runner.submit(lambda: None)
    for clone in (pickle.loads(pickle.dumps(runner)), copy.deepcopy(runner)):
        assert (clone.name, clone.max_pending, clone.enabled, clone.pending) == ("test-pickle", 3, True, 0)
    runner.close()
