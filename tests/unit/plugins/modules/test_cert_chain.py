# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The cert_chain module run in-process: every input format, every output, idempotence, AIA, openssl."""

from __future__ import annotations

import http.server
import json
import os
import random
import shutil
import stat
import subprocess
import threading

import pytest
from cryptography.hazmat.primitives import serialization

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.modules import cert_chain
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb

OPENSSL = shutil.which("openssl") or "/usr/bin/openssl"
needs_openssl = pytest.mark.skipif(not os.path.exists(OPENSSL), reason="openssl CLI not available")
PFX_PASS = "Pfx-Unit-Pass-5"
KEY_PASS = "Key-Unit-Pass-6"
SEEDS = (0, 3, 2026)


@pytest.fixture(scope="module")
def pki() -> pb.StandardPKI:
    return pb.standard_pki()


def fingerprints(certs) -> list[str]:
    return [_chain.certificate_info(getattr(c, "cert", c))["sha256"] for c in certs]


def write(path, data: bytes):
    path.parent.mkdir(parents=True, exist_ok=True)
    path.write_bytes(data)
    return str(path)


def encrypted_key_pem(key) -> bytes:
    return key.private_bytes(serialization.Encoding.PEM, serialization.PrivateFormat.PKCS8,
                             serialization.BestAvailableEncryption(KEY_PASS.encode()))


def pile_files(directory, pki, fmt: str, seed: int) -> dict:
    """Module options for the leaf + pile of ``pki`` in one input format, shuffled by ``seed``."""
    rng = random.Random(seed)
    cas = pki.pile + [pki.int2, pki.root]  # duplicates, cross and unrelated certificates on purpose
    rng.shuffle(cas)
    leaf = write(directory / "server.cer", pki.leaf.der)
    if fmt == "pem_junk":
        return {"certificate_path": leaf, "chain_paths": [write(directory / "mail.txt", pb.pem_bundle(cas))]}
    if fmt == "pem_crlf":
        return {"certificate_path": leaf, "chain_paths": [write(directory / "chain.crt", pb.pem_bundle(cas, crlf=True))]}
    if fmt == "der_directory":
        for index, item in enumerate(cas):
            write(directory / "incoming" / f"ca{index}.cer", item.der)
        return {"certificate_path": leaf, "chain_paths": [str(directory / "incoming")]}
    if fmt == "p7b_der":
        return {"certificate_path": leaf, "chain_paths": [write(directory / "chain.p7b", pb.p7b(cas))]}
    if fmt == "p7b_pem":
        return {"certificate_path": leaf, "chain_paths": [write(directory / "chain.p7c", pb.p7b(cas, pem=True))]}
    if fmt == "pfx":
        return {"certificate_path": write(directory / "site.pfx", pb.pfx(pki.leaf, cas, password=PFX_PASS.encode())),
                "input_pkcs12_passphrase": PFX_PASS}
    if fmt == "fullchain_content":
        return {"certificate_content": pb.pem_bundle([pki.leaf] + cas, junk=False).decode()}
    if fmt == "mixed":
        half = len(cas) // 2
        return {"certificate_path": write(directory / "server.pem", pki.leaf.pem),
                "chain_paths": [write(directory / "a.p7b", pb.p7b(cas[:half])), write(directory / "b.txt", pb.pem_bundle(cas[half:]))]}
    raise AssertionError(fmt)


FORMATS = ("pem_junk", "pem_crlf", "der_directory", "p7b_der", "p7b_pem", "pfx", "fullchain_content", "mixed")


