#!/usr/bin/python
# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)

from __future__ import annotations

DOCUMENTATION = r"""
module: apache_tls_facts
short_description: Read a running Apache's configuration and report its SSL virtual hosts with their certificates and keys
version_added: 0.2.0
author:
  - certfleet.tls maintainers (@certfleet)
description:
  - Runs on the web server. Reads Apache httpd's configuration as httpd does - the main file, every C(Include) and
    C(IncludeOptional) (wildcards, directories), C(Define) and C(${VAR}) (with Debian's C(envvars)), C(<IfDefine>) -
    and reports each virtual host that serves TLS - its file and line, addresses and port, C(ServerName),
    C(ServerAlias), C(DocumentRoot), and the contents of its C(SSLCertificateFile) and C(SSLCertificateChainFile).
  - The keys of C(SSLCertificateKeyFile) (and a key inside the certificate file) are returned apart, in
    RV(private_keys), so that the task can hide them with C(no_log) and M(certfleet.tls.store_import) can take them.
    A key that cannot be read is named in the vhost's C(key_errors).
  - Nothing is changed. Every read is bounded - configuration files (count, size, include depth), virtual hosts, and
    each certificate or key file.
  - Layouts - Debian (C(/etc/apache2/apache2.conf), sites-enabled), RedHat (C(/etc/httpd/conf/httpd.conf), conf.d);
    the Windows layout (C(C:/Apache24/conf/httpd.conf)) is known to the reader, but this module runs on POSIX hosts.
extends_documentation_fragment:
  - certfleet.tls.attributes
  - certfleet.tls.attributes.info_module
options:
  layout:
    description: The platform layout; V(auto) takes the first whose main configuration file exists.
    type: str
    choices: [auto, debian, redhat]
    default: auto
  config_file:
    description: The main configuration file, instead of the layout's.
    type: path
  server_root:
    description: ServerRoot for relative paths until the configuration sets it, instead of the layout's.
    type: path
  include_keys:
    description: Return the private keys in RV(private_keys). V(false) only reports whether each key could be read.
    type: bool
    default: true
  all_vhosts:
    description: Report the virtual hosts without TLS too (with no certificate).
    type: bool
    default: false
notes:
  - Hide the task's result with C(no_log) when O(include_keys=true) - RV(private_keys) holds the keys in the clear
    when they are not encrypted on the host.
seealso:
  - module: certfleet.tls.store_import
"""

EXAMPLES = r"""
- name: Find the SSL vhosts and their files
  certfleet.tls.apache_tls_facts:
  register: apache_tls
  no_log: true

- name: Only the vhosts, no keys
  certfleet.tls.apache_tls_facts:
    include_keys: false
  register: apache_vhosts
"""

RETURN = r"""
layout:
  description: The layout read (V(debian) or V(redhat)).
  returned: success
  type: str
config_file:
  description: The main configuration file.
  returned: success
  type: str
files:
  description: Every configuration file read, in order.
  returned: success
  type: list
  elements: str
vhosts:
  description: The SSL virtual hosts, in configuration order.
  returned: success
  type: list
  elements: dict
  contains:
    file:
      description: The file that holds the vhost (as included, for example the sites-enabled link).
      type: str
    line:
      description: Line of C(<VirtualHost>).
      type: int
    port:
      description: Port of its address (or of the https Listen when it has none).
      type: int
    server_name:
      description: ServerName without scheme and port.
      type: str
    server_aliases:
      description: ServerAlias names.
      type: list
      elements: str
    document_root:
      description: DocumentRoot.
      type: str
    certificate_files:
      description: SSLCertificateFile paths (inherited from the main server when the vhost sets none).
      type: list
      elements: str
    key_files:
      description: SSLCertificateKeyFile paths.
      type: list
      elements: str
    chain_file:
      description: SSLCertificateChainFile path.
      type: str
    certificates:
      description: PEM text of each certificate file, key blocks removed.
      type: list
      elements: str
    chain:
      description: PEM text of the chain file.
      type: str
    key_errors:
      description: Why a key file could not be read.
      type: list
      elements: str
    errors:
      description: Why a certificate file could not be read.
      type: list
      elements: str
    file_vhosts:
      description: How many virtual hosts (TLS or not) the same file holds.
      type: int
    file_directives:
      description: The directives the same file holds outside any virtual host (for example V(Listen 8443)), at most 64.
      type: list
      elements: str
private_keys:
  description: The PEM private keys read (each once), when O(include_keys) is set.
  returned: success
  type: list
  elements: str
warnings_found:
  description: What the reader could not follow (an undefined variable, a missing Include).
  returned: success
  type: list
  elements: str
"""

