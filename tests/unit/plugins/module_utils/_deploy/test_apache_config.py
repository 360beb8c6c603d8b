"""Apache configuration reader: tables of configuration text, as Debian, RedHat and Windows lay them out."""
from __future__ import annotations

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._deploy import apache_config as ac

DEBIAN_MAIN = """\
# This is the main Apache server configuration file.
ServerRoot "/etc/apache2"
Mutex file:${APACHE_LOCK_DIR} default
PidFile ${APACHE_PID_FILE}
IncludeOptional mods-enabled/*.load
IncludeOptional mods-enabled/*.conf
Include ports.conf
IncludeOptional conf-enabled/*.conf
IncludeOptional sites-enabled/*.conf
"""
PORTS = """\
Listen 80
<IfModule ssl_module>
\tListen 443
</IfModule>
"""


def debian(**sites):
    tree = {"/etc/apache2/apache2.conf": DEBIAN_MAIN, "/etc/apache2/ports.conf": PORTS,
            "/etc/apache2/mods-enabled/ssl.load": "LoadModule ssl_module /usr/lib/apache2/modules/mod_ssl.so\n"}
    tree.update({f"/etc/apache2/sites-enabled/{name}.conf": text for name, text in sites.items()})
    return ac.read_configuration(ac.DictFiles(tree), config_file="/etc/apache2/apache2.conf", server_root="/etc/apache2",
                                 environment={"APACHE_LOCK_DIR": "/var/lock/apache2", "APACHE_PID_FILE": "/run/apache2.pid"})


SEED_VHOST = """\
<VirtualHost *:443>
    ServerName www.example.co.jp
    ServerAlias example.co.jp \\
                shop.example.co.jp
    DocumentRoot /var/www/html
    SSLEngine on
    SSLCertificateFile /etc/ssl/certs/www.crt
    SSLCertificateKeyFile /etc/ssl/private/www.key
    SSLCertificateChainFile /etc/ssl/certs/chain.crt
</VirtualHost>
"""


@pytest.mark.parametrize("text, expected", [
    (SEED_VHOST, {"server_name": "www.example.co.jp", "server_aliases": ["example.co.jp", "shop.example.co.jp"], "port": 443,
                  "certificate_files": ["/etc/ssl/certs/www.crt"], "key_files": ["/etc/ssl/private/www.key"],
                  "chain_file": "/etc/ssl/certs/chain.crt", "ssl": True, "document_root": "/var/www/html"}),
    # quoted paths with spaces, relative paths below ServerRoot, lower-case directives, a port in ServerName
    ('<VirtualHost 10.0.0.5:8443>\n servername https://api.example.jp:8443\n sslengine On\n'
     ' SSLCertificateFile "ssl/my cert.pem"\n SSLCertificateKeyFile \'/etc/ssl/private/k y.key\'\n</VirtualHost>\n',
     {"server_name": "api.example.jp", "port": 8443, "certificate_files": ["/etc/apache2/ssl/my cert.pem"],
      "key_files": ["/etc/ssl/private/k y.key"], "chain_file": None}),
    # IPv6 address, two certificates (RSA and ECDSA) with their keys
    ("<VirtualHost [2001:db8::1]:443>\nServerName v6.example.jp\nSSLEngine on\nSSLCertificateFile /c/rsa.pem\n"
     "SSLCertificateKeyFile /c/rsa.key\nSSLCertificateFile /c/ec.pem\nSSLCertificateKeyFile /c/ec.key\n</VirtualHost>\n",
     {"port": 443, "certificate_files": ["/c/rsa.pem", "/c/ec.pem"], "key_files": ["/c/rsa.key", "/c/ec.key"]}),
    # commented-out directives and a directory section do not count
    ("<VirtualHost *:443>\nServerName c.example.jp\n#SSLCertificateFile /old.pem\n  # SSLEngine off\nSSLEngine on\n"
     "<Directory /var/www>\nSSLCertificateFile /not/here.pem\n</Directory>\nSSLCertificateFile /new.pem\n</VirtualHost>\n",
     {"certificate_files": ["/new.pem"], "ssl": True}),
])
def test_one_vhost(text, expected):
    result = debian(site=text)
    assert len(result["vhosts"]) == 1, result
    vhost = result["vhosts"][0]
    for key, value in expected.items():
        assert vhost[key] == value, key
    assert vhost["file"] == "/etc/apache2/sites-enabled/site.conf"


