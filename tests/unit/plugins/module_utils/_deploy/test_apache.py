"""The apache_ssl role's decisions: platform, version, site plan, deploy check, error text."""
from __future__ import annotations

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._deploy import apache as _apache
from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError

DEBIAN = {"cert_dir": "/etc/ssl/certfleet", "key_dir": "/etc/ssl/private", "key_mode": "0600", "key_group": "root",
          "document_root": "/var/www/html", "vhost_dir": "/etc/apache2/sites-available",
          "vhost_enabled_dir": "/etc/apache2/sites-enabled", "default_ports": [80, 443]}
WINDOWS = {"cert_dir": "C:\\Apache\\conf\\ssl", "key_dir": "C:\\Apache\\conf\\ssl", "key_mode": "0600", "key_group": "",
           "document_root": "C:/Apache/htdocs", "vhost_dir": "C:\\Apache\\conf\\ssl", "vhost_enabled_dir": "",
           "default_ports": [80, 443]}
DEFINITIONS = [
    {"name": "portal", "common_name": "portal.example.intra", "issuer": {"provider": "private_ca", "ca": "intra"}},
    {"name": "shop", "common_name": "shop.example.co.jp", "issuer": {"provider": "manual"}},
]


def make_plan(sites, **kwargs):
    options = {"definitions": DEFINITIONS, "platform": DEBIAN, "fullchain": True, "store_path": "/store/",
               "verify_host": "10.0.0.5"}
    options.update(kwargs)
    return _apache.plan(sites, **options)


OS_RELEASES = [
    ('PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n',
     {"os_family": "Debian", "distribution": "Debian", "distribution_id": "debian", "distribution_major_version": "12"}),
    ('NAME="Ubuntu"\nVERSION_ID="24.04"\nID=ubuntu\nID_LIKE=debian\n',
     {"os_family": "Debian", "distribution": "Ubuntu", "distribution_id": "ubuntu", "distribution_major_version": "24"}),
    ('NAME="Rocky Linux"\nVERSION_ID="9.4"\nID="rocky"\nID_LIKE="rhel centos fedora"\n',
     {"os_family": "RedHat", "distribution": "Rocky", "distribution_id": "rocky", "distribution_major_version": "9"}),
]


@pytest.mark.parametrize(("text", "expected"), OS_RELEASES)
def test_os_release_gives_family_and_major_version(text, expected):
    assert _apache.parse_os_release(text) == expected


@pytest.mark.parametrize(("text", "message"), [("", "no ID= line"), ("ID=alpine\nNAME=Alpine\n", "unsupported platform")])
def test_os_release_rejects_unknown_platforms(text, message):
    with pytest.raises(CertfleetError, match=message):
        _apache.parse_os_release(text)


@pytest.mark.parametrize(("version", "fullchain"), [("2.4.7", False), ("2.4.8", True), ("2.4.62", True), ("2.2.34", False)])
def test_fullchain_from_2_4_8_on(version, fullchain):
    assert _apache.uses_fullchain(version) is fullchain


def test_version_is_read_from_apache_output():
    text = "Server version: Apache/2.4.62 (Debian)\nServer built:   2024-07-22T18:35:22\n"
    assert _apache.parse_apache_version(text) == "2.4.62"
    with pytest.raises(CertfleetError, match="cannot read Apache's version"):
        _apache.parse_apache_version("httpd: command not found")


