# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The private CA's name policy against hostile CSRs and CA names (issue 16, rows 4, 5, 9 and 10): names are
typed by the classifier the signer uses, every DNS name (CN included) is a host name inside allowed_domains,
and a CA name never leaves <store>/ca/."""
from __future__ import annotations

import pytest
from cryptography import x509
from cryptography.hazmat.primitives import hashes
from cryptography.x509.oid import NameOID

from ansible_collections.certfleet.tls.plugins.module_utils._issuers import ca as _ca
from ansible_collections.certfleet.tls.plugins.module_utils._issuers.private_ca import PrivateCaProvider, opened_cas
from ansible_collections.certfleet.tls.plugins.module_utils._common.keys import generate_private_key
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

PASS = "CA-Names-Passphrase-3"
ECC = {"type": "ECC", "curve": "secp256r1"}


def make_ca(store, name="corp", settings=None):
    _ca.run_private_ca(store_path=str(store), name=name, passphrase=PASS, kind="root", key_spec=dict(ECC),
                       settings_options=settings)
    return _ca.load_store_ca(str(store), name)


def raw_csr(common_name, dns_names=()):
    """A CSR whose SANs are DNSName entries exactly as given (a hostile requester's, not parse_general_name's)."""
    builder = x509.CertificateSigningRequestBuilder().subject_name(
        x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, common_name)]))
    if dns_names:
        builder = builder.add_extension(x509.SubjectAlternativeName([x509.DNSName(name) for name in dns_names]), critical=False)
    return builder.sign(generate_private_key(key_type="ECC"), hashes.SHA256())


@pytest.fixture
def networks_only_ca(tmp_path):
    return make_ca(tmp_path, settings={"allowed_ip_networks": ["10.0.0.0/8"]})


@pytest.fixture
def intra_ca(tmp_path):
    return make_ca(tmp_path, settings={"allowed_domains": ["example.intra"], "allowed_ip_networks": ["10.0.0.0/8"]})


def issued_ips(certificate) -> list[str]:
    sans = certificate.extensions.get_extension_for_class(x509.SubjectAlternativeName).value
    return [str(address) for address in sans.get_values_for_type(x509.IPAddress)]


# ---------------------------------------------------------------------------------------------
# row 4


@pytest.mark.parametrize("common_name, dns_names, message", [
    ("portal.example.intra", ["ip:8.8.8.8"], "subject_alt_name: IP address '8.8.8.8' is outside the CA's allowed networks"),
    ("portal.example.intra", ["Ip:8.8.8.8"], "subject_alt_name: IP address '8.8.8.8' is outside the CA's allowed networks"),
    ("Ip:1.1.1.1", [], "common_name (CN): 'Ip:1.1.1.1' has an invalid DNS label"),
])
def test_a_lower_case_ip_prefix_never_bypasses_allowed_ip_networks(networks_only_ca, common_name, dns_names, message):
    csr = raw_csr(common_name, dns_names)
    plan = _ca.plan_issue(csr, ca_certificate=networks_only_ca.certificate, settings=networks_only_ca.settings)
    assert any(error.startswith(message) for error in plan["errors"]), plan["errors"]
    with pytest.raises(_ca.PolicyError, match="nothing was issued"):
        _ca.decide_issue(networks_only_ca, csr, passphrase=PASS)


def test_check_and_signing_agree_on_an_ip_typed_with_any_case(networks_only_ca):
    inside = raw_csr("portal.example.intra", ["ip:10.1.2.3"])
    plan = _ca.plan_issue(inside, ca_certificate=networks_only_ca.certificate, settings=networks_only_ca.settings)
    outside = raw_csr("portal.example.intra", ["ip:8.8.8.8"])
    refused = _ca.plan_issue(outside, ca_certificate=networks_only_ca.certificate, settings=networks_only_ca.settings)
    assert "subject_alt_name: IP address '8.8.8.8' is outside the CA's allowed networks (10.0.0.0/8)" in refused["errors"]
    assert plan["errors"] == []
    decision = _ca.decide_issue(networks_only_ca, inside, passphrase=PASS)
    assert issued_ips(decision["certificate"]) == ["10.1.2.3"]


def test_name_policy_errors_types_names_like_the_signer():
    settings = {"allowed_domains": [], "allowed_ip_networks": ["10.0.0.0/8"]}
    assert _ca.name_policy_errors(["ip:8.8.8.8", "IP:10.0.0.1"], "Ip:1.1.1.1", settings) == [
        "subject_alt_name: IP address '8.8.8.8' is outside the CA's allowed networks (10.0.0.0/8)"]
    settings = {"allowed_domains": ["example.intra"], "allowed_ip_networks": []}
    assert _ca.name_policy_errors([], "Ip:1.1.1.1", settings) == [
        "common_name (CN): 'Ip:1.1.1.1' is outside the CA's allowed domains (example.intra)"]


# ---------------------------------------------------------------------------------------------
# row 5


@pytest.mark.parametrize("dns_name, message", [
    ("evil.com\x00.example.intra", "invalid DNS label 'com\\x00'"),
    ("evil.com/x .example.intra", "invalid DNS label 'com/x '"),
    ("*.*.example.intra", "wildcard that is not the whole leftmost label"),
])
def test_hostile_dns_sans_are_refused(intra_ca, dns_name, message):
    csr = raw_csr("portal.example.intra", ["portal.example.intra", dns_name])
    plan = _ca.plan_issue(csr, ca_certificate=intra_ca.certificate, settings=intra_ca.settings)
    assert any(error.startswith(f"subject_alt_name: {dns_name!r}") and message in error for error in plan["errors"]), plan
    with pytest.raises(_ca.PolicyError, match="nothing was issued"):
        _ca.decide_issue(intra_ca, csr, passphrase=PASS)


@pytest.mark.parametrize("profile", ["private", {"extends": "private", "cn_in_san": False}])
def test_a_common_name_outside_allowed_domains_is_refused_even_when_not_in_the_sans(intra_ca, profile):
    csr = raw_csr("evil.com", ["portal.example.intra"])
    plan = _ca.plan_issue(csr, ca_certificate=intra_ca.certificate, settings=intra_ca.settings, profile=profile)
    assert "common_name (CN): 'evil.com' is outside the CA's allowed domains (example.intra)" in plan["errors"] \
        or "subject_alt_name: 'evil.com' is outside the CA's allowed domains (example.intra)" in plan["errors"], plan
    with pytest.raises(_ca.PolicyError, match="nothing was issued"):
        _ca.decide_issue(intra_ca, csr, passphrase=PASS, profile=profile)


def test_a_hostile_common_name_is_refused_with_cn_in_san_false(intra_ca):
    profile = {"extends": "private", "cn_in_san": False}
    csr = raw_csr("evil.com\x00.example.intra", ["portal.example.intra"])
    plan = _ca.plan_issue(csr, ca_certificate=intra_ca.certificate, settings=intra_ca.settings, profile=profile)
    assert any(error.startswith("common_name (CN)") and "invalid DNS label 'com\\x00'" in error for error in plan["errors"]), plan


# ---------------------------------------------------------------------------------------------
# rows 9 and 10: CA names


@pytest.mark.parametrize("name", ["ca\n", "corp\n", "../../other/ca/netca", "..", "a/b"])
def test_a_ca_name_that_is_not_one_directory_is_refused(tmp_path, name):
    with pytest.raises(CertfleetError, match="must be 1-128 characters"):
        _ca.run_private_ca(store_path=str(tmp_path / "store"), name=name, passphrase=PASS, kind="root", key_spec=dict(ECC))
    assert not (tmp_path / "store" / "ca").exists() or list((tmp_path / "store" / "ca").iterdir()) == []


@pytest.mark.parametrize("name", ["../../other/ca/netca", "../../store/ca/corp", "corp\n"])
def test_a_ca_outside_the_store_is_never_opened(tmp_path, name):
    make_ca(tmp_path / "other", name="netca")
    make_ca(tmp_path / "store", name="corp")
    store = str(tmp_path / "store")
    with pytest.raises(CertfleetError, match="CA name .* must be 1-128 characters"):
        _ca.load_store_ca(store, name)
    with pytest.raises(CertfleetError, match="CA name .* must be 1-128 characters"):
        with opened_cas(store, [name], check_mode=False):
            pass  # pragma: no cover


@pytest.mark.parametrize("name", ["intra\n", "../../other/ca/netca"])
def test_a_definition_naming_a_ca_outside_the_store_is_refused(name):
    problems = PrivateCaProvider().check({"name": "portal", "issuer": {"provider": "private_ca", "ca": name}})
    assert problems and "must name a private CA of the store" in problems[0]


# ---------------------------------------------------------------------------------------------
# row 13 through the CA: every DN attribute of a CSR, also ones the profiles do not name


@pytest.mark.parametrize("oid, value", [
    (NameOID.ORGANIZATION_NAME, "Trusted\x00Corp"),
    (NameOID.BUSINESS_CATEGORY, "Private Organization\x1b[2J"),
    (NameOID.STREET_ADDRESS, "1 Main St\u202etsoH"),
])
def test_control_characters_in_any_csr_attribute_are_refused(intra_ca, oid, value):
    builder = x509.CertificateSigningRequestBuilder().subject_name(x509.Name([
        x509.NameAttribute(NameOID.COMMON_NAME, "portal.example.intra"), x509.NameAttribute(oid, value)]))
    csr = builder.sign(generate_private_key(key_type="ECC"), hashes.SHA256())
    for profile in ("private", "cabf"):
        plan = _ca.plan_issue(csr, ca_certificate=intra_ca.certificate, settings=intra_ca.settings, profile=profile)
        assert any("control, line-separator or bidirectional characters" in error for error in plan["errors"]), plan["errors"]