def test_debian_layout_reads_includes_in_order_and_listen():
    result = debian(**{"000-default": "<VirtualHost *:80>\nServerName plain.example.jp\n</VirtualHost>\n", "www": SEED_VHOST})
    assert [vhost["server_name"] for vhost in result["vhosts"]] == ["plain.example.jp", "www.example.co.jp"]
    assert [vhost["ssl"] for vhost in result["vhosts"]] == [False, True]
    assert [vhost["server_name"] for vhost in ac.ssl_vhosts(result)] == ["www.example.co.jp"]
    assert [item["port"] for item in result["listen"]] == [80, 443]
    assert result["files"][:3] == ["/etc/apache2/apache2.conf", "/etc/apache2/mods-enabled/ssl.load", "/etc/apache2/ports.conf"]
    assert result["warnings"] == []


def test_define_and_variables():
    text = ('Define CERTS /srv/certs\nDefine SITE shop.example.jp\n<VirtualHost *:${PORT}>\nServerName ${SITE}\n'
            'SSLEngine on\nSSLCertificateFile ${CERTS}/${SITE}.pem\nSSLCertificateKeyFile ${UNDEFINED}/k.pem\n</VirtualHost>\n')
    tree = {"/etc/apache2/apache2.conf": text}
    result = ac.read_configuration(ac.DictFiles(tree), config_file="/etc/apache2/apache2.conf", server_root="/etc/apache2",
                                   environment={"PORT": "8443"})
    vhost = result["vhosts"][0]
    assert (vhost["server_name"], vhost["port"], vhost["certificate_files"]) == ("shop.example.jp", 8443, ["/srv/certs/shop.example.jp.pem"])
    assert vhost["key_files"] == ["/etc/apache2/${UNDEFINED}/k.pem"]  # kept, then relative to ServerRoot as httpd does
    assert any("${UNDEFINED} is not defined" in warning for warning in result["warnings"])


@pytest.mark.parametrize("condition, present", [
    ("<IfDefine SSL>", True), ("<IfDefine !SSL>", False), ("<IfDefine NOPE>", False), ("<IfDefine !NOPE>", True),
    ("<IfModule mod_ssl.c>", True), ("<IfModule !mod_ssl.c>", False), ("<IfVersion >= 2.4>", True),
])
def test_conditional_sections(condition, present):
    kind = condition[1:].split()[0]
    text = f"Define SSL\n{condition}\n{SEED_VHOST}</{kind}>\n"
    result = ac.read_configuration(ac.DictFiles({"/etc/httpd/conf/httpd.conf": text}), config_file="/etc/httpd/conf/httpd.conf",
                                   server_root="/etc/httpd")
    assert len(result["vhosts"]) == (1 if present else 0)


