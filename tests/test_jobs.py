"""The one background job runner and its error policy."""

from __future__ import annotations

import copy
import pickle
import threading
import time

import pytest

from lightning_ner_viz.runtime.jobs import JobRunner

pytestmark = pytest.mark.serial  # wall-clock bounds: run alone, after the parallel tests (scripts/test.sh)


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


def test_a_blocked_submit_gives_up_when_told_to_stop():
    runner = JobRunner("test-stop", max_pending=1)
    gate, stop = threading.Event(), threading.Event()
    ran: list[str] = []
    runner.submit(gate.wait)  # running
    runner.submit(ran.append, "queued")  # waiting: the queue is full
    assert runner.full and runner.waiting == 1
    result: list[bool] = []
    thread = threading.Thread(target=lambda: result.append(runner.submit(ran.append, "refused", stop=stop.is_set)))
    thread.start()
    assert not thread.join(0.3) and thread.is_alive()  # blocked
    stop.set()
    thread.join(5)
    assert result == [False] and runner.pending == 2  # not queued, not counted
    gate.set()
    assert runner.wait(timeout=5)
    assert ran == ["queued"]
    runner.close()


def test_wait_gives_up_on_timeout_or_stop_and_drain_takes_back_what_has_not_started():
    runner = JobRunner("test-drain", max_pending=3)
    gate = threading.Event()
    ran: list[int] = []
    runner.submit(gate.wait)
    for i in range(3):
        runner.submit(ran.append, i, group="g")
    started = time.monotonic()
    assert runner.wait(timeout=0.2) is False and time.monotonic() - started < 1
    assert runner.wait(stop=lambda: True) is False
    assert [job.args for job in runner.queued()] == [(0,), (1,), (2,)] and runner.waiting == 3
    taken = runner.drain()
    assert [job.args for job in taken] == [(0,), (1,), (2,)] and taken[0].group == "g"
    assert runner.pending == 1 and runner.waiting == 0
    gate.set()
    assert runner.wait(timeout=5) and ran == []  # drained jobs never run
    runner.close()


def test_close_with_a_timeout_leaves_a_busy_thread_and_a_new_submit_gets_a_fresh_queue():
    runner = JobRunner("test-close")
    gate = threading.Event()
    runner.submit(gate.wait)
    started = time.monotonic()
    assert runner.close(timeout=0.1) is False and time.monotonic() - started < 1
    ran: list[str] = []
    runner.submit(ran.append, "after")  # a new thread, not queued behind the busy one
    gate.set()
    assert runner.wait(timeout=5) and ran == ["after"]
    assert runner.close(timeout=5) is True


@pytest.mark.parametrize("bad", [0, -2, 1.5, True])
def test_max_pending_must_be_a_positive_integer(bad):
    with pytest.raises(ValueError, match="max_pending"):
        JobRunner("test-bad", max_pending=bad)
