#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: private_ca
short_description: The built-in private CA - create it, keep its CRL current, revoke certificates
version_added: 0.1.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - Ensures a private CA in the certificate store, C(<store_path>/ca/<name>/), for intranet servers that public CAs
    cannot certify (internal names, private IP addresses).
    Its key is encrypted at rest (PKCS#8, AES-256) with O(passphrase); the directory also holds the CA certificate,
    the root certificate to distribute, the issuance index (serials and their status) and the CRL.
  - O(kind=root) makes a root CA that signs server certificates itself. O(kind=intermediate) makes a root and an
    issuing intermediate CA signed by it (the root key then stays unused until the intermediate is renewed or
    revoked). O(kind=subordinate) generates a key and a CSR for an existing enterprise CA (for example Windows
    Server AD CS) to sign; run the module again with O(signed_certificate_path) to import the certificate.
  - A CA is created once and never replaced; its subject, key and kind only apply at creation. The policy and URL
    settings (O(allowed_domains), O(max_validity_days), O(crl_distribution_points), ...) can change at any time and
    apply to certificates issued afterwards; options that are not given keep their recorded values.
  - The CRL is regenerated when revocations change and when it is past half of its lifetime, so running this task
    regularly (the request playbook does) keeps it current. Publish C(crl.der) at the O(crl_distribution_points) URL.
  - Certificates are issued with M(certfleet.tls.private_ca_certificate) or, for the store's definitions,
    M(certfleet.tls.store_issue).
attributes:
  diff_mode:
    support: full
    details: The diff shows status, CA certificate fingerprint, CRL number, revoked serials and settings.
extends_documentation_fragment:
  - certfleet.tls.attributes
  - certfleet.tls.store
options:
  name:
    description: Name of the CA (its directory name), as definitions name it in C(issuer.ca).
    type: str
    required: true
  passphrase:
    description: Passphrase of the CA key(s); keep it in Ansible Vault. The request playbook uses the store passphrase.
    type: str
    required: true
  kind:
    description:
      - What to create when the CA does not exist. V(root) when not given.
      - V(root) - one self-signed CA that issues server certificates.
      - V(intermediate) - a root CA (in C(root/)) and an issuing CA signed by it.
      - V(subordinate) - a key and a CSR for a parent enterprise CA; see O(signed_certificate_path).
    type: str
    choices: [root, intermediate, subordinate]
  common_name:
    description:
      - CN of the CA. Defaults to C(<name> Root CA <timestamp>) (C(Issuing CA), C(Subordinate CA)), unique because a
        new CA must never reuse an old CA's name - clients would mistake one CA's certificates for the other's.
      - For O(kind=intermediate) it names the issuing CA; the root gets the default root CN.
    type: str
  organization_name:
    description: O of the CA. Defaults to C(certfleet.tls Built-in Private CA).
    type: str
  organizational_unit_name:
    description: OU of the CA.
    type: str
  country_name:
    description: C of the CA, two upper-case letters.
    type: str
  state_or_province_name:
    description: ST of the CA.
    type: str
  locality_name:
    description: L of the CA.
    type: str
  key_type:
    description: Algorithm of the CA key(s). V(RSA) when not given; V(ECC) means ECDSA.
    type: str
    choices: [RSA, ECC]
  key_size:
    description: RSA key size; 3072 when not given.
    type: int
  key_curve:
    description: ECDSA curve; V(secp384r1) when not given.
    type: str
    choices: [secp256r1, secp384r1]
  validity_days:
    description: Validity of the root certificate in days; 3650 when not given.
    type: int
  intermediate_validity_days:
    description: Validity of the issuing intermediate certificate (O(kind=intermediate)) in days, never beyond the root's; 1825 when not given.
    type: int
  name_constraints:
    description:
      - Write O(allowed_domains) and O(allowed_ip_networks) as a critical name constraints extension into the issuing
        CA certificate when it is created, so clients refuse names outside them even if the CA key leaks.
      - The CA's own policy check applies them when issuing either way. Some clients ignore constraints in a root.
    type: bool
    default: false
  allowed_domains:
    description:
      - DNS domains the CA issues for; a name must equal one or end in C(.<domain>). Empty allows any name.
      - When set, IP address SANs must lie in O(allowed_ip_networks).
    type: list
    elements: str
  allowed_ip_networks:
    description: IP networks (CIDR) whose addresses may appear as IP SANs.
    type: list
    elements: str
  max_validity_days:
    description:
      - Longest validity of an issued certificate; also the default validity. 397 when not given (CA/Browser Forum
        398-day limit, which browsers also apply to certificates of private CAs on some platforms).
      - An issued certificate never outlives the CA certificate.
    type: int
  crl_distribution_points:
    description: CRL URLs written into every issued certificate (C(crlDistributionPoints), RFC 5280 4.2.1.13).
    type: list
    elements: str
  ca_issuers_urls:
    description: URLs of the CA certificate written into every issued certificate (AIA C(caIssuers)), so clients can fetch the issuer.
    type: list
    elements: str
  crl_next_update_days:
    description: Days from a CRL's issue to its next update; 30 when not given. The CRL is regenerated after half of it.
    type: int
  extended_key_usages:
    description: Extended key usages of issued certificates; V(serverAuth) when not given.
    type: list
    elements: str
    choices: [serverAuth, clientAuth]
  signed_certificate_path:
    description:
      - O(kind=subordinate) - the certificate the parent CA issued for C(csr.pem) (PEM, DER or PKCS#7, which may hold
        the parent's chain as Windows AD CS C(.p7b) files do).
    type: path
  signed_chain_paths:
    description: Files with the parent CA's intermediate and root certificates, when O(signed_certificate_path) lacks them.
    type: list
    elements: path
    default: []
  revoke:
    description:
      - Certificates to revoke, by serial (hex, colons allowed). Revoking again with the same reason changes nothing;
        a revocation is final except C(certificate_hold), which O(release_hold) lifts.
    type: list
    elements: dict
    default: []
    suboptions:
      serial:
        description: Serial number of the certificate, as returned when it was issued.
        type: str
        required: true
      reason:
        description: CRL reason code.
        type: str
        choices: [unspecified, key_compromise, ca_compromise, affiliation_changed, superseded, cessation_of_operation,
                  certificate_hold, privilege_withdrawn]
        default: unspecified
      invalidity_date:
        description: When the key is known or suspected to have been compromised, C(YYYY-MM-DDTHH:MM:SSZ).
        type: str
  release_hold:
    description: Serials to take off hold (revoked with reason C(certificate_hold)).
    type: list
    elements: str
    default: []
  refresh_crl:
    description: Generate a new CRL even when the current one is fine.
    type: bool
    default: false
notes:
  - Back up C(<store_path>/ca/) with the rest of the store; it is safe in git because the keys are encrypted.
  - Distribute C(root.pem) to clients (in a Windows domain, Group Policy - Public Key Policies - Trusted Root
    Certification Authorities) or add it to a trusted CA set.
seealso:
  - module: certfleet.tls.private_ca_certificate
  - module: certfleet.tls.store_issue
"""

EXAMPLES = r"""
- name: Root CA and an issuing intermediate for the intranet
  certfleet.tls.private_ca:
    store_path: "{{ inventory_dir }}/cert_store"
    name: intranet
    kind: intermediate
    passphrase: "{{ certfleet_store_passphrase }}"
    organization_name: Example Co.,Ltd.
    country_name: JP
    key_type: ECC
    allowed_domains: [example.intra]
    name_constraints: true
    crl_distribution_points: ["http://pki.example.intra/intranet.crl"]
    ca_issuers_urls: ["http://pki.example.intra/intranet.cer"]
  register: ca

- name: Subordinate of the enterprise CA - step 1, key and CSR
  certfleet.tls.private_ca:
    store_path: "{{ inventory_dir }}/cert_store"
    name: corp-sub
    kind: subordinate
    passphrase: "{{ certfleet_store_passphrase }}"
    common_name: Example Corp certfleet Sub CA 2026
  register: sub  # sub.csr goes to the enterprise CA (certreq -submit -attrib "CertificateTemplate:SubCA")

- name: Subordinate of the enterprise CA - step 2, import the certificate
  certfleet.tls.private_ca:
    store_path: "{{ inventory_dir }}/cert_store"
    name: corp-sub
    passphrase: "{{ certfleet_store_passphrase }}"
    signed_certificate_path: /tmp/certnew.p7b

- name: Revoke a certificate whose key leaked
  certfleet.tls.private_ca:
    store_path: "{{ inventory_dir }}/cert_store"
    name: intranet
    passphrase: "{{ certfleet_store_passphrase }}"
    revoke:
      - serial: 5A:1F:0C:93:7E:21:4B:88:90:AB:CD:EF:01:23:45:67
        reason: key_compromise
"""

RETURN = r"""
directory:
  description: Directory of the CA in the store.
  returned: always
  type: str
kind:
  description: V(root), V(intermediate) or V(subordinate).
  returned: success
  type: str
status:
  description: V(active), or V(pending_signature) while a subordinate CA waits for its certificate.
  returned: success
  type: str
actions:
  description: What was done or, in check mode, would be done.
  returned: success
  type: list
  elements: str
certificate:
  description: The CA certificate (PEM) that signs server certificates.
  returned: success, when the CA is active (not in check mode for a new CA)
  type: str
root_certificate:
  description: The root certificate (PEM) to distribute to clients.
  returned: success, when known
  type: str
ca_chain:
  description: The CA certificate, the certificates above it and the root, each with subject, issuer, serial, fingerprints and dates.
  returned: success
  type: list
  elements: dict
csr:
  description: The subordinate CA's CSR (PEM) to submit to the parent CA, while it waits for its certificate.
  returned: success, O(kind=subordinate)
  type: str
subject:
  description: Subject of the CA certificate.
  returned: success, when the CA is active
  type: str
sha256:
  description: SHA-256 fingerprint of the CA certificate.
  returned: success, when the CA is active
  type: str
sha1:
  description: SHA-1 fingerprint (thumbprint) of the CA certificate.
  returned: success, when the CA is active
  type: str
not_after:
  description: End of the CA certificate's validity.
  returned: success, when the CA is active
  type: str
crl:
  description: The current CRL - number, this_update, next_update, revoked serials.
  returned: success
  type: dict
index:
  description: Counts of issued certificates by status (issued, valid, expired, on_hold, revoked).
  returned: success
  type: dict
settings:
  description: The CA's policy and URL settings in effect.
  returned: success
  type: dict
"""


from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._issuers import ca as _ca
from ansible_collections.certfleet.tls.plugins.module_utils._store import layout
from ansible_collections.certfleet.tls.plugins.module_utils._common.files import read_file
from ansible_collections.certfleet.tls.plugins.module_utils._common.module import exit_with, require_cryptography, run_or_fail
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

SUBJECT_OPTIONS = {"CN": "common_name", "O": "organization_name", "OU": "organizational_unit_name", "C": "country_name",
                   "ST": "state_or_province_name", "L": "locality_name"}
SETTING_OPTIONS = ("allowed_domains", "allowed_ip_networks", "max_validity_days", "crl_distribution_points", "ca_issuers_urls",
                   "crl_next_update_days", "extended_key_usages")


def read_signed(params: dict) -> list:
    files = []
    paths = ([params["signed_certificate_path"]] if params["signed_certificate_path"] else []) + params["signed_chain_paths"]
    for path in paths:
        option = "signed_certificate_path" if path == params["signed_certificate_path"] else "signed_chain_paths"
        data = read_file(path, option=option)
        if data is None:
            raise CertfleetError(f"{option}: '{path}' does not exist")
        files.append((data, path))
    return files


def main():
    module = AnsibleModule(
        argument_spec=dict(
            store_path=dict(type="path", required=True),
            name=dict(type="str", required=True),
            passphrase=dict(type="str", required=True, no_log=True),
            kind=dict(type="str", choices=list(_ca.CA_KINDS)),
            common_name=dict(type="str"),
            organization_name=dict(type="str"),
            organizational_unit_name=dict(type="str"),
            country_name=dict(type="str"),
            state_or_province_name=dict(type="str"),
            locality_name=dict(type="str"),
            key_type=dict(type="str", choices=["RSA", "ECC"]),
            key_size=dict(type="int"),
            key_curve=dict(type="str", choices=["secp256r1", "secp384r1"]),
            validity_days=dict(type="int"),
            intermediate_validity_days=dict(type="int"),
            name_constraints=dict(type="bool", default=False),
            allowed_domains=dict(type="list", elements="str"),
            allowed_ip_networks=dict(type="list", elements="str"),
            max_validity_days=dict(type="int"),
            crl_distribution_points=dict(type="list", elements="str"),
            ca_issuers_urls=dict(type="list", elements="str"),
            crl_next_update_days=dict(type="int"),
            extended_key_usages=dict(type="list", elements="str", choices=list(_ca.EKU_CHOICES)),
            signed_certificate_path=dict(type="path"),
            signed_chain_paths=dict(type="list", elements="path", default=[]),
            revoke=dict(type="list", elements="dict", default=[], options=dict(
                serial=dict(type="str", required=True),
                reason=dict(type="str", choices=list(_ca.REASON_CHOICES), default="unspecified"),
                invalidity_date=dict(type="str"),
            )),
            release_hold=dict(type="list", elements="str", default=[]),
            refresh_crl=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    require_cryptography(module)
    params = module.params
    # The CA's directory goes into every failure; a name that cannot be one fails in run_private_ca.
    directory = layout.ca_dir(params["store_path"], params["name"]) if layout.NAME_PATTERN.fullmatch(params["name"]) else None
    for days in ("validity_days", "intermediate_validity_days"):
        if params[days] is not None and params[days] < 1:
            module.fail_json(msg=f"{days}: must be at least 1 day, not {params[days]}", directory=directory)
    result = run_or_fail(
        module,
        lambda: _ca.run_private_ca(
            store_path=params["store_path"],
            name=params["name"],
            passphrase=params["passphrase"],
            kind=params["kind"],
            subject={short: params[option] for short, option in SUBJECT_OPTIONS.items()},
            key_spec={"type": params["key_type"], "size": params["key_size"], "curve": params["key_curve"]},
            settings_options={option: params[option] for option in SETTING_OPTIONS},
            validity_days=params["validity_days"],
            intermediate_validity_days=params["intermediate_validity_days"],
            name_constraints=params["name_constraints"],
            signed_certificates=read_signed(params),
            revocations=params["revoke"],
            release=params["release_hold"],
            refresh_crl=params["refresh_crl"],
            check_mode=module.check_mode,
        ),
        doing=f"in CA {params['name']}",
        fields={"directory": directory},
    )
    exit_with(module, result, warnings=result.pop("warnings"))


if __name__ == "__main__":
    main()