@pytest.mark.parametrize("seed", SEEDS)
@pytest.mark.parametrize("fmt", FORMATS)
def test_shuffled_piles_in_every_format_give_the_same_order(pki, tmp_path, run_module, fmt, seed):
    args = pile_files(tmp_path / "in", pki, fmt, seed)
    root_file = write(tmp_path / "root.pem", pki.root.pem)
    old_root_file = write(tmp_path / "old-root.pem", pki.old_root.pem)
    out = tmp_path / "out"
    out.mkdir()
    shortest = run_module(cert_chain.main, dict(args, trust_bundle=[root_file], fullchain_path=str(out / "short.pem")))
    assert not shortest.get("failed"), shortest.get("msg")
    assert [c["sha256"] for c in shortest["chain"]] == fingerprints([pki.leaf, pki.int2, pki.int1])
    assert (out / "short.pem").read_bytes() == pki.leaf.pem + pki.int2.pem + pki.int1.pem
    # Seed 001: leaf, intermediate, then the cross-root certificate (old clients know only the old root).
    cross = run_module(cert_chain.main, dict(args, trust_bundle=[root_file, old_root_file], prefer="cross_root",
                                             fullchain_path=str(out / "cross.pem")))
    assert [c["sha256"] for c in cross["chain"]] == fingerprints([pki.leaf, pki.int2, pki.int1, pki.root_x])
    assert cross["root"]["sha256"] == fingerprints([pki.old_root])[0]
    unused = {item["subject"] for item in shortest["unused"]}
    assert "/CN=Unrelated Int" in unused and "/CN=Unrelated Root" in unused


@needs_openssl
def test_every_output_check_apply_check_apply(pki, tmp_path, run_module):
    key = write(tmp_path / "in" / "key.pem", encrypted_key_pem(pki.leaf.key))
    args = {
        "certificate_path": write(tmp_path / "in" / "server.pem", pki.leaf.pem),
        "chain_paths": [write(tmp_path / "in" / "chain.p7b", pb.p7b([pki.root, pki.int1, pki.int2]))],
        "privatekey_path": key,
        "privatekey_passphrase": KEY_PASS,
        "trust_bundle": [write(tmp_path / "in" / "root.pem", pki.root.pem)],
        "fullchain_path": str(tmp_path / "out" / "fullchain.pem"),
        "chain_path": str(tmp_path / "out" / "chain.pem"),
        "combined_path": str(tmp_path / "out" / "haproxy.pem"),
        "pkcs12_path": str(tmp_path / "out" / "iis.pfx"),
        "pkcs12_passphrase": PFX_PASS,
        "_ansible_diff": True,
    }
    (tmp_path / "out").mkdir()
    check1 = run_module(cert_chain.main, dict(args, _ansible_check_mode=True))
    assert check1["changed"] and os.listdir(tmp_path / "out") == []
    apply1 = run_module(cert_chain.main, args)
    assert apply1["changed"] and all(f["changed"] for f in apply1["files"].values())
    contents = {name: (tmp_path / "out" / name).read_bytes() for name in os.listdir(tmp_path / "out")}
    check2 = run_module(cert_chain.main, dict(args, _ansible_check_mode=True))
    apply2 = run_module(cert_chain.main, args)
    assert not check2["changed"] and not apply2["changed"], apply2["files"]
    assert {name: (tmp_path / "out" / name).read_bytes() for name in os.listdir(tmp_path / "out")} == contents
    modes = {name: stat.S_IMODE(os.stat(tmp_path / "out" / name).st_mode) for name in contents}
    assert modes == {"fullchain.pem": 0o644, "chain.pem": 0o644, "haproxy.pem": 0o600, "iis.pfx": 0o600}
    assert contents["fullchain.pem"] == pki.leaf.pem + pki.int2.pem + pki.int1.pem
    assert contents["chain.pem"] == pki.int2.pem + pki.int1.pem
    assert contents["haproxy.pem"].startswith(b"-----BEGIN PRIVATE KEY-----") and contents["haproxy.pem"].endswith(contents["fullchain.pem"])
    verified = subprocess.run([OPENSSL, "verify", "-CAfile", args["trust_bundle"][0], "-untrusted", str(tmp_path / "out" / "chain.pem"),
                               str(tmp_path / "in" / "server.pem")], capture_output=True, text=True, check=False)
    assert verified.returncode == 0, verified.stderr
    # The diff lists fingerprints, never key material or passphrases.
    diff = json.dumps(apply1["diff"])
    assert fingerprints([pki.int1])[0] in diff and "PRIVATE" not in diff and KEY_PASS not in json.dumps(apply1)
    key_lines = pki.leaf.key_pem.decode().splitlines()[1:-1]
    assert not any(line in json.dumps(apply1) for line in key_lines)
    # A changed input rewrites only what differs.
    mode_changed = run_module(cert_chain.main, dict(args, mode="0640"))
    assert mode_changed["changed"] and [k for k, f in mode_changed["files"].items() if f["changed"]] == ["fullchain", "chain"]


