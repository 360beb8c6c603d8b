"""Run a module's main() in-process with real arguments and capture its JSON result."""
from __future__ import annotations

import json
from unittest import mock

import pytest
from ansible.module_utils import _internal, basic
from ansible.module_utils.common.text.converters import to_bytes


@pytest.fixture
def run_module(capsys):
    """Return a callable: run_module(main, args) -> result dict (with 'failed' on failure)."""

    def runner(main, args: dict) -> dict:
        payload = to_bytes(json.dumps({"ANSIBLE_MODULE_ARGS": dict(args, _ansible_remote_tmp="/tmp", _ansible_keep_remote_files=False)}))
        # Importing any controller code (an action plugin or filter test in the same worker) flips
        # is_controller, which would send module warnings to Display instead of the result.
        with mock.patch.object(basic, "_ANSIBLE_ARGS", payload), mock.patch.object(basic, "_ANSIBLE_PROFILE", "legacy", create=True), \
                mock.patch.object(_internal, "is_controller", False):
            with pytest.raises(SystemExit):
                main()
        out = capsys.readouterr().out
        return json.loads(out)

    return runner