def test_plan_fills_defaults_and_shares_a_certificate_between_sites():
    result = make_plan([{"name": "portal", "certificate": "portal"},
                        {"name": "wiki", "certificate": "portal", "server_name": "wiki.example.intra", "port": 8443,
                         "hsts": True}])
    portal, wiki = result["sites"]
    assert portal["server_name"] == "portal.example.intra"
    assert portal["port"] == 443 and portal["hsts"] is False and portal["document_root"] == "/var/www/html"
    assert portal["verify_name"] == "portal.example.intra"
    assert portal["vhost_path"] == "/etc/apache2/sites-available/certfleet-portal.conf"
    assert portal["vhost_link"] == "/etc/apache2/sites-enabled/certfleet-portal.conf"
    assert len(result["certificates"]) == 1
    assert result["certificates"][0] == {
        "name": "portal", "key_path": "/etc/ssl/private/certfleet-portal.key",
        "certificate_path": "/etc/ssl/certfleet/certfleet-portal.fullchain.pem", "key_mode": "0600",
        "key_owner": "root", "key_group": "root"}
    assert wiki["certificate_file"] == portal["certificate_file"] and wiki["chain_file"] == ""
    assert result["listen_ports"] == [8443]
    assert result["modules"] == ["ssl", "socache_shmcb", "headers"]
    assert result["redirect_ports"] == [] and result["stapling"] is False


def test_plan_before_2_4_8_uses_a_separate_chain_file():
    result = make_plan([{"name": "shop", "certificate": "shop"}], fullchain=False)
    entry = result["certificates"][0]
    assert entry["certificate_path"] == "/etc/ssl/certfleet/certfleet-shop.pem"
    assert entry["chain_path"] == "/etc/ssl/certfleet/certfleet-shop.chain.pem"
    assert result["sites"][0]["chain_file"] == entry["chain_path"]


def test_plan_check_targets_trust_the_private_ca_root_and_compare_with_the_store():
    result = make_plan([{"name": "portal", "certificate": "portal", "verify_name": "wiki.example.intra"},
                        {"name": "shop", "certificate": "shop", "redirect_http": True}])
    portal, shop = result["check_targets"]
    assert portal == {"name": "portal", "host": "10.0.0.5", "port": 443, "server_name": "wiki.example.intra",
                      "mode": "monitored_only", "expected_certificate": "/store/certs/portal/fullchain.pem",
                      "trusted_ca_set": "private_ca_intra", "check_hostname": True}
    assert shop["trusted_ca_set"] == "default"
    assert result["trusted_ca_sets"] == {"private_ca_intra": {"system": False, "certificates": ["/store/ca/intra/root.pem"]}}
    assert "rewrite" in result["modules"]


def test_absent_site_removes_its_vhost_and_the_files_no_present_site_uses():
    result = make_plan([{"name": "portal", "certificate": "portal"},
                        {"name": "wiki", "certificate": "portal", "state": "absent"},
                        {"name": "old-shop", "certificate": "retired", "state": "absent"}])
    assert [site["name"] for site in result["sites"]] == ["portal"] and result["removed_sites"] == ["wiki", "old-shop"]
    assert result["removals"] == [
        {"path": "/etc/apache2/sites-enabled/certfleet-wiki.conf", "secret": False},
        {"path": "/etc/apache2/sites-available/certfleet-wiki.conf", "secret": False},
        {"path": "/etc/apache2/sites-enabled/certfleet-old-shop.conf", "secret": False},
        {"path": "/etc/apache2/sites-available/certfleet-old-shop.conf", "secret": False},
        # "portal" is still served by the portal site: only the retired certificate's files go
        {"path": "/etc/ssl/private/certfleet-retired.key", "secret": True},
        {"path": "/etc/ssl/certfleet/certfleet-retired.fullchain.pem", "secret": False},
    ]
    assert [target["name"] for target in result["check_targets"]] == ["portal"]
    older = make_plan([{"name": "old-shop", "certificate": "retired", "state": "absent"}], fullchain=False)
    assert [item["path"] for item in older["removals"]][-2:] == [
        "/etc/ssl/certfleet/certfleet-retired.pem", "/etc/ssl/certfleet/certfleet-retired.chain.pem"]
    assert older["sites"] == [] and older["listen_ports"] == [] and older["certificates"] == []


def test_plan_on_windows_keeps_backslashes():
    result = make_plan([{"name": "shop", "certificate": "shop"}], platform=WINDOWS)
    assert result["certificates"][0]["key_path"] == "C:\\Apache\\conf\\ssl\\certfleet-shop.key"