def test_redhat_layout_conf_d_glob_and_inherited_main_server_certificate():
    tree = {
        "/etc/httpd/conf/httpd.conf": 'ServerRoot "/etc/httpd"\nListen 80\nInclude conf.modules.d/*.conf\nIncludeOptional conf.d/*.conf\n',
        "/etc/httpd/conf.modules.d/00-ssl.conf": "LoadModule ssl_module modules/mod_ssl.so\n",
        "/etc/httpd/conf.d/ssl.conf": ("Listen 443 https\nSSLEngine off\nSSLCertificateFile /etc/pki/tls/certs/localhost.crt\n"
                                       "SSLCertificateKeyFile /etc/pki/tls/private/localhost.key\n"
                                       "<VirtualHost _default_:443>\nServerName rh.example.jp\nSSLEngine on\n</VirtualHost>\n"),
        "/etc/httpd/conf.d/www.conf": "<VirtualHost *>\nServerName other.example.jp\nSSLEngine on\nSSLCertificateFile /x.pem\n</VirtualHost>\n",
        "/etc/httpd/conf.d/README": "not a conf file: not included",
    }
    result = ac.read_configuration(ac.DictFiles(tree), config_file=ac.LAYOUTS["redhat"]["config_file"],
                                   server_root=ac.LAYOUTS["redhat"]["server_root"])
    by_name = {vhost["server_name"]: vhost for vhost in result["vhosts"]}
    assert by_name["rh.example.jp"]["certificate_files"] == ["/etc/pki/tls/certs/localhost.crt"]
    assert by_name["rh.example.jp"]["key_files"] == ["/etc/pki/tls/private/localhost.key"]
    assert by_name["rh.example.jp"]["port"] == 443
    # no port on the vhost: the https Listen port
    assert by_name["other.example.jp"]["port"] == 443
    assert "/etc/httpd/conf.d/README" not in result["files"]


def test_windows_layout_paths_as_data():
    tree = {
        "C:/Apache24/conf/httpd.conf": 'Define SRVROOT "c:/Apache24"\nServerRoot "${SRVROOT}"\nListen 80\n'
                                       "Include conf/extra/httpd-ssl.conf\n",
        "C:/Apache24/conf/extra/httpd-ssl.conf": ('Listen 443\n<VirtualHost _default_:443>\nServerName win.example.jp:443\n'
                                                  'SSLEngine on\nSSLCertificateFile "${SRVROOT}/conf/server.crt"\n'
                                                  'SSLCertificateKeyFile "conf/server.key"\n'
                                                  'SSLCertificateChainFile "C:\\Apache24\\conf\\chain.crt"\n</VirtualHost>\n'),
    }
    layout = ac.LAYOUTS["windows"]
    result = ac.read_configuration(ac.DictFiles(tree), config_file=layout["config_file"], server_root=layout["server_root"])
    vhost = result["vhosts"][0]
    assert vhost["server_name"] == "win.example.jp"
    assert vhost["certificate_files"] == ["c:/Apache24/conf/server.crt"]
    assert vhost["key_files"] == ["c:/Apache24/conf/server.key"]
    assert vhost["chain_file"] == "C:\\Apache24\\conf\\chain.crt"


def test_include_of_a_directory_and_a_missing_include():
    tree = {"/etc/apache2/apache2.conf": "Include vhosts\nInclude missing/*.conf\nIncludeOptional gone/*.conf\n",
            "/etc/apache2/vhosts/b/two.conf": SEED_VHOST.replace("www.example", "two.example"),
            "/etc/apache2/vhosts/a.conf": SEED_VHOST}
    result = ac.read_configuration(ac.DictFiles(tree), config_file="/etc/apache2/apache2.conf", server_root="/etc/apache2")
    assert [vhost["server_name"] for vhost in result["vhosts"]] == ["www.example.co.jp", "two.example.co.jp"]
    assert result["warnings"] == ["/etc/apache2/apache2.conf:2: Include missing/*.conf: no file matches"]


@pytest.mark.parametrize("tree, limits, message", [
    ({"/a.conf": "Include /a.conf\n"}, {}, None),  # an include loop is skipped with a warning
    ({"/a.conf": "Include /b.conf\n", "/b.conf": "Include /c.conf\n", "/c.conf": "Include /d.conf\n", "/d.conf": ""},
     {"max_depth": 3}, "Include nested deeper than 3 files"),
    ({"/a.conf": "Include /x/*.conf\n", **{f"/x/{n:03}.conf": "" for n in range(10)}}, {"max_files": 5}, "more than 5 configuration files"),
    ({"/a.conf": "#" * 2000}, {"max_file_bytes": 1000}, "larger than 1000 bytes"),
    ({"/a.conf": "<VirtualHost *:443>\n</VirtualHost>\n" * 5}, {"max_vhosts": 4}, "more than 4 virtual hosts"),
])
def test_bounds(tree, limits, message):
    files = ac.DictFiles(tree)
    if message is None:
        result = ac.read_configuration(files, config_file="/a.conf", server_root="/", limits=limits)
        assert "again inside itself" in result["warnings"][0]
        return
    with pytest.raises(CertfleetError, match=message):
        ac.read_configuration(files, config_file="/a.conf", server_root="/", limits=limits)


