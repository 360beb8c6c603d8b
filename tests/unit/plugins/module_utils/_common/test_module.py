"""The one way modules turn a missing library or an error into a failed task."""
from __future__ import annotations

import pytest
import yaml

from ansible_collections.certfleet.tls.plugins.doc_fragments.certificate_files import ModuleDocFragment
from ansible_collections.certfleet.tls.plugins.module_utils._common import module as _module
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError


class Failed(Exception):
    """Raised by FakeModule.fail_json, as AnsibleModule exits."""


class FakeModule:
    """The one attribute the helpers use: fail_json."""

    def __init__(self):
        self.failure = None

    def fail_json(self, **kwargs):
        self.failure = kwargs
        raise Failed()


class PolicyProblem(CertfleetError):
    def __init__(self, errors):
        super().__init__("policy says no")
        self.errors = errors


def _raise(exc):
    raise exc


def test_returns_what_the_work_returns():
    module = FakeModule()
    assert _module.run_or_fail(module, lambda: {"changed": True}, doing="in the test") == {"changed": True}
    assert module.failure is None


def test_certfleet_error_is_its_message_with_the_fields():
    module = FakeModule()
    with pytest.raises(Failed):
        _module.run_or_fail(module, lambda: _raise(CertfleetError("path: '/x' does not exist")), doing="in the test",
                            fields={"directory": "/store/ca/root"}, error_fields=lambda exc: {"filename": "/x"})
    assert module.failure == {"msg": "path: '/x' does not exist", "directory": "/store/ca/root", "filename": "/x"}


def test_error_fields_see_the_exception():
    module = FakeModule()
    with pytest.raises(Failed):
        _module.run_or_fail(module, lambda: _raise(PolicyProblem(["CN is not allowed"])), doing="in the test",
                            error_fields=lambda exc: {"policy_errors": exc.errors})
    assert module.failure == {"msg": "policy says no", "policy_errors": ["CN is not allowed"]}


def test_unexpected_error_is_one_line_and_the_traceback_only_in_exception():
    module = FakeModule()
    with pytest.raises(Failed):
        _module.run_or_fail(module, lambda: _raise(KeyError("serial")), doing="issuing /etc/ssl/www.pem",
                            fields={"directory": "/d"}, error_fields=lambda exc: {"filename": "/never"})
    assert module.failure["msg"] == "unexpected error issuing /etc/ssl/www.pem: 'serial'"
    assert module.failure["directory"] == "/d"
    assert "filename" not in module.failure
    assert module.failure["exception"].startswith("Traceback (most recent call last)")
    assert "KeyError: 'serial'" in module.failure["exception"]


def test_require_cryptography(monkeypatch):
    module = FakeModule()
    _module.require_cryptography(module)
    assert module.failure is None
    monkeypatch.setattr(_module, "HAS_CRYPTOGRAPHY", False)
    monkeypatch.setattr(_module, "CRYPTOGRAPHY_IMPORT_ERROR", "Traceback: no module named cryptography")
    with pytest.raises(Failed):
        _module.require_cryptography(module)
    assert "cryptography" in module.failure["msg"]
    assert module.failure["exception"] == "Traceback: no module named cryptography"


class ExitingModule(FakeModule):
    """Also records warn() and exit_json()."""

    def __init__(self, *, diff: bool):
        super().__init__()
        self._diff = diff
        self.warnings = []
        self.exited = None

    def warn(self, warning):
        self.warnings.append(warning)

    def exit_json(self, **kwargs):
        self.exited = kwargs


@pytest.mark.parametrize("diff", [True, False])
def test_exit_with_warns_and_keeps_the_diff_only_in_diff_mode(diff):
    module = ExitingModule(diff=diff)
    _module.exit_with(module, {"changed": True, "diff": {"before": "a", "after": "b"}}, warnings=["one", "two"])
    assert module.warnings == ["one", "two"]
    assert module.exited == ({"changed": True, "diff": {"before": "a", "after": "b"}} if diff else {"changed": True})


def test_certificate_files_argument_spec_matches_its_doc_fragment():
    documented = yaml.safe_load(ModuleDocFragment.DOCUMENTATION)["options"]
    spec = _module.certificate_files_argument_spec()
    assert sorted(spec) == sorted(documented)
    for name, option in spec.items():
        assert option["type"] == documented[name]["type"], name
        assert option.get("default") == documented[name].get("default"), name