@pytest.mark.parametrize(("sites", "message"), [
    ("portal", "must be a list"),
    ([{"name": "Portal!", "certificate": "portal"}], "name must match"),
    ([{"name": "portal"}], "certificate .* is required"),
    ([{"name": "x", "certificate": "unknown"}], "server_name is not set and certificate unknown"),
    ([{"name": "x", "certificate": "portal", "port": 70000}], "between 1 and 65535"),
    ([{"name": "x", "certificate": "portal", "port": "https"}], "must be a port number"),
    ([{"name": "x", "certificate": "portal", "hsts": "maybe"}], "hsts must be true or false"),
    ([{"name": "x", "certificate": "portal", "server_name": "bad name"}], "server_name must be a DNS name"),
    ([{"name": "x", "certificate": "portal", "extra_directives": "Header set X 1"}], "extra_directives must be a list"),
    ([{"name": "x", "certificate": "portal", "extra_directives": ["A\nB"]}], "no newlines"),
    ([{"name": "x", "certificate": "portal", "sever_name": "typo"}], "unknown keys sever_name"),
    ([{"name": "x", "certificate": "portal"}, {"name": "x", "certificate": "shop"}], "listed twice"),
    ([{"name": "x", "certificate": "portal"}, {"name": "x", "certificate": "portal", "state": "absent"}], "listed twice"),
    ([{"name": "x", "certificate": "portal", "state": "gone"}], "state must be present or absent"),
    ([{"name": "x", "certificate": "portal"}, {"name": "y", "certificate": "portal"}], "both serve portal.example.intra on port 443"),
])
def test_plan_rejects_bad_sites_with_the_site_and_key(sites, message):
    with pytest.raises(CertfleetError, match=message):
        make_plan(sites)


def test_plan_rejects_unknown_key_handling():
    with pytest.raises(CertfleetError, match="decrypt or passphrase_helper"):
        make_plan([], key_handling="plain")


def endpoint(**overrides):
    result = {"name": "portal", "host": "10.0.0.5", "port": 443, "server_name": "portal.example.intra", "outcome": "ok",
              "matches_expected": True, "chain_complete": True, "chain_order_ok": True, "trusted": True, "hostname_ok": True,
              "days_left": 90, "sha256": "AB:CD", "subject": "CN=portal.example.intra", "checks": {}}
    result.update(overrides)
    return result


def test_deploy_check_passes_a_correct_site():
    (row,) = _apache.deploy_check([endpoint()])
    assert row["ok"] is True and row["problems"] == [] and row["site"] == "portal" and row["sha256"] == "AB:CD"


@pytest.mark.parametrize(("overrides", "problem"), [
    ({"outcome": "refused", "outcome_message": "connection refused"}, "no TLS handshake: connection refused"),
    ({"matches_expected": False}, "not the certificate in the store"),
    ({"chain_complete": False, "checks": {"chain_complete": {"status": "critical", "message": "missing intermediate X"}}},
     "missing intermediate X"),
    ({"chain_order_ok": False}, "out of order"),
    ({"trusted": False}, "not trusted"),
    ({"hostname_ok": False}, "does not match"),
    ({"days_left": 3}, "3 days left"),
])
def test_deploy_check_names_each_problem(overrides, problem):
    (row,) = _apache.deploy_check([endpoint(**overrides)], min_days=10)
    assert row["ok"] is False
    assert any(problem in text for text in row["problems"])


def test_deploy_check_accepts_unchecked_trust():
    (row,) = _apache.deploy_check([endpoint(trusted=None, hostname_ok=None)])
    assert row["ok"] is True


def test_apache_error_prefers_ah_codes_and_emerg_lines():
    text = ("Action 'configtest' failed.\nThe Apache error log may have more information.\n"
            "AH00526: Syntax error on line 30 of /etc/apache2/sites-enabled/certfleet-portal.conf:\n"
            "Invalid command 'Bogus', perhaps misspelled\n")
    assert _apache.apache_error(text) == ("Action 'configtest' failed. | The Apache error log may have more information. | "
                                          "AH00526: Syntax error on line 30 of /etc/apache2/sites-enabled/certfleet-portal.conf: | "
                                          "Invalid command 'Bogus', perhaps misspelled")
    assert _apache.apache_error("just text\n") == "just text"