def test_missing_main_file_is_an_error():
    with pytest.raises(CertfleetError, match="cannot read Apache's main configuration file"):
        ac.read_configuration(ac.DictFiles({}), config_file="/etc/apache2/apache2.conf", server_root="/etc/apache2")


@pytest.mark.parametrize("line, words", [
    ('SSLCertificateFile "/a b/c.pem"', ["SSLCertificateFile", "/a b/c.pem"]),
    ("ServerAlias  a.example.jp\tb.example.jp", ["ServerAlias", "a.example.jp", "b.example.jp"]),
    ('Header set X "say \\"hi\\""', ["Header", "set", "X", 'say "hi"']),
    ("SSLCertificateFile 'single quoted.pem'", ["SSLCertificateFile", "single quoted.pem"]),
])
def test_split_arguments(line, words):
    assert ac.split_arguments(line) == words


def test_unterminated_quote_is_a_warning_not_a_crash():
    result = debian(site='<VirtualHost *:443>\nSSLCertificateFile "/a.pem\nSSLEngine on\n</VirtualHost>\n')
    assert result["vhosts"][0]["certificate_files"] == []
    assert any("unterminated" in warning for warning in result["warnings"])


@pytest.mark.parametrize("address, port", [("*:443", 443), ("[::]:8443", 8443), ("10.0.0.1:443", 443), ("443", 443),
                                           ("_default_:443", 443), ("*", None), ("2001:db8::1", None)])
def test_parse_port(address, port):
    assert ac.parse_port(address) == port


def test_envvars():
    text = ('unset HOME\nexport APACHE_RUN_USER=www-data\nexport APACHE_RUN_DIR=/var/run/apache2$SUFFIX\n'
            'export APACHE_LOG_DIR="/var/log/apache2$SUFFIX"\nexport LANG=$(locale)\n')
    assert ac.parse_envvars(text) == {"APACHE_RUN_USER": "www-data", "APACHE_RUN_DIR": "/var/run/apache2",
                                      "APACHE_LOG_DIR": "/var/log/apache2"}


def test_local_files_reads_a_real_tree(tmp_path):
    (tmp_path / "sites").mkdir()
    (tmp_path / "main.conf").write_text(f"ServerRoot {tmp_path}\nIncludeOptional sites/*.conf\n")
    (tmp_path / "sites" / "www.conf").write_text(SEED_VHOST)
    result = ac.read_configuration(ac.LocalFiles(), config_file=str(tmp_path / "main.conf"), server_root=str(tmp_path))
    assert [vhost["server_name"] for vhost in ac.ssl_vhosts(result)] == ["www.example.co.jp"]
    (tmp_path / "sites" / "big.conf").write_text("#" * 5000)
    with pytest.raises(CertfleetError, match="larger than 4000 bytes"):
        ac.read_configuration(ac.LocalFiles(), config_file=str(tmp_path / "main.conf"), server_root=str(tmp_path),
                              limits={"max_file_bytes": 4000})


def test_directives_outside_vhosts_are_listed_per_file():
    result = debian(shop="Listen 8443\n" + SEED_VHOST, ssl="SSLPassPhraseDialog builtin\nListen 443 https\n" + SEED_VHOST)
    assert result["outside"]["/etc/apache2/sites-enabled/shop.conf"] == ["Listen 8443"]
    assert result["outside"]["/etc/apache2/sites-enabled/ssl.conf"] == ["SSLPassPhraseDialog builtin", "Listen 443 https"]
    assert "/etc/apache2/sites-enabled/www.conf" not in result["outside"]