import os
import re

from ansible.module_utils.basic import AnsibleModule

from ansible_collections.certfleet.tls.plugins.module_utils._deploy import apache_config as _config
from ansible_collections.certfleet.tls.plugins.module_utils._common.module import run_or_fail

# One certificate, chain or key file: certificates with a long chain stay far below this.
MAX_PEM_BYTES = 256 * 1024
_KEY_BLOCK = re.compile(r"-----BEGIN ((?:ENCRYPTED |RSA |EC |DSA )?PRIVATE KEY)-----.*?-----END \1-----\r?\n?", re.DOTALL)


def read_pem(path: str) -> tuple[str | None, str | None]:
    """(text, None) of a small text file, (None, why) when it cannot be read."""
    try:
        with open(path, "rb") as handle:
            data = handle.read(MAX_PEM_BYTES + 1)
    except OSError as exc:
        return None, f"{path}: {exc.strerror}"
    if len(data) > MAX_PEM_BYTES:
        return None, f"{path}: larger than {MAX_PEM_BYTES} bytes"
    return data.decode("ascii", "replace"), None


def gather(params: dict) -> dict:
    """The configuration read from this host's files, with the contents of each SSL vhost's files."""
    layout = params["layout"]
    if layout == "auto":
        layout = next((name for name in ("debian", "redhat") if os.path.isfile(_config.LAYOUTS[name]["config_file"])), None)
        if layout is None:
            raise _config.CertfleetError("no Apache configuration found (neither /etc/apache2/apache2.conf nor "
                                         "/etc/httpd/conf/httpd.conf); give config_file")
    settings = _config.LAYOUTS[layout]
    environment = {}
    if settings["envvars"] and os.path.isfile(settings["envvars"]):
        text, _error = read_pem(settings["envvars"])
        environment = _config.parse_envvars(text or "")
    configuration = _config.read_configuration(_config.LocalFiles(), config_file=params["config_file"] or settings["config_file"],
                                               server_root=params["server_root"] or settings["server_root"],
                                               environment=environment)
    per_file: dict = {}
    for vhost in configuration["vhosts"]:
        per_file[vhost["file"]] = per_file.get(vhost["file"], 0) + 1
    chosen = configuration["vhosts"] if params["all_vhosts"] else _config.ssl_vhosts(configuration)
    keys: list[str] = []
    vhosts = []
    for vhost in chosen:
        entry = dict(vhost, certificates=[], chain=None, key_errors=[], errors=[], file_vhosts=per_file[vhost["file"]],
                     file_directives=configuration["outside"].get(vhost["file"], []))
        found_keys = []
        for path in vhost["certificate_files"]:
            text, error = read_pem(path)
            if error:
                entry["errors"].append(error)
                continue
            found_keys.extend(match.group(0) for match in _KEY_BLOCK.finditer(text))
            entry["certificates"].append(_KEY_BLOCK.sub("", text))
        if vhost["chain_file"]:
            text, error = read_pem(vhost["chain_file"])
            if error:
                entry["errors"].append(error)
            else:
                entry["chain"] = _KEY_BLOCK.sub("", text)
        for path in vhost["key_files"]:
            text, error = read_pem(path)
            if error:
                entry["key_errors"].append(error)
                continue
            blocks = [match.group(0) for match in _KEY_BLOCK.finditer(text)]
            if not blocks:
                entry["key_errors"].append(f"{path}: no PEM private key in it")
            found_keys.extend(blocks)
        if not vhost["key_files"] and not found_keys and vhost["ssl"]:
            entry["key_errors"].append("no SSLCertificateKeyFile and no key in the certificate file")
        entry["keys_found"] = len(found_keys)
        if params["include_keys"]:
            keys.extend(key for key in found_keys if key not in keys)
        vhosts.append(entry)
    return {"changed": False, "layout": layout, "config_file": params["config_file"] or settings["config_file"],
            "server_root": configuration["server_root"], "files": configuration["files"], "listen": configuration["listen"],
            "vhosts": vhosts, "private_keys": keys, "warnings_found": configuration["warnings"]}


def main():
    module = AnsibleModule(
        argument_spec=dict(
            layout=dict(type="str", choices=["auto", "debian", "redhat"], default="auto"),
            config_file=dict(type="path"),
            server_root=dict(type="path"),
            include_keys=dict(type="bool", default=True),
            all_vhosts=dict(type="bool", default=False),
        ),
        supports_check_mode=True,
    )
    result = run_or_fail(module, lambda: gather(module.params), doing="reading Apache's configuration")
    module.exit_json(**result)


if __name__ == "__main__":
    main()
