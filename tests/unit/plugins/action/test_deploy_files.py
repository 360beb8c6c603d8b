"""The deploy_files action renders the files given as templates on the controller (a real ansible-playbook run on localhost)."""
from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest

from collection_link import collections_root

PLAY = """
- hosts: localhost
  connection: local
  gather_facts: false
  vars:
    greeting: hello
  roles:
    - writer
"""

ROLE_TASKS = """
- name: Write two files in one transaction, one rendered from the role's template
  certfleet.tls.deploy_files:
    files:
      - path: "{{ out }}/site.conf"
        template: site.conf.j2
        template_vars:
          site: {name: portal, port: 8443}
      - path: "{{ out }}/plain.txt"
        content: "as it is {{ greeting }}\\n"
    transaction_dir: "{{ out }}/tx"
  register: written

- name: Refuse an entry with both content and template
  certfleet.tls.deploy_files:
    files:
      - path: "{{ out }}/both.conf"
        template: site.conf.j2
        content: x
    transaction_dir: "{{ out }}/tx"
  register: both
  ignore_errors: true

- name: Keep what happened
  ansible.builtin.copy:
    dest: "{{ out }}/result.json"
    content: "{{ {'written': written, 'both': both} | to_json }}"
"""

TEMPLATE = """# {{ ansible_managed }} - {{ site.name }}
<VirtualHost *:{{ site.port }}>
{% if greeting == 'hello' %}
    # the play's variables reach the template too
{% endif %}
</VirtualHost>
"""


@pytest.fixture
def playbook(tmp_path):
    role = tmp_path / "roles" / "writer"
    (role / "tasks").mkdir(parents=True)
    (role / "templates").mkdir()
    (role / "tasks" / "main.yml").write_text(ROLE_TASKS)
    (role / "templates" / "site.conf.j2").write_text(TEMPLATE)
    (tmp_path / "play.yml").write_text(PLAY)
    out = tmp_path / "out"
    out.mkdir()
    env = dict(os.environ, ANSIBLE_COLLECTIONS_PATH=str(collections_root()), ANSIBLE_NOCOLOR="1",
               ANSIBLE_LOCAL_TEMP=str(tmp_path / "ansible-tmp"), ANSIBLE_HOME=str(tmp_path / "ansible-home"))
    binary = Path(sys.executable).parent / "ansible-playbook"
    done = subprocess.run([str(binary), "-i", "localhost,", "play.yml", "-e", f"out={out}",
                           "-e", f"ansible_python_interpreter={sys.executable}"], cwd=tmp_path, env=env,
                          capture_output=True, text=True, timeout=300, check=False)
    assert done.returncode == 0, done.stdout[-3000:] + done.stderr[-3000:]
    return out


def test_template_is_rendered_from_the_role_with_template_vars_and_written_as_text(playbook):
    assert (playbook / "site.conf").read_text() == (
        "# Ansible managed - portal\n<VirtualHost *:8443>\n    # the play's variables reach the template too\n</VirtualHost>\n")
    assert (playbook / "plain.txt").read_text() == "as it is hello\n"
    result = json.loads((playbook / "result.json").read_text())
    assert result["written"]["changed"] is True and len(result["written"]["changed_files"]) == 2
    assert result["both"]["failed"] is True and "content or template, not both" in result["both"]["msg"]
    assert not (playbook / "both.conf").exists()
