#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: cert_chain
short_description: Put a server certificate's chain in the right order and write the files servers want
version_added: 0.1.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - Takes a server certificate and any pile of CA certificates - PEM (with the text CAs put around it, CRLF or
    not), DER C(.cer), PKCS#7 C(.p7b) / C(.p7c), PKCS#12 C(.pfx) - in any order, with extra, duplicate, expired and
    unrelated certificates allowed, builds the path leaf, intermediates, cross-root up to a trust anchor,
    and checks it (signatures, validity, CA flags, path length).
  - Writes the layouts servers want, each only when its content differs, atomically, and nothing at all when the
    chain cannot be built - O(fullchain_path) (Apache 2.4.8 and later, nginx), O(chain_path) (Apache before 2.4.8,
    C(SSLCertificateChainFile)), O(combined_path) (HAProxy), O(pkcs12_path) (IIS, Tomcat).
  - When an issuer is missing the task fails naming its subject, with the CA product catalog's hint of which
    intermediate certificate to download (from the CAs' published intermediate tables, such as Cybertrust's
    SureServer download and installation FAQ) and, when AIA fetching is off, its caIssuers URL.
attributes:
  diff_mode:
    support: full
    details: The diff lists, per output file, the SHA-256 fingerprints of the certificates in it, never key material.
extends_documentation_fragment:
  - certfleet.tls.attributes
  - certfleet.tls.certificate_files
