"""The feedback thread: idle means asleep, wakes coalesce, a failing push is counted and survived."""

import collections
import threading
import time

from ravelive.control.push_thread import PushThread


def test_an_idle_push_thread_never_runs_and_each_wake_runs_one_round():
    rounds = []
    pushed = threading.Event()
    thread = PushThread("test-push", lambda: (rounds.append(1), pushed.set()), collections.Counter(), rate=1000)
    thread.start()
    time.sleep(0.2)  # 200 rounds at its rate, if it polled
    assert rounds == []
    thread.wake()
    assert pushed.wait(2.0)
    thread.close()
    assert rounds == [1]


def test_wakes_during_a_round_coalesce_into_the_next_one():
    release, started = threading.Event(), threading.Event()
    rounds = []

    def push():
        rounds.append(1)
        started.set()
        release.wait(2.0)

    thread = PushThread("test-push", push, collections.Counter(), rate=1000)
    thread.start()
    thread.wake()
    assert started.wait(2.0)
    for _ in range(50):
        thread.wake()
    release.set()
    deadline = time.monotonic() + 2.0
    while len(rounds) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    time.sleep(0.05)
    thread.close()
    assert rounds == [1, 1]  # the first, then one for all fifty wakes


def test_a_push_that_raises_is_counted_and_the_next_wake_still_pushes():
    faults = collections.Counter()
    calls = []

    def push():
        calls.append(1)
        if len(calls) == 1:
            raise ValueError("bad value")

    thread = PushThread("test-push", push, faults, rate=1000)
    thread.start()
    thread.wake()
    deadline = time.monotonic() + 2.0
    while not faults["internal"] and time.monotonic() < deadline:
        time.sleep(0.01)
    thread.wake()
    while len(calls) < 2 and time.monotonic() < deadline:
        time.sleep(0.01)
    thread.close()
    assert faults["internal"] == 1 and len(calls) == 2