@needs_openssl
@pytest.mark.parametrize("encryption, marker", [("modern", "PBES2"), ("compatibility", "pbeWithSHA1And3-KeyTripleDES-CBC")])
def test_pkcs12_opens_with_openssl_without_legacy(pki, tmp_path, run_module, encryption, marker):
    pfx = tmp_path / "site.pfx"
    args = {"certificate_content": pki.leaf.pem.decode(), "chain_paths": [write(tmp_path / "c.pem", pb.pem_bundle([pki.int1, pki.int2]))],
            "privatekey_content": pki.leaf.key_pem.decode(), "trust_bundle": [write(tmp_path / "r.pem", pki.root.pem)],
            "pkcs12_path": str(pfx), "pkcs12_passphrase": PFX_PASS, "pkcs12_encryption": encryption}
    assert run_module(cert_chain.main, args)["changed"]
    info = subprocess.run([OPENSSL, "pkcs12", "-info", "-in", str(pfx), "-passin", f"pass:{PFX_PASS}", "-nokeys"],
                          capture_output=True, text=True, check=False)
    assert info.returncode == 0, info.stderr
    assert marker in info.stdout + info.stderr
    assert "friendlyName: www.example.test" in info.stdout
    assert info.stdout.count("BEGIN CERTIFICATE") == 3
    assert not run_module(cert_chain.main, args)["changed"]
    other = run_module(cert_chain.main, dict(args, pkcs12_encryption="modern" if encryption == "compatibility" else "compatibility"))
    assert other["changed"], "switching the encryption scheme rewrites the file"


def test_backup_and_include_root(pki, tmp_path, run_module):
    full = tmp_path / "fullchain.pem"
    full.write_bytes(b"old content\n")
    args = {"certificate_path": write(tmp_path / "s.pem", pki.leaf.pem),
            "chain_paths": [write(tmp_path / "c.pem", pb.pem_bundle([pki.int1, pki.int2, pki.root]))],
            "trust_bundle": [], "include_root": True, "fullchain_path": str(full), "backup": True}
    result = run_module(cert_chain.main, args)
    assert result["backup_files"]["fullchain"] and open(result["backup_files"]["fullchain"], "rb").read() == b"old content\n"
    assert full.read_bytes() == pki.leaf.pem + pki.int2.pem + pki.int1.pem + pki.root.pem
    assert result["chain"][-1]["self_signed"]


def test_private_pki_needs_a_trust_bundle_hint(pki, tmp_path, run_module):
    args = {"certificate_path": write(tmp_path / "s.pem", pki.leaf.pem),
            "chain_paths": [write(tmp_path / "c.pem", pb.pem_bundle([pki.int1, pki.int2, pki.root]))]}
    if not os.path.exists(cert_chain.SYSTEM_BUNDLE):
        pytest.skip("no system bundle")
    result = run_module(cert_chain.main, args)
    assert result["failed"] and "not in the trust bundle" in result["msg"] and "trust_bundle: []" in result["msg"]
    assert run_module(cert_chain.main, dict(args, trust_bundle=[]))["complete"]