options:
  certificate_path:
    description:
      - The server certificate (PEM, DER, PKCS#7 or PKCS#12). One of O(certificate_path) or O(certificate_content)
        is required.
      - A file holding several certificates (a full chain, a PFX) is fine; the server certificate is the one matching
        the private key, or the only one that is not a CA; the others join O(chain_paths).
    type: path
  certificate_content:
    description: The server certificate (and optionally more certificates) as PEM text.
    type: str
  chain_paths:
    description:
      - Files and directories with CA certificates, in any format and order. Every regular file of a directory is
        read (not its subdirectories, not hidden files); a file that holds no certificate fails the task.
    type: list
    elements: path
    default: []
  input_pkcs12_passphrase:
    description: Password of PKCS#12 files among the inputs.
    type: str
  privatekey_path:
    description:
      - Private key of the server certificate (PEM, DER or PKCS#12). The task fails when it does not match.
      - Needed for O(combined_path) and O(pkcs12_path), unless O(certificate_path) is a PKCS#12 file with the key.
    type: path
  privatekey_content:
    description: The private key as PEM text, instead of O(privatekey_path).
    type: str
  privatekey_passphrase:
    description: Passphrase of an encrypted private key.
    type: str
  trust_bundle:
    description:
      - Files of trusted root certificates; the chain must end at one of them.
      - When not set, the system bundle C(/etc/ssl/certs/ca-certificates.crt) is used when it exists.
      - Set it to an empty list to accept any self-signed root found among the inputs (a private PKI whose root is
        only in O(chain_paths)).
    type: list
    elements: path
  aia_fetch:
    description:
      - Fetch missing issuers from the caIssuers URL of the certificates' Authority Information Access (http and
        https only, DER or PKCS#7 answers), with O(aia_timeout) and O(aia_max_bytes). Redirects are not followed; the URL
        must serve the certificate itself.
    type: bool
    default: false
  aia_timeout:
    description: Seconds one AIA download may take in all (connect, headers and body together, however slowly the server sends).
    type: float
    default: 10
  aia_max_bytes:
    description: Largest AIA answer accepted, in bytes.
    type: int
    default: 1048576
  include_root:
    description: Append the root certificate to the written chains. Clients keep their own roots; leave it off.
    type: bool
    default: false
  prefer:
    description:
      - Which path to take when several lead to trust.
      - V(shortest) - fewest intermediates up to a trusted root (the newest root on a tie).
      - V(cross_root) - through cross-signed intermediates as far as they go, for old clients and handsets that only
        know the older root (Cybertrust recommends the cross-root certificate after the intermediate when mobile
        handsets matter).
    type: str
    choices: [shortest, cross_root]
    default: shortest
  catalog:
    description:
      - Extra CA product catalog entries (vendor, product, intermediates, cross_roots, ...) used for the
        missing-issuer hint, added to or replacing the built-in ones (Cybertrust SureServer products).
    type: list
    elements: dict
    default: []
  combined_path:
    description: Write the unencrypted private key, the server certificate and the intermediates in one PEM file (HAProxy C(crt)).
    type: path
  pkcs12_path:
    description: Write a PKCS#12 (PFX) file with the key, the server certificate and the intermediates (IIS, Tomcat).
    type: path
  pkcs12_passphrase:
    description: Password of the PKCS#12 file. Required with O(pkcs12_path).
    type: str
  pkcs12_encryption:
    description:
      - V(modern) - AES-256 with PBKDF2 and a SHA-256 MAC (OpenSSL 3 default; Windows Server 2019 and later).
      - V(compatibility) - 3DES with a SHA-1 MAC, which Windows Server 2016 and older import; OpenSSL 3 still reads
        it without C(-legacy).
    type: str
    choices: [modern, compatibility]
    default: modern
  pkcs12_friendly_name:
    description: Friendly name shown by the Windows certificate store. Defaults to the certificate's common name.
    type: str
  private_mode:
    description: Permissions of O(combined_path) and O(pkcs12_path), which hold the private key.
    type: raw
    default: '0600'
notes:
  - A file is rewritten only when its content would differ; a PKCS#12 file is kept when it opens with
    O(pkcs12_passphrase) and holds the same key, certificates, friendly name and encryption scheme.
seealso:
  - module: certfleet.tls.private_ca_certificate
  - module: certfleet.tls.store_issue
"""

EXAMPLES = r"""
- name: Apache 2.4.8+ and nginx - server certificate and intermediates in the CA's mail, in any order
  certfleet.tls.cert_chain:
    certificate_path: /etc/ssl/incoming/www.example.co.jp.cer
    chain_paths:
      - /etc/ssl/incoming/           # everything the CA sent: .cer, .p7b, .txt
    privatekey_path: /etc/ssl/private/www.example.co.jp.key
    privatekey_passphrase: "{{ vault_key_passphrase }}"
    prefer: cross_root               # intermediate, then the cross-root certificate (Cybertrust's order)
    fullchain_path: /etc/ssl/localcerts/www.example.co.jp.fullchain.crt
    chain_path: /etc/ssl/localcerts/www.example.co.jp.chain.crt   # Apache < 2.4.8
  register: chain

- name: A PFX for IIS on Windows Server 2016 (3DES / SHA-1)
  certfleet.tls.cert_chain:
    certificate_path: /srv/tls/www/server.crt
    chain_paths: [/srv/tls/www/intermediates.crt]
    privatekey_path: /srv/tls/www/server.key
    pkcs12_path: /srv/tls/www/www.pfx
    pkcs12_passphrase: "{{ vault_pfx_password }}"
    pkcs12_encryption: compatibility

- name: HAProxy single PEM, fetching a missing intermediate by AIA
  certfleet.tls.cert_chain:
    certificate_path: /srv/tls/api/server.crt
    privatekey_path: /srv/tls/api/server.key
    aia_fetch: true
    combined_path: /etc/haproxy/tls/api.pem

- name: Private PKI whose root is only in the pile
  certfleet.tls.cert_chain:
    certificate_path: /srv/tls/portal/server.crt
    chain_paths: [/srv/pki/issuing-ca.pem, /srv/pki/root-ca.pem]
    trust_bundle: []
    fullchain_path: /srv/tls/portal/fullchain.crt
"""

RETURN = r"""
chain:
  description: The chain in served order - server certificate, intermediates, and the root when O(include_root=true).
  returned: success
  type: list
  elements: dict
  contains:
    subject:
      description: Subject DN as one line.
      type: str
    issuer:
      description: Issuer DN as one line.
      type: str
    sha256:
      description: SHA-256 fingerprint.
      type: str
    sha1:
      description: SHA-1 fingerprint (the Windows thumbprint, as C(certutil -repairstore) takes it).
      type: str
    serial:
      description: Serial number in hex.
      type: str
    not_before:
      description: Start of validity, ISO 8601 UTC.
      type: str
    not_after:
      description: End of validity, ISO 8601 UTC.
      type: str
    is_ca:
      description: Whether it is a CA certificate.
      type: bool
    self_signed:
      description: Whether it is self-signed.
      type: bool
    source:
      description: Where it was read or fetched from (file, position, URL).
      type: str
root:
  description: The root certificate the chain ends at (not served unless O(include_root=true)); null when unknown.
  returned: success
  type: dict
complete:
  description: Whether the chain reaches a trust anchor.
  returned: success
  type: bool
unused:
  description: Input certificates not in the chain, each with its source, subject, SHA-256 and why it was left out.
  returned: success
  type: list
  elements: dict
fetched:
  description: AIA URLs that were downloaded.
  returned: success
  type: list
  elements: str
files:
  description: Per output (V(fullchain), V(chain), V(combined), V(pkcs12)), its path and whether it was (or would be) written.
  returned: success
  type: dict
backup_files:
  description: Per output, the backup of the previous file.
  returned: when O(backup=true) and a file was replaced
  type: dict
"""

import os

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._chain import chain as _chain
from ansible_collections.certfleet.tls.plugins.module_utils._chain.catalog import merge_catalog
from ansible_collections.certfleet.tls.plugins.module_utils._common.files import check_writable_directory, read_file, write_with_module
from ansible_collections.certfleet.tls.plugins.module_utils._common.module import (
    certificate_files_argument_spec,
    exit_with,
    require_cryptography,
    run_or_fail,
)
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import (
    CertfleetError,
    name_to_dict,
    public_key_fingerprint,
)

SYSTEM_BUNDLE = "/etc/ssl/certs/ca-certificates.crt"
OUTPUTS = ("fullchain", "chain", "combined", "pkcs12")
PRIVATE_OUTPUTS = ("combined", "pkcs12")


def read_input(path: str, *, option: str) -> bytes:
    data = read_file(path, option=option)
    if data is None:
        raise CertfleetError(f"{option}: '{path}' does not exist")
    return data


def expand_paths(paths: list, *, option: str) -> list:
    files = []
    for path in paths:
        if os.path.isdir(path):
            entries = sorted(name for name in os.listdir(path) if not name.startswith("."))
            files.extend(os.path.join(path, name) for name in entries if os.path.isfile(os.path.join(path, name)))
        elif os.path.exists(path):
            files.append(path)
        else:
            raise CertfleetError(f"{option}: '{path}' does not exist")
    return files


def load_inputs(params: dict) -> dict:
    """Leaf, pile, key and trust anchors from the options; every read and parse error names its file."""
    pfx_password = params["input_pkcs12_passphrase"]
    if params["certificate_content"] is not None:
        bundle = _chain.load_certificates(params["certificate_content"].encode("utf-8"), source="certificate_content",
                                          password=pfx_password)
    else:
        path = params["certificate_path"]
        bundle = _chain.load_certificates(read_input(path, option="certificate_path"), source=path, password=pfx_password)
    warnings = list(bundle.warnings)
    if not bundle.certificates:
        raise CertfleetError(f"{bundle.source}: holds no certificate")
    key = bundle.private_key
    if params["privatekey_content"] is not None:
        key = _chain.extract_private_key(params["privatekey_content"].encode("utf-8"), source="privatekey_content",
                                         passphrase=params["privatekey_passphrase"])
    elif params["privatekey_path"] is not None:
        path = params["privatekey_path"]
        key = _chain.extract_private_key(read_input(path, option="privatekey_path"), source=path,
                                         passphrase=params["privatekey_passphrase"])
    pile = []
    for path in expand_paths(params["chain_paths"], option="chain_paths"):
        loaded = _chain.load_certificates(read_input(path, option="chain_paths"), source=path, password=pfx_password)
        warnings.extend(loaded.warnings)
        pile.extend(loaded.certificates)
    if len(bundle.certificates) == 1:
        leaf = bundle.certificates[0]
        if key is not None:
            _chain.check_key_matches(key, leaf, key_source=_key_source(params), cert_source=f"the certificate {leaf.source}")
    else:
        leaf = _chain.select_leaf(bundle.certificates, private_key=key)
        pile = [item for item in bundle.certificates if item is not leaf] + pile
    trust = params["trust_bundle"]
    default_trust = trust is None
    if default_trust:
        trust = [SYSTEM_BUNDLE] if os.path.exists(SYSTEM_BUNDLE) else []
    anchors = []
    for path in expand_paths(trust, option="trust_bundle"):
        anchors.extend(_chain.load_certificates(read_input(path, option="trust_bundle"), source=path).certificates)
    return {"leaf": leaf, "pile": pile, "key": key, "anchors": anchors, "warnings": warnings, "default_trust": default_trust and trust}


def _key_source(params: dict) -> str:
    if params["privatekey_content"] is not None:
        return "privatekey_content"
    if params["privatekey_path"] is not None:
        return f"privatekey_path {params['privatekey_path']}"
    return "the private key in the certificate file"


def wanted_content(kind: str, chain, *, key, params: dict, friendly_name: str | None) -> bytes:
    if kind == "fullchain":
        return _chain.fullchain_pem(chain)
    if kind == "chain":
        return _chain.chain_pem(chain)
    if kind == "combined":
        return _chain.combined_pem(key, chain)
    return _chain.pkcs12_bytes(key, chain, passphrase=params["pkcs12_passphrase"], encryption=params["pkcs12_encryption"],
                               friendly_name=friendly_name)


def is_current(kind: str, existing: bytes | None, wanted: bytes, chain, *, key, params: dict, friendly_name: str | None) -> bool:
    if existing is None:
        return False
    if kind != "pkcs12":
        return existing == wanted
    # PKCS#12 files carry random salts: compare what is inside, not the bytes.
    return _chain.pkcs12_matches(existing, passphrase=params["pkcs12_passphrase"], private_key=key, certificates=chain,
                                 encryption=params["pkcs12_encryption"], friendly_name=friendly_name)


def file_view(kind: str, data: bytes | None, *, params: dict) -> list | None:
    """SHA-256 fingerprints of what an output file holds (and the public key's), never key material."""
    if data is None:
        return None
    try:
        password = params["pkcs12_passphrase"] if kind == "pkcs12" else None
        bundle = _chain.load_certificates(data, source=kind, password=password)
    except CertfleetError:
        return ["(unreadable)"] if kind != "pkcs12" else ["(cannot be opened with pkcs12_passphrase)"]
    view = [_chain.certificate_info(item)["sha256"] for item in bundle.certificates]
    if bundle.private_key is not None:
        view.insert(0, f"key {public_key_fingerprint(bundle.private_key.public_key())}")
    return view


def apply_attributes(module: AnsibleModule, path: str, kind: str, changed: bool) -> bool:
    params = module.params
    mode = params["private_mode"] if kind in PRIVATE_OUTPUTS else params["mode"]
    changed = module.set_mode_if_different(path, mode, changed)
    changed = module.set_owner_if_different(path, params["owner"], changed)
    return module.set_group_if_different(path, params["group"], changed)


def run(module: AnsibleModule) -> dict:
    params = module.params
    outputs = {kind: params[f"{kind}_path"] for kind in OUTPUTS if params[f"{kind}_path"]}
    inputs = load_inputs(params)
    key = inputs["key"]
    for kind in PRIVATE_OUTPUTS:
        if kind in outputs and key is None:
            raise CertfleetError(f"{kind}_path: needs the private key; give privatekey_path (or a PKCS#12 certificate_path with the key)")
    fetch = None
    if params["aia_fetch"]:
        def fetch(url):
            return _chain.http_fetch(url, timeout=params["aia_timeout"], max_bytes=params["aia_max_bytes"])
    try:
        chain = _chain.build_chain(inputs["leaf"], inputs["pile"], trust_anchors=inputs["anchors"], prefer=params["prefer"],
                                   include_root=params["include_root"], fetch_issuer=fetch,
                                   catalog=merge_catalog(params["catalog"]))
    except CertfleetError as exc:
        if inputs["default_trust"] and "not in the trust bundle" in str(exc):
            raise CertfleetError(f"{exc} (trust_bundle defaults to {SYSTEM_BUNDLE}; give the root's file in trust_bundle, "
                                 f"or trust_bundle: [] to trust the roots among the inputs)") from None
        raise
    friendly_name = params["pkcs12_friendly_name"]
    if friendly_name is None:
        friendly_name = name_to_dict(chain.leaf.certificate.subject).get("CN")
        if isinstance(friendly_name, list):
            friendly_name = friendly_name[0]
    # Decide every output before writing any, so a failure leaves every file as it was.
    plans = {}
    for kind, path in outputs.items():
        check_writable_directory(path, option=f"{kind}_path")
        existing = read_file(path, option=f"{kind}_path")
        wanted = wanted_content(kind, chain, key=key, params=params, friendly_name=friendly_name)
        current = is_current(kind, existing, wanted, chain, key=key, params=params, friendly_name=friendly_name)
        plans[kind] = {"path": path, "existing": existing, "wanted": wanted, "changed": not current}
    warnings = inputs["warnings"] + chain.warnings
    if "chain" in outputs and not chain.intermediates and not params["include_root"]:
        warnings.append(f"chain_path: the certificate is signed by a root directly, so {outputs['chain']} holds no certificate")
    result = {
        "changed": False,
        "chain": _chain.chain_info(chain),
        "root": _chain.certificate_info(chain.root) if chain.root is not None else None,
        "complete": chain.complete,
        "unused": chain.unused,
        "fetched": chain.fetched,
        "files": {},
        "warnings_list": warnings,
    }
    backups = {}
    for kind, plan in plans.items():
        changed = plan["changed"]
        if changed and not module.check_mode:
            backup = write_with_module(module, plan["path"], plan["wanted"], backup=params["backup"], option=f"{kind}_path")
            if backup:
                backups[kind] = backup
        if os.path.exists(plan["path"]):
            changed = apply_attributes(module, plan["path"], kind, changed)
        result["files"][kind] = {"path": plan["path"], "changed": changed}
        result["changed"] = result["changed"] or changed
    if backups:
        result["backup_files"] = backups
    if module._diff:
        result["diff"] = {
            "before": {f"{kind}_path": file_view(kind, plan["existing"], params=params) for kind, plan in plans.items()},
            "after": {f"{kind}_path": file_view(kind, plan["wanted"], params=params) for kind, plan in plans.items()},
        }
    return result


def main():
    module = AnsibleModule(
        argument_spec=dict(
            certificate_files_argument_spec(),
            certificate_path=dict(type="path"),
            certificate_content=dict(type="str"),
            chain_paths=dict(type="list", elements="path", default=[]),
            input_pkcs12_passphrase=dict(type="str", no_log=True),
            privatekey_path=dict(type="path"),
            privatekey_content=dict(type="str", no_log=True),
            privatekey_passphrase=dict(type="str", no_log=True),
            trust_bundle=dict(type="list", elements="path"),
            aia_fetch=dict(type="bool", default=False),
            aia_timeout=dict(type="float", default=10),
            aia_max_bytes=dict(type="int", default=1048576),
            include_root=dict(type="bool", default=False),
            prefer=dict(type="str", choices=list(_chain.PREFER_CHOICES), default="shortest"),
            catalog=dict(type="list", elements="dict", default=[]),
            combined_path=dict(type="path"),
            pkcs12_path=dict(type="path"),
            pkcs12_passphrase=dict(type="str", no_log=True),
            pkcs12_encryption=dict(type="str", choices=list(_chain.PKCS12_ENCRYPTIONS), default="modern"),
            pkcs12_friendly_name=dict(type="str"),
            private_mode=dict(type="raw", default="0600"),
        ),
        supports_check_mode=True,
        required_one_of=[("certificate_path", "certificate_content")],
        mutually_exclusive=[("certificate_path", "certificate_content"), ("privatekey_path", "privatekey_content")],
        required_by={"pkcs12_path": ("pkcs12_passphrase",)},
    )
    require_cryptography(module)
    result = run_or_fail(module, lambda: run(module), doing="building the chain")
    exit_with(module, result, warnings=result.pop("warnings_list"))


if __name__ == "__main__":
    main()
