"""The deploy_files action waits for the host's deploy lock of a live run, bounded, and takes over the lock of a killed one."""
from __future__ import annotations

import os
import socket
import subprocess
import sys

from ansible_collections.certfleet.tls.plugins.action import deploy_files as action


class _Action:
    """Only _execute_module of ActionBase: answers from a script."""

    _locked = action.ActionModule._locked

    def __init__(self, answers):
        self.answers = list(answers)
        self.calls = []

    def _execute_module(self, module_name, module_args, task_vars):
        del module_name, task_vars
        self.calls.append(dict(module_args))
        return self.answers.pop(0)


def _held(owner, token="t1"):
    return {"failed": True, "lock_held": True, "msg": "the deploy lock of this host is held by transaction X",
            "lock_holder": {"token": token, "owner": owner, "transaction": "X"}}


def test_a_live_holder_is_waited_for_then_named(monkeypatch):
    monkeypatch.setattr(action, "LOCK_POLL", 0.01)
    alive = action.run_owner()  # this test's own parent: alive
    runner = _Action([_held(alive)] * 1000)
    answer = runner._locked({"lock_stale": 3600}, 0, {})
    assert answer["failed"] and "waited 0 s (lock_wait)" in answer["msg"] and "nothing was written" in answer["msg"]
    assert "takeover" not in runner.calls[-1]


def test_the_lock_is_used_once_the_holder_finished(monkeypatch):
    monkeypatch.setattr(action, "LOCK_POLL", 0.01)
    runner = _Action([_held(action.run_owner()), _held(action.run_owner()), {"changed": True}])
    answer = runner._locked({"lock_stale": 3600}, 30, {})
    assert answer["changed"] and len(runner.calls) == 3 and answer["lock_waited_for"]["token"] == "t1"


def test_the_lock_of_a_killed_run_of_this_controller_is_taken_over_at_once():
    child = subprocess.Popen([sys.executable, "-c", "pass"])  # pylint: disable=consider-using-with
    child.wait()
    gone = {"controller": socket.gethostname(), "pid": child.pid, "started": "1"}
    assert action.run_is_gone(gone)
    runner = _Action([_held(gone, token="dead"), {"changed": True}])
    assert runner._locked({"lock_stale": 3600}, 0, {})["changed"]
    assert runner.calls[1]["takeover"] == "dead"


def test_a_holder_on_another_controller_is_never_judged_gone_from_here():
    assert not action.run_is_gone({"controller": socket.gethostname() + "-other", "pid": 2 ** 22 + 7})
    assert not action.run_is_gone(None)
    assert not action.run_is_gone({"controller": socket.gethostname(), "pid": os.getpid(),
                                   "started": action._start_time(os.getpid())})
