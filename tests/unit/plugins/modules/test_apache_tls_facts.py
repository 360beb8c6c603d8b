"""apache_tls_facts on a real configuration tree: vhosts, file contents, keys apart, unreadable files named."""
from __future__ import annotations

from ansible_collections.certfleet.tls.plugins.modules import apache_tls_facts
from ansible_collections.certfleet.tls.tests.unit.plugins.module_utils import pki_builder as pb


def test_reads_vhosts_certificates_and_keys(run_module, tmp_path):
    root = pb.make_root("Facts Root")
    issuing = pb.make_intermediate("Facts Issuing", issuer=root)
    www = pb.make_leaf("www.example.jp", issuer=issuing)
    combined = pb.make_leaf("combined.example.jp", issuer=issuing)
    (tmp_path / "sites-enabled").mkdir()
    (tmp_path / "ssl").mkdir()
    (tmp_path / "ssl" / "www.crt").write_bytes(www.pem)
    (tmp_path / "ssl" / "www.key").write_bytes(www.key_pem)
    (tmp_path / "ssl" / "chain.crt").write_bytes(issuing.pem)
    (tmp_path / "ssl" / "combined.pem").write_bytes(combined.key_pem + combined.pem + issuing.pem)
    (tmp_path / "apache2.conf").write_text(f'ServerRoot "{tmp_path}"\nListen 443\nIncludeOptional sites-enabled/*.conf\n')
    (tmp_path / "sites-enabled" / "www.conf").write_text(
        "<VirtualHost *:80>\nServerName www.example.jp\n</VirtualHost>\n"
        "<VirtualHost *:443>\nServerName www.example.jp\nServerAlias example.jp\nSSLEngine on\n"
        "SSLCertificateFile ssl/www.crt\nSSLCertificateKeyFile ssl/www.key\nSSLCertificateChainFile ssl/chain.crt\n</VirtualHost>\n")
    (tmp_path / "sites-enabled" / "z-combined.conf").write_text(
        "<VirtualHost *:8443>\nServerName combined.example.jp\nSSLEngine on\nSSLCertificateFile ssl/combined.pem\n</VirtualHost>\n"
        "<VirtualHost *:9443>\nServerName broken.example.jp\nSSLEngine on\nSSLCertificateFile ssl/missing.pem\n"
        "SSLCertificateKeyFile ssl/missing.key\n</VirtualHost>\n")
    result = run_module(apache_tls_facts.main, {"config_file": str(tmp_path / "apache2.conf"), "server_root": str(tmp_path)})
    assert not result.get("failed"), result
    by_name = {vhost["server_name"]: vhost for vhost in result["vhosts"]}
    assert sorted(by_name) == ["broken.example.jp", "combined.example.jp", "www.example.jp"]
    www_vhost = by_name["www.example.jp"]
    assert www_vhost["certificates"] == [www.pem.decode()] and www_vhost["chain"] == issuing.pem.decode()
    assert www_vhost["file_vhosts"] == 2 and www_vhost["server_aliases"] == ["example.jp"] and www_vhost["key_errors"] == []
    # the key inside the certificate file is taken out of the certificate text
    assert by_name["combined.example.jp"]["certificates"] == [(combined.pem + issuing.pem).decode()]
    assert sorted(result["private_keys"]) == sorted([www.key_pem.decode(), combined.key_pem.decode()])
    broken = by_name["broken.example.jp"]
    assert broken["errors"] == [f"{tmp_path}/ssl/missing.pem: No such file or directory"]
    assert broken["key_errors"] == [f"{tmp_path}/ssl/missing.key: No such file or directory"]

    without = run_module(apache_tls_facts.main, {"config_file": str(tmp_path / "apache2.conf"), "server_root": str(tmp_path),
                                                 "include_keys": False})
    assert without["private_keys"] == [] and "PRIVATE KEY" not in str(without)


def test_no_configuration_is_a_clear_error(run_module, tmp_path):
    result = run_module(apache_tls_facts.main, {"config_file": str(tmp_path / "nothing.conf")})
    assert result["failed"] and "cannot read Apache's main configuration file" in result["msg"]
