# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""Read an Apache httpd configuration the way httpd does, to find its SSL virtual hosts.

This module is private to the certfleet.tls collection: its API may change
without notice. ``read_configuration`` is a pure function over a ``files`` object (``read``,
``glob``, ``is_dir``, ``walk``): the unit tests pass a dict of texts, the host-side module
``apache_tls_facts`` passes ``LocalFiles``. It needs nothing but the Python standard library, so
it runs on any host with Python.

What it follows (Apache httpd 2.4 "Configuration Files" and core documentation): one directive per
line, a trailing backslash continues the line, ``#`` starts a comment line, arguments split on
white space with "double" or 'single' quotes; ``Define`` and ``${VAR}`` (Define'd names, then the
environment, such as Debian's /etc/apache2/envvars); ``Include`` / ``IncludeOptional`` with
wildcards, relative to ServerRoot, a directory meaning every file below it, in alphabetical order;
``<IfDefine>``; ``<VirtualHost>`` with ServerName, ServerAlias, DocumentRoot, SSLEngine,
SSLCertificateFile, SSLCertificateKeyFile and SSLCertificateChainFile, a vhost inheriting the SSL
settings of the main server. ``<IfModule>`` is taken as true (``!module`` as false): which modules
are loaded is not known without running httpd. Every count is bounded (files, bytes, depth, vhosts).
"""

from __future__ import annotations

import fnmatch
import os
import posixpath
import re

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

# Where each platform keeps httpd's main configuration (paths as data: Windows is only read as text here).
LAYOUTS = {
    "debian": {"config_file": "/etc/apache2/apache2.conf", "server_root": "/etc/apache2", "envvars": "/etc/apache2/envvars"},
    "redhat": {"config_file": "/etc/httpd/conf/httpd.conf", "server_root": "/etc/httpd", "envvars": ""},
    # Apache Lounge's zip unpacked as its readme says; C:\Apache is what the apache_ssl role uses.
    "windows": {"config_file": "C:/Apache24/conf/httpd.conf", "server_root": "C:/Apache24", "envvars": ""},
}
DEFAULT_LIMITS = {
    "max_files": 256,              # configuration files read, includes counted
    "max_file_bytes": 1024 * 1024,  # one configuration file
    "max_total_bytes": 8 * 1024 * 1024,
    "max_depth": 16,               # Include nesting (httpd itself stops at 128)
    "max_vhosts": 1024,
    "max_line_bytes": 64 * 1024,   # one logical line, continuations joined
}
# Sections whose content cannot hold the directives read here (per-directory context).
_SKIPPED_SECTIONS = {"directory", "directorymatch", "files", "filesmatch", "location", "locationmatch", "proxy",
                     "proxymatch", "limit", "limitexcept", "macro", "if", "elseif", "else", "requireall",
                     "requireany", "requirenone", "authnprovideralias", "authzprovideralias"}
_CONDITIONAL_SECTIONS = {"ifmodule", "ifdefine", "ifversion", "iffile", "ifdirective", "ifsection"}
_VARIABLE = re.compile(r"\$\{([A-Za-z0-9_:.-]+)\}")
_WINDOWS_ABSOLUTE = re.compile(r"^(?:[A-Za-z]:[\\/]|\\\\)")


def split_arguments(text: str, *, where: str = "") -> list[str]:
    """The words of one directive line as httpd's ap_getword_conf splits them (quotes removed, \\" kept as ")."""
    words, position, length = [], 0, len(text)
    while position < length:
        while position < length and text[position] in " \t":
            position += 1
        if position >= length:
            break
        quote = text[position] if text[position] in "\"'" else None
        if quote:
            position += 1
            word = []
            while position < length and text[position] != quote:
                if text[position] == "\\" and position + 1 < length and text[position + 1] == quote:
                    position += 1
                word.append(text[position])
                position += 1
            if position >= length:
                raise CertfleetError(f"{where}: unterminated {quote} quote")
            position += 1
            words.append("".join(word))
        else:
            start = position
            while position < length and text[position] not in " \t":
                position += 1
            words.append(text[start:position])
    return words


def logical_lines(text: str, *, where: str, max_line_bytes: int = DEFAULT_LIMITS["max_line_bytes"]):
    """(line number, text) of each directive line: continuations joined, comments and blank lines dropped."""
    pending, first = "", 0
    for number, raw in enumerate(text.splitlines(), start=1):
        line = raw.rstrip("\r")
        if not pending:
            first = number
        if line.endswith("\\") and not line.endswith("\\\\"):
            pending += line[:-1] + " "
        else:
            pending += line
            stripped = pending.strip()
            pending = ""
            if stripped and not stripped.startswith("#"):
                yield first, stripped
        if len(pending) > max_line_bytes:
            raise CertfleetError(f"{where}:{first}: a line longer than {max_line_bytes} bytes")
    if pending.strip() and not pending.strip().startswith("#"):
        yield first, pending.strip()


def parse_envvars(text: str) -> dict:
    """NAME=value of Debian's /etc/apache2/envvars (``export NAME=value`` lines; shell expressions left out)."""
    values = {}
    for line in (text or "").splitlines():
        match = re.match(r"^\s*export\s+([A-Za-z_][A-Za-z0-9_]*)=(.*)$", line)
        if not match:
            continue
        value = match.group(2).strip()
        if value[:1] in "\"'" and value.endswith(value[:1]) and len(value) >= 2:
            value = value[1:-1]
        if "$(" in value or "`" in value:
            continue
        value = re.sub(r"\$([A-Za-z_][A-Za-z0-9_]*)|\$\{([A-Za-z_][A-Za-z0-9_]*)\}",
                       lambda m: values.get(m.group(1) or m.group(2), ""), value)
        values[match.group(1)] = value
    return values


def is_absolute(path: str) -> bool:
    return path.startswith("/") or bool(_WINDOWS_ABSOLUTE.match(path))


def server_relative(path: str, server_root: str) -> str:
    """httpd's ap_server_root_relative: an absolute path as it is, else below ServerRoot."""
    if is_absolute(path):
        return path
    separator = "\\" if "\\" in server_root and "/" not in server_root else "/"
    return server_root.rstrip("/\\") + separator + path


def parse_port(address: str) -> int | None:
    """The port of a VirtualHost or Listen address (``*:443``, ``[::]:8443``, ``10.0.0.1:443``, ``443``); None without one."""
    text = address.strip()
    if text.isdigit():
        return int(text)
    if text.startswith("["):
        _host, _bracket, rest = text.partition("]")
        text = rest
    elif text.count(":") > 1:
        return None  # a bare IPv6 address without a port
    _host, colon, port = text.rpartition(":")
    if colon and port.isdigit() and 0 < int(port) < 65536:
        return int(port)
    return None


def clean_server_name(value: str) -> str:
    """ServerName's host part: ``https://www.example.jp:443`` -> ``www.example.jp``."""
    text = value.strip()
    if "://" in text:
        text = text.split("://", 1)[1]
    if text.startswith("["):
        return text.split("]", 1)[0] + "]"
    if text.count(":") == 1:
        text = text.split(":", 1)[0]
    return text.rstrip("/")


class _Scope:
    """The SSL settings of the main server or of one vhost, as read so far."""

    def __init__(self):
        self.ssl_engine = None
        self.certificate_files: list[str] = []
        self.key_files: list[str] = []
        self.chain_file = None


class _Reader:
    def __init__(self, files, *, server_root: str, defines: dict, environment: dict, limits: dict):
        self.files = files
        self.server_root = server_root
        self.defines = dict(defines)
        self.environment = dict(environment)
        self.limits = dict(DEFAULT_LIMITS, **(limits or {}))
        self.read_files: list[str] = []
        self.total_bytes = 0
        self.warnings: list[str] = []
        self.listen: list[dict] = []
        self.main = _Scope()
        self.main_server_name = None
        self.vhosts: list[dict] = []
        # per file, the directives it holds outside any <VirtualHost> ("Listen 8443"): can it go as a whole?
        self.outside: dict = {}

    # ---- files

    def read(self, path: str, *, where: str, optional: bool = False) -> str | None:
        if len(self.read_files) >= self.limits["max_files"]:
            raise CertfleetError(f"{where}: more than {self.limits['max_files']} configuration files; not read further")
        text = self.files.read(path, max_bytes=self.limits["max_file_bytes"])
        if text is None:
            if not optional:
                self.warnings.append(f"{where}: {path} cannot be read")
            return None
        self.read_files.append(path)
        self.total_bytes += len(text)
        if self.total_bytes > self.limits["max_total_bytes"]:
            raise CertfleetError(f"{where}: the configuration is larger than {self.limits['max_total_bytes']} bytes")
        return text

    def expand_include(self, pattern: str, *, where: str, optional: bool) -> list[str]:
        path = server_relative(pattern, self.server_root)
        if any(character in path for character in "*?["):
            matches = self.files.glob(path)
            if not matches and not optional:
                self.warnings.append(f"{where}: Include {pattern}: no file matches")
        elif self.files.is_dir(path):
            matches = self.files.walk(path)
        else:
            matches = [path]
        found = []
        for match in matches:
            if self.files.is_dir(match):
                found.extend(self.files.walk(match))
            else:
                found.append(match)
        return found

    # ---- variables and conditions

    def substitute(self, text: str, *, where: str) -> str:
        def replace(match):
            name = match.group(1)
            if name in self.defines:
                return self.defines[name]
            if name in self.environment:
                return self.environment[name]
            self.warnings.append(f"{where}: ${{{name}}} is not defined; kept as it is")
            return match.group(0)
        return _VARIABLE.sub(replace, text)

    def condition(self, kind: str, arguments: list[str]) -> bool:
        argument = arguments[0] if arguments else ""
        negated = argument.startswith("!")
        name = argument[1:] if negated else argument
        if kind == "ifdefine":
            result = name in self.defines
        elif kind == "ifmodule":
            result = True  # unknown without httpd -M: read what a loaded module would see
        else:
            return True
        return not result if negated else result

    # ---- the walk

    def parse_file(self, path: str, *, stack: tuple, optional: bool = False) -> None:
        where = path
        if path in stack:
            self.warnings.append(f"{stack[-1]}: Include of {path} again inside itself; skipped")
            return
        if len(stack) >= self.limits["max_depth"]:
            raise CertfleetError(f"{stack[-1]}: Include nested deeper than {self.limits['max_depth']} files ({path})")
        text = self.read(path, where=stack[-1] if stack else path, optional=optional)
        if text is None:
            return
        self.parse_text(text, path=where, stack=stack + (path,))

    def parse_text(self, text: str, *, path: str, stack: tuple) -> None:
        # sections: (kind, active, vhost or None); a skipped or false section skips all it holds
        sections: list[tuple] = []
        for number, line in logical_lines(text, where=path, max_line_bytes=self.limits["max_line_bytes"]):
            where = f"{path}:{number}"
            active = all(section[1] for section in sections)
            vhost = next((section[2] for section in reversed(sections) if section[2] is not None), None)
            if line.startswith("</"):
                name = line[2:].rstrip(">").strip().lower()
                if not sections:
                    self.warnings.append(f"{where}: </{name}> without its opening section")
                    continue
                kind = sections[-1][0]
                if kind != name:
                    self.warnings.append(f"{where}: </{name}> closes <{kind}>")
                closed = sections.pop()
                if closed[2] is not None and closed[1]:
                    self._finish_vhost(closed[2])
                continue
            if line.startswith("<"):
                body = line[1:].rstrip()
                body = body[:-1] if body.endswith(">") else body
                words = split_arguments(self.substitute(body, where=where) if active else body, where=where)
                kind = words[0].lower() if words else ""
                arguments = words[1:]
                if not active:
                    sections.append((kind, False, None))
                elif kind == "virtualhost":
                    if vhost is not None:
                        self.warnings.append(f"{where}: <VirtualHost> inside <VirtualHost> is not valid; skipped")
                        sections.append((kind, False, None))
                        continue
                    sections.append((kind, True, {"file": path, "line": number, "addresses": arguments,
                                                  "scope": _Scope(), "server_name": None, "server_aliases": [],
                                                  "document_root": None}))
                elif kind in _CONDITIONAL_SECTIONS:
                    sections.append((kind, self.condition(kind, arguments), None))
                else:
                    sections.append((kind, kind not in _SKIPPED_SECTIONS, None))
                continue
            if not active:
                continue
            try:
                words = split_arguments(self.substitute(line, where=where), where=where)
            except CertfleetError as exc:
                self.warnings.append(str(exc))
                continue
            if not words:
                continue
            if vhost is None and len(self.outside.setdefault(path, [])) < 64:
                self.outside[path].append(" ".join(words[:3]))
            self.directive(words[0].lower(), words[1:], where=where, vhost=vhost, stack=stack)
        if sections:
            self.warnings.append(f"{path}: <{sections[-1][0]}> is not closed at the end of the file")
            for section in reversed(sections):
                if section[2] is not None and section[1]:
                    self._finish_vhost(section[2])

    def directive(self, name: str, arguments: list[str], *, where: str, vhost, stack: tuple) -> None:
        if name in ("include", "includeoptional"):
            if not arguments:
                return
            for path in self.expand_include(arguments[0], where=where, optional=name == "includeoptional"):
                self.parse_file(path, stack=stack, optional=name == "includeoptional")
            return
        if name == "define" and arguments:
            self.defines[arguments[0]] = arguments[1] if len(arguments) > 1 else ""
            return
        if name == "undefine" and arguments:
            self.defines.pop(arguments[0], None)
            return
        if name == "serverroot" and arguments and vhost is None:
            self.server_root = arguments[0].rstrip("/\\") or self.server_root
            return
        if name == "listen" and arguments and vhost is None:
            port = parse_port(arguments[0])
            if port is not None:
                self.listen.append({"address": arguments[0], "port": port,
                                    "protocol": arguments[1].lower() if len(arguments) > 1 else ""})
            return
        scope = vhost["scope"] if vhost is not None else self.main
        if name == "servername" and arguments:
            if vhost is not None:
                vhost["server_name"] = clean_server_name(arguments[0])
            else:
                self.main_server_name = clean_server_name(arguments[0])
        elif name == "serveralias" and vhost is not None:
            vhost["server_aliases"].extend(arguments)
        elif name == "documentroot" and arguments and vhost is not None:
            vhost["document_root"] = arguments[0]
        elif name == "sslengine" and arguments:
            scope.ssl_engine = arguments[0].lower() in ("on", "optional")
        elif name == "sslcertificatefile" and arguments:
            scope.certificate_files.append(server_relative(arguments[0], self.server_root))
        elif name == "sslcertificatekeyfile" and arguments:
            scope.key_files.append(server_relative(arguments[0], self.server_root))
        elif name == "sslcertificatechainfile" and arguments:
            scope.chain_file = server_relative(arguments[0], self.server_root)

    def _finish_vhost(self, vhost: dict) -> None:
        if len(self.vhosts) >= self.limits["max_vhosts"]:
            raise CertfleetError(f"{vhost['file']}:{vhost['line']}: more than {self.limits['max_vhosts']} virtual hosts")
        self.vhosts.append(vhost)

    def result(self) -> dict:
        vhosts = []
        for vhost in self.vhosts:
            scope = vhost["scope"]
            ssl = scope.ssl_engine if scope.ssl_engine is not None else bool(self.main.ssl_engine)
            ports = [port for port in (parse_port(address) for address in vhost["addresses"]) if port is not None]
            entry = {
                "file": vhost["file"],
                "line": vhost["line"],
                "addresses": vhost["addresses"],
                "port": ports[0] if ports else None,
                "server_name": vhost["server_name"] or self.main_server_name,
                "server_aliases": vhost["server_aliases"],
                "document_root": vhost["document_root"],
                "ssl": ssl,
                # a vhost without its own certificate uses the main server's (mod_ssl merges them)
                "certificate_files": scope.certificate_files or list(self.main.certificate_files),
                "key_files": scope.key_files or list(self.main.key_files),
                "chain_file": scope.chain_file or self.main.chain_file,
            }
            if entry["port"] is None:
                https = [item["port"] for item in self.listen if item["protocol"] == "https"] or \
                        [item["port"] for item in self.listen if item["port"] == 443]
                entry["port"] = https[0] if https else None
            vhosts.append(entry)
        return {"server_root": self.server_root, "files": self.read_files, "listen": self.listen, "vhosts": vhosts,
                "defines": self.defines, "outside": self.outside, "warnings": self.warnings}


def read_configuration(files, *, config_file: str, server_root: str, defines: dict | None = None,
                       environment: dict | None = None, limits: dict | None = None) -> dict:
    """Every virtual host of the configuration that starts at ``config_file``: addresses, port, names, SSL files.

    Returns server_root, files (read, in order), listen, vhosts (file, line, addresses, port,
    server_name, server_aliases, document_root, ssl, certificate_files, key_files, chain_file),
    defines, outside ({file: the directives it holds outside any vhost, at most 64}) and warnings.
    A missing main file, or a bound exceeded, raises CertfleetError.
    """
    reader = _Reader(files, server_root=server_root, defines=defines or {}, environment=environment or {}, limits=limits or {})
    text = reader.read(config_file, where=config_file)
    if text is None:
        raise CertfleetError(f"{config_file}: cannot read Apache's main configuration file")
    reader.parse_text(text, path=config_file, stack=(config_file,))
    return reader.result()


def ssl_vhosts(configuration: dict) -> list[dict]:
    """The vhosts that serve TLS with a certificate of their own or inherited."""
    return [vhost for vhost in configuration["vhosts"] if vhost["ssl"] and vhost["certificate_files"]]


class DictFiles:
    """A configuration tree held in a dict {path: text} (tests, and trees read elsewhere)."""

    def __init__(self, tree: dict):
        self.tree = {self._norm(path): text for path, text in tree.items()}

    @staticmethod
    def _norm(path: str) -> str:
        path = path.replace("\\", "/")
        # Windows file names are case-insensitive: c:/Apache24 and C:/Apache24 are one file.
        return path.lower() if _WINDOWS_ABSOLUTE.match(path) else path

    def read(self, path: str, *, max_bytes: int) -> str | None:
        text = self.tree.get(self._norm(path))
        if text is not None and len(text.encode("utf-8")) > max_bytes:
            raise CertfleetError(f"{path}: larger than {max_bytes} bytes")
        return text

    def glob(self, pattern: str) -> list[str]:
        pattern = self._norm(pattern)
        depth = pattern.count("/")
        return sorted(path for path in self.tree if path.count("/") == depth and fnmatch.fnmatchcase(path, pattern))

    def is_dir(self, path: str) -> bool:
        prefix = self._norm(path).rstrip("/") + "/"
        return any(name.startswith(prefix) for name in self.tree)

    def walk(self, path: str) -> list[str]:
        prefix = self._norm(path).rstrip("/") + "/"
        return sorted(name for name in self.tree if name.startswith(prefix))


class LocalFiles:
    """This machine's files, read with bounds (the host-side module)."""

    def __init__(self, *, max_walk: int = 1024):
        self.max_walk = max_walk

    def read(self, path: str, *, max_bytes: int) -> str | None:
        try:
            with open(path, "rb") as handle:
                data = handle.read(max_bytes + 1)
        except OSError:
            return None
        if len(data) > max_bytes:
            raise CertfleetError(f"{path}: larger than {max_bytes} bytes")
        return data.decode("utf-8", "replace")

    def glob(self, pattern: str) -> list[str]:
        import glob as _glob  # pylint: disable=import-outside-toplevel
        return sorted(_glob.glob(pattern))[:self.max_walk]

    def is_dir(self, path: str) -> bool:
        return os.path.isdir(path)

    def walk(self, path: str) -> list[str]:
        found = []
        for directory, subdirectories, names in os.walk(path):
            subdirectories.sort()
            for name in sorted(names):
                found.append(posixpath.join(directory, name))
                if len(found) >= self.max_walk:
                    return found
        return sorted(found)