DEBIAN_RELEASE = 'PRETTY_NAME="Debian GNU/Linux 12 (bookworm)"\nNAME="Debian GNU/Linux"\nVERSION_ID="12"\nID=debian\n'


def test_host_state_of_a_debian_host_with_apache_running():
    probe = (DEBIAN_RELEASE + "#certfleet-apache-state\nbinary=apache2\nversion=Server version: Apache/2.4.62 (Debian)\n"
             "mod_ssl=/usr/lib/apache2/modules/mod_ssl.so\nmodule=ssl\nmodule=socache_shmcb\n"
             "service=apache2 active enabled\nservice=httpd inactive \n")
    state = _apache.parse_host_state(probe)
    assert state["platform"]["os_family"] == "Debian" and state["platform"]["distribution_major_version"] == "12"
    assert (state["binary"], state["version"], state["mod_ssl"]) == ("apache2", "2.4.62", True)
    assert state["enabled_modules"] == ["ssl", "socache_shmcb"]
    assert state["services"] == {"apache2": {"active": True, "enabled": True}, "httpd": {"active": False, "enabled": False}}
    assert state["passphrase_helper_files"] == []


def test_host_state_lists_what_a_passphrase_helper_left():
    probe = (DEBIAN_RELEASE + "#certfleet-apache-state\nbinary=apache2\npassphrase_helper_file=/usr/local/sbin/certfleet-passphrase\n"
             "passphrase_helper_file=/etc/ssl/private/certfleet-passphrase\n")
    assert _apache.parse_host_state(probe)["passphrase_helper_files"] == [
        "/usr/local/sbin/certfleet-passphrase", "/etc/ssl/private/certfleet-passphrase"]


def test_host_state_before_apache_is_installed():
    probe = DEBIAN_RELEASE + "#certfleet-apache-state\nservice=apache2 inactive \n"
    state = _apache.parse_host_state(probe)
    assert (state["binary"], state["version"], state["mod_ssl"], state["enabled_modules"]) == ("", "", False, [])
    assert state["services"]["apache2"] == {"active": False, "enabled": False}


def test_host_state_of_a_stopped_service_and_unreadable_version():
    probe = (DEBIAN_RELEASE + "#certfleet-apache-state\nbinary=apache2\nversion=apache2: bad user name ${APACHE_RUN_USER}\n"
             "service=apache2 failed enabled\n")
    state = _apache.parse_host_state(probe)
    assert state["version"] == "" and state["services"]["apache2"] == {"active": False, "enabled": True}


def test_host_state_needs_the_probe_marker():
    with pytest.raises(CertfleetError, match="printed no Apache state"):
        _apache.parse_host_state(DEBIAN_RELEASE)


def test_the_roles_probe_script_runs_in_sh_and_parses_on_this_debian_machine():
    """The real script of roles/apache_ssl/vars/main.yml on this machine (Debian 12 with apache2, see setup.sh)."""
    import subprocess  # pylint: disable=import-outside-toplevel
    from pathlib import Path  # pylint: disable=import-outside-toplevel

    import yaml  # pylint: disable=import-outside-toplevel

    role_vars = Path(_apache.__file__).resolve().parents[3] / "roles" / "apache_ssl" / "vars" / "main.yml"
    script = yaml.safe_load(role_vars.read_text())["__apache_ssl_probe_script"]
    done = subprocess.run(["sh", "-c", script], capture_output=True, text=True, timeout=30, check=True)
    state = _apache.parse_host_state(done.stdout)
    assert state["platform"]["os_family"] == "Debian"
    assert state["binary"] == "apache2" and _apache.uses_fullchain(state["version"]) and state["mod_ssl"]
    import shutil  # pylint: disable=import-outside-toplevel
    assert ("apache2" in state["services"]) == (shutil.which("systemctl") is not None)


