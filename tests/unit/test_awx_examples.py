# Copyright: (c) 2026, certfleet.tls maintainers
# GNU General Public License v3.0+ (see https://www.gnu.org/licenses/gpl-3.0.txt)
"""The AWX examples (docs/awx.md) agree with the role they drive.

Every survey question sets a cert_monitor option (or the certfleet_* variable its default reads),
with an AWX type that converts to the option's type, a default inside the question's bounds, and
choices the option accepts. controller.yml names the survey files and the project playbooks that exist.
"""
from __future__ import annotations

import json

import pytest
import yaml

from collection_link import REPO_ROOT

AWX = REPO_ROOT / "examples" / "awx"
SPECS = yaml.safe_load((REPO_ROOT / "roles" / "cert_monitor" / "meta" / "argument_specs.yml").read_text())["argument_specs"]
SURVEYS = {"survey_monitor.json": "main", "survey_discover.json": "discover"}
# AWX survey type -> the argument_specs types its answer converts to.
AWX_TYPES = {"integer": {"int"}, "float": {"float", "int"}, "multiplechoice": {"str", "bool"},
             "text": {"str", "list"}, "textarea": {"str", "list"}}


def option_of(entry_point: str, variable: str) -> tuple[str, dict]:
    """The role option a survey variable sets: itself, or the option whose default reads it."""
    options = SPECS[entry_point]["options"]
    if variable in options:
        return variable, options[variable]
    readers = [(name, spec) for name, spec in options.items() if f"{variable} |" in str(spec.get("default", ""))]
    assert len(readers) == 1, f"{variable} sets no option of entry point {entry_point}"
    return readers[0]


@pytest.mark.parametrize("survey_file", sorted(SURVEYS))
def test_every_question_sets_a_role_option_of_a_matching_type(survey_file):
    survey = json.loads((AWX / survey_file).read_text())
    assert survey["name"] and survey["spec"]
    for question in survey["spec"]:
        name, option = option_of(SURVEYS[survey_file], question["variable"])
        assert option["type"] in AWX_TYPES[question["type"]], (name, question["type"], option["type"])
        default = question["default"]
        if question["type"] in ("integer", "float"):
            assert question["min"] <= default <= question["max"], name
        elif question["type"] == "multiplechoice":
            assert default in question["choices"], name
            accepted = ["true", "false"] if option["type"] == "bool" else option["choices"]
            assert sorted(question["choices"]) == sorted(accepted), name
        assert question["question_name"] and question["question_description"], name


def test_controller_playbook_uses_the_surveys_and_the_project_playbooks():
    [play] = yaml.safe_load((AWX / "controller.yml").read_text())
    templates = [task["awx.awx.job_template"] for task in play["tasks"] if "awx.awx.job_template" in task]
    assert {template["name"] for template in templates} == {"certfleet monitor", "certfleet discover"}
    for template in templates:
        assert (AWX / "project" / template["playbook"]).exists(), template["playbook"]
        survey = template["survey_spec"].split("'")[3]
        assert survey in SURVEYS and template["survey_enabled"] is True
        imported = yaml.safe_load((AWX / "project" / template["playbook"]).read_text())[0]["ansible.builtin.import_playbook"]
        assert (REPO_ROOT / "playbooks" / (imported.rsplit(".", 1)[1] + ".yml")).exists(), imported
    [schedule] = [task["awx.awx.schedule"] for task in play["tasks"] if "awx.awx.schedule" in task]
    assert schedule["unified_job_template"] == "certfleet monitor" and "FREQ=DAILY" in schedule["rrule"]
