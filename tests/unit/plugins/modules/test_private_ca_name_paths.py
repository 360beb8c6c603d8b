# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""private_ca and private_ca_certificate refuse a CA name that is not one directory of the store
(issue 16, rows 9 and 10): ``ca: ../../other/ca/netca`` once signed with a CA outside the store."""
from __future__ import annotations

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._csr.csr import create_csr_pem
from ansible_collections.certfleet.tls.plugins.module_utils._common.keys import generate_private_key
from ansible_collections.certfleet.tls.plugins.modules import private_ca, private_ca_certificate

PASS = "Ca-Names-Module-Pass-2"


def make_ca(run_module, store, name):
    result = run_module(private_ca.main, {"store_path": str(store), "name": name, "passphrase": PASS, "kind": "root",
                                          "key_type": "ECC", "allowed_domains": ["example.intra"]})
    assert not result.get("failed"), result


@pytest.mark.parametrize("ca", ["../../other/ca/netca", "../../store/ca/intranet", "intranet\n", "../intranet"])
def test_private_ca_certificate_refuses_a_ca_outside_the_store(tmp_path, run_module, ca):
    make_ca(run_module, tmp_path / "other", "netca")
    make_ca(run_module, tmp_path / "store", "intranet")
    csr = create_csr_pem(generate_private_key(key_type="ECC"), subject={"CN": "portal.example.intra"}, subject_alt_names=[])
    result = run_module(private_ca_certificate.main, {"store_path": str(tmp_path / "store"), "ca": ca, "passphrase": PASS,
                                                      "csr_content": csr.decode(), "path": str(tmp_path / "portal.crt")})
    assert result["failed"] and f"ca: {ca!r} must be 1-128 characters of letters, digits" in result["msg"], result
    assert "Traceback" not in result["msg"] and not (tmp_path / "portal.crt").exists()
    assert not list(tmp_path.rglob("issued/*.pem"))  # no CA signed anything


@pytest.mark.parametrize("name", ["ca\n", "../../other/ca/netca"])
def test_private_ca_refuses_a_name_that_is_not_one_directory(tmp_path, run_module, name):
    result = run_module(private_ca.main, {"store_path": str(tmp_path / "store"), "name": name, "passphrase": PASS,
                                          "kind": "root", "key_type": "ECC"})
    assert result["failed"] and "must be 1-128 characters" in result["msg"], result
    assert not (tmp_path / "store" / "ca").exists() or not any((tmp_path / "store" / "ca").iterdir())
    assert not (tmp_path / "other").exists()
