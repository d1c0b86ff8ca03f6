"""core.runtime.quiet_waiting_thread: the thread that waits on MindSpore (and only it) goes to SCHED_IDLE."""
import os
import sys
import threading

import pytest

from core import runtime


def _in_thread(env_value, monkeypatch):
    if env_value is None:
        monkeypatch.delenv("FACEGAN_QUIET_WAIT", raising=False)
    else:
        monkeypatch.setenv("FACEGAN_QUIET_WAIT", env_value)
    out = {}

    def body():
        me = threading.get_native_id()
        out["before"] = os.sched_getscheduler(me)
        out["nice_before"] = os.getpriority(os.PRIO_PROCESS, me)
        out["did"] = runtime.quiet_waiting_thread()
        out["after"] = os.sched_getscheduler(me)
        out["nice_after"] = os.getpriority(os.PRIO_PROCESS, me)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
def test_quiet_waiting_thread_lowers_only_the_calling_thread(monkeypatch):
    main = threading.get_native_id()
    main_before = os.sched_getscheduler(main)
    out = _in_thread(None, monkeypatch)
    assert out["did"] and out["after"] == os.SCHED_IDLE and out["before"] == main_before != os.SCHED_IDLE
    assert os.sched_getscheduler(main) == main_before      # the rest of the process keeps its own


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
def test_quiet_waiting_thread_can_be_switched_off(monkeypatch):
    out = _in_thread("0", monkeypatch)
    assert not out["did"] and out["after"] == out["before"] and out["nice_after"] == out["nice_before"]


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
def test_quiet_waiting_thread_nice_only(monkeypatch):
    out = _in_thread("nice", monkeypatch)
    assert out["did"] and out["after"] == out["before"] != os.SCHED_IDLE and out["nice_after"] == 19