def test_chain_path_of_a_root_signed_leaf_is_empty_with_a_warning(tmp_path, run_module):
    root = pb.make_root("Direct Root")
    leaf = pb.make_leaf("direct.example.test", issuer=root)
    out = tmp_path / "chain.pem"
    result = run_module(cert_chain.main, {"certificate_content": leaf.pem.decode(), "chain_paths": [write(tmp_path / "r.pem", root.pem)],
                                          "trust_bundle": [], "chain_path": str(out)})
    # ansible-core 2.19 returns warnings as structured summaries: search their JSON.
    assert out.read_bytes() == b"" and "holds no certificate" in json.dumps(result["warnings"])


# ---------------------------------------------------------------------------------------------
# AIA through the module, against a real HTTP server on 127.0.0.1


class _Handler(http.server.BaseHTTPRequestHandler):
    routes: dict = {}

    def do_GET(self):  # noqa: N802 - http.server API
        if self.path not in self.routes:
            self.send_error(404)
            return
        body, content_type = self.routes[self.path]
        self.send_response(200)
        self.send_header("Content-Type", content_type)
        self.send_header("Content-Length", str(len(body)))
        self.end_headers()
        self.wfile.write(body)

    def log_message(self, format, *args):  # pylint: disable=redefined-builtin
        return


@pytest.fixture
def http_server():
    routes: dict = {}
    server = http.server.ThreadingHTTPServer(("127.0.0.1", 0), type("Handler", (_Handler,), {"routes": routes}))
    server.daemon_threads = True
    threading.Thread(target=server.serve_forever, daemon=True).start()
    yield f"http://127.0.0.1:{server.server_address[1]}", routes
    server.shutdown()
    server.server_close()


@pytest.mark.parametrize("served_as", ["der", "pkcs7"])
def test_aia_fetch_through_the_module(tmp_path, run_module, http_server, served_as):
    base, routes = http_server
    root = pb.make_root("AIA Root")
    inter = pb.make_intermediate("AIA Int", issuer=root, aia_ca_issuers=f"{base}/root.cer")
    leaf = pb.make_leaf("aia.example.test", issuer=inter, aia_ca_issuers=f"{base}/int.{served_as}")
    if served_as == "der":
        routes["/int.der"] = (inter.der, "application/pkix-cert")
    else:
        routes["/int.pkcs7"] = (pb.p7b([inter]), "application/pkcs7-mime")
    routes["/root.cer"] = (root.der, "application/pkix-cert")
    out = tmp_path / "fullchain.pem"
    args = {"certificate_content": leaf.pem.decode(), "trust_bundle": [write(tmp_path / "root.pem", root.pem)],
            "fullchain_path": str(out)}
    off = run_module(cert_chain.main, args)
    assert off["failed"] and "missing issuer certificate: /CN=AIA Int" in off["msg"]
    assert f"its AIA caIssuers URL is {base}/int.{served_as} (AIA fetching is off)" in off["msg"] and not out.exists()
    on = run_module(cert_chain.main, dict(args, aia_fetch=True, aia_timeout=5))
    assert not on.get("failed"), on.get("msg")
    assert on["fetched"] == [f"{base}/int.{served_as}"]
    assert out.read_bytes() == leaf.pem + inter.pem
    assert on["chain"][1]["source"].startswith(f"{base}/int.{served_as}")
    assert not run_module(cert_chain.main, dict(args, aia_fetch=True))["changed"]


def test_aia_size_cap_through_the_module(tmp_path, run_module, http_server):
    base, routes = http_server
    root = pb.make_root("Cap Root")
    inter = pb.make_intermediate("Cap Int", issuer=root)
    leaf = pb.make_leaf("cap.example.test", issuer=inter, aia_ca_issuers=f"{base}/int.cer")
    routes["/int.cer"] = (inter.der, "application/pkix-cert")
    result = run_module(cert_chain.main, {"certificate_content": leaf.pem.decode(), "trust_bundle": [write(tmp_path / "r.pem", root.pem)],
                                          "aia_fetch": True, "aia_max_bytes": 100, "fullchain_path": str(tmp_path / "f.pem")})
    assert result["failed"] and "larger than the limit of 100 bytes" in result["msg"] and not (tmp_path / "f.pem").exists()