def test_deploy_payload_names_the_templates_and_links_of_every_site():
    result = make_plan([{"name": "portal", "certificate": "portal"},
                        {"name": "old-shop", "certificate": "retired", "state": "absent"}])
    payload = _apache.deploy_payload(result, conf_file="/etc/apache2/conf-available/certfleet.conf",
                                     conf_link="/etc/apache2/conf-enabled/certfleet.conf", helper="/usr/local/sbin/helper")
    (portal, conf) = payload["files"]
    assert portal == {"path": "/etc/apache2/sites-available/certfleet-portal.conf", "template": "vhost.conf.j2",
                      "template_vars": {"site": result["sites"][0]}, "mode": "0644", "owner": "root", "group": "root"}
    assert conf == {"path": "/etc/apache2/conf-available/certfleet.conf", "template": "certfleet.conf.j2",
                    "mode": "0644", "owner": "root", "group": "root"}
    assert payload["links"] == [
        {"path": "/etc/apache2/sites-enabled/certfleet-portal.conf", "src": "/etc/apache2/sites-available/certfleet-portal.conf"},
        {"path": "/etc/apache2/conf-enabled/certfleet.conf", "src": "/etc/apache2/conf-available/certfleet.conf"}]
    assert payload["absent"] == result["removals"] and payload["absent"][0]["path"].endswith("certfleet-old-shop.conf")


def test_deploy_payload_with_the_passphrase_helper_and_without_links():
    result = make_plan([{"name": "portal", "certificate": "portal"}], key_handling="passphrase_helper",
                       platform=dict(DEBIAN, vhost_enabled_dir=""))
    payload = _apache.deploy_payload(result, conf_file="/etc/httpd/conf.d/certfleet.conf", helper="/usr/local/sbin/helper")
    assert payload["files"][-1] == {"path": "/usr/local/sbin/helper", "template": "passphrase-helper.sh.j2", "mode": "0700",
                                    "owner": "root", "group": "root"}
    assert payload["links"] == []
    with pytest.raises(CertfleetError, match="helper's path"):
        _apache.deploy_payload(result, conf_file="/etc/httpd/conf.d/certfleet.conf")


def test_plan_paths_of_the_store_come_from_its_layout():
    result = make_plan([{"name": "portal", "certificate": "portal"}], store_path="/srv/store")
    assert result["check_targets"][0]["expected_certificate"] == "/srv/store/certs/portal/fullchain.pem"
    assert result["trusted_ca_sets"]["private_ca_intra"]["certificates"] == ["/srv/store/ca/intra/root.pem"]
    with pytest.raises(CertfleetError, match="site x: certificate '../etc'"):
        make_plan([{"name": "x", "certificate": "../etc", "server_name": "x.example.intra"}])


@pytest.mark.parametrize(("result", "log", "expected"), [
    ({"rc": 1, "stderr": "AH00526: Syntax error on line 3 of x.conf:\nInvalid command 'Bogus'\n", "stdout": "",
      "msg": "non-zero return code"}, "",
     "Test the whole Apache configuration before any reload: AH00526: Syntax error on line 3 of x.conf: | Invalid command 'Bogus'"),
    ({"msg": "Unable to reload service apache2"}, "[ssl:emerg] AH02572: Failed to configure at least one certificate\n",
     "Test the whole Apache configuration before any reload: Unable to reload service apache2"
     " - Apache: [ssl:emerg] AH02572: Failed to configure at least one certificate"),
    ({"rc": 1, "stderr": "", "stdout": "", "msg": "non-zero return code"}, "",
     "Test the whole Apache configuration before any reload: non-zero return code"),
    ({}, "", "Test the whole Apache configuration before any reload: failed"),
])
def test_describe_failure_prefers_apaches_own_words(result, log, expected):
    assert _apache.describe_failure("Test the whole Apache configuration before any reload", result, error_log=log) == expected
