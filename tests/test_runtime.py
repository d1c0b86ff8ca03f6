"""models.runtime.quiet_waiting_thread: the thread that waits on MindSpore (and only it) drops to nice 19."""
import os
import sys
import threading

import pytest

from models import runtime


def _in_thread(env_value, monkeypatch):
    if env_value is None:
        monkeypatch.delenv("FACEGAN_QUIET_WAIT", raising=False)
    else:
        monkeypatch.setenv("FACEGAN_QUIET_WAIT", env_value)
    out = {}

    def body():
        me = threading.get_native_id()
        out["before"] = os.getpriority(os.PRIO_PROCESS, me)
        out["did"] = runtime.quiet_waiting_thread()
        out["after"] = os.getpriority(os.PRIO_PROCESS, me)

    t = threading.Thread(target=body)
    t.start()
    t.join()
    return out


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
def test_quiet_waiting_thread_lowers_only_the_calling_thread(monkeypatch):
    main = threading.get_native_id()
    main_before = os.getpriority(os.PRIO_PROCESS, main)
    out = _in_thread(None, monkeypatch)
    assert out["did"] and out["after"] == 19 and out["before"] == main_before
    assert os.getpriority(os.PRIO_PROCESS, main) == main_before      # the rest of the process keeps its own


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="per-thread priorities are Linux's")
def test_quiet_waiting_thread_can_be_switched_off(monkeypatch):
    out = _in_thread("0", monkeypatch)
    assert not out["did"] and out["after"] == out["before"]
