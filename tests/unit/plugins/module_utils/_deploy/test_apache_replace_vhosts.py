"""apache_ssl_replace_vhosts: only hand-made .conf files directly in the platform's vhost directories are removed."""
from __future__ import annotations

import pytest

from ansible_collections.certfleet.tls.plugins.module_utils._common.x509 import CertfleetError
from ansible_collections.certfleet.tls.plugins.module_utils._deploy import apache

DEBIAN_DIRS = ["/etc/apache2/sites-available", "/etc/apache2/sites-enabled"]


@pytest.mark.parametrize("path", ["/etc/apache2/sites-enabled/www.conf", "/etc/apache2/sites-available/000-default-ssl.conf",
                                  "/etc/apache2/sites-enabled/shop.example.co.jp.conf"])
def test_accepted(path):
    assert apache.replaced_vhosts([path], vhost_dirs=DEBIAN_DIRS) == [{"path": path, "secret": False}]


@pytest.mark.parametrize("path", [
    "/etc/passwd", "/etc/apache2/apache2.conf", "/etc/apache2/sites-enabled/../apache2.conf", "/etc/apache2/sites-enabled/sub/x.conf",
    "/etc/apache2/sites-enabled/certfleet-portal.conf", "/etc/apache2/sites-enabled/www.conf.bak", "sites-enabled/www.conf",
    "/etc/apache2/sites-enabled/.hidden.conf", 7,
])
def test_refused(path):
    with pytest.raises(CertfleetError, match="is not a hand-made vhost file"):
        apache.replaced_vhosts([path], vhost_dirs=DEBIAN_DIRS)


def test_payload_removes_them_with_the_plan_removals():
    plan = {"sites": [], "passphrase_helper": False, "removals": [{"path": "/etc/apache2/sites-enabled/certfleet-old.conf", "secret": False}]}
    payload = apache.deploy_payload(plan, conf_file="/etc/apache2/conf-available/certfleet.conf",
                                    replace_vhosts=["/etc/apache2/sites-enabled/www.conf"], vhost_dirs=DEBIAN_DIRS + [""])
    wanted = ["/etc/apache2/sites-enabled/certfleet-old.conf", "/etc/apache2/sites-enabled/www.conf"]
    assert [item["path"] for item in payload["absent"]] == wanted
    assert apache.deploy_payload(plan, conf_file="/c.conf")["absent"] == plan["removals"]
    with pytest.raises(CertfleetError, match="must be a list"):
        apache.replaced_vhosts("/etc/apache2/sites-enabled/www.conf", vhost_dirs=DEBIAN_DIRS)
