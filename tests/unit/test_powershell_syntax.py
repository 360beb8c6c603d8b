"""Every PowerShell file the collection ships parses without a syntax error (tree-sitter-powershell).

There is no PowerShell on these machines (no pwsh package), so this is the check that can run here: the
tree-sitter grammar of PowerShell, from PyPI (requirements-dev.txt). It is stricter than PowerShell in a
few places (numeric suffixes such as 1GB, a line continued after a binary operator, generic type names
with a backtick): the shipped modules avoid those forms. A file with an ERROR or MISSING node fails,
naming the line. Parsing says nothing about behaviour; see docs/iis.md for what was tested how.
"""
from __future__ import annotations

from pathlib import Path

import pytest

from collection_link import REPO_ROOT

try:
    import tree_sitter
    import tree_sitter_powershell
except ImportError as exc:  # pragma: no cover - the dev requirements bring them
    raise ImportError("tree-sitter and tree-sitter-powershell are required (pip install -r requirements-dev.txt)") from exc

SKIP_DIRS = {".cache", ".git", "output", "node_modules"}
SHIPPED = sorted(path for path in REPO_ROOT.rglob("*.ps1") if not SKIP_DIRS & set(path.relative_to(REPO_ROOT).parts))


def _parser():
    return tree_sitter.Parser(tree_sitter.Language(tree_sitter_powershell.language()))


def syntax_errors(source: bytes) -> list[str]:
    """'line N: ERROR near ...' for every ERROR or MISSING node of the parse tree (empty when it parses)."""
    problems = []

    def walk(node):
        if node.type == "ERROR" or node.is_missing:
            kind = f"MISSING {node.type}" if node.is_missing else "ERROR"
            text = node.text.decode("utf-8", "replace").splitlines()[0][:60] if node.text else ""
            problems.append(f"line {node.start_point[0] + 1}: {kind} near {text!r}")
            return
        if node.has_error:
            for child in node.children:
                walk(child)

    walk(_parser().parse(source).root_node)
    return problems


def test_the_collection_ships_powershell():
    names = {path.name for path in SHIPPED}
    assert {"win_iis_facts.ps1", "win_iis_certificate.ps1", "win_iis_binding.ps1", "windows-httpd-conf.ps1"} <= names, names


@pytest.mark.parametrize("path", SHIPPED, ids=[str(path.relative_to(REPO_ROOT)) for path in SHIPPED])
def test_powershell_file_parses(path: Path):
    assert syntax_errors(path.read_bytes()) == [], f"{path.relative_to(REPO_ROOT)} does not parse"


@pytest.mark.parametrize("broken", [
    b"function Get-X {\n    if ($a) {\n        $b = 1\n",          # an unclosed block
    b"$spec = @{\n    options = @{ state = @{ type = 'str' }\n}\n",  # an unclosed hashtable
    b"foreach ($item in $list {\n}\n",                             # a missing parenthesis
])
def test_a_syntax_error_is_found(broken: bytes):
    assert syntax_errors(broken)


def test_module_header_and_spec():
    """The modules use Ansible.Basic the way ansible.windows modules do (a spec, check mode, diff)."""
    for name in ("win_iis_facts", "win_iis_certificate", "win_iis_binding"):
        text = (REPO_ROOT / "plugins" / "modules" / f"{name}.ps1").read_text(encoding="utf-8")
        assert text.startswith("#!powershell\n") and "#AnsibleRequires -CSharpUtil Ansible.Basic" in text, name
        assert "[Ansible.Basic.AnsibleModule]::Create($args, $spec)" in text and "supports_check_mode = $true" in text, name
        assert (REPO_ROOT / "plugins" / "modules" / f"{name}.py").is_file(), name
    for name in ("win_iis_certificate", "win_iis_binding"):
        text = (REPO_ROOT / "plugins" / "modules" / f"{name}.ps1").read_text(encoding="utf-8")
        assert "$module.CheckMode" in text and "$module.Diff" in text, name
