"""``cloudmgr runbook …`` (in process, against the test database)."""

from __future__ import annotations

import json

from cloudmgr.runtime import Runtime
from tests.runbooks.conftest import add_system
from tests.test_cli import run_in_process


def test_configure_show_and_refusals(seeded: Runtime) -> None:
    with seeded.db.unit_of_work() as uow:
        add_system(uow.session, "edu-web-12", ansible_host="192.0.2.12")
        add_system(uow.session, "edu-secret-02", ansible_host="192.0.2.13", classification="classified", state="legacy")
    result = run_in_process(
        seeded,
        "runbook",
        "configure",
        "edu-web-12",
        "--target-host",
        "192.0.2.120",
        "--service-address",
        "192.0.2.100",
        "--var",
        "service_port=8081",
        "--source-var",
        "app_data_dir=/srv/licences",
    )
    assert result.exit_code == 0, result.output
    shown = json.loads(result.output)
    assert shown["target_host"] == "192.0.2.120" and shown["vars"] == {"service_port": 8081}
    assert shown["source_vars"] == {"app_data_dir": "/srv/licences"}

    bad = run_in_process(seeded, "runbook", "configure", "edu-web-12", "--var", "no-value")
    assert bad.exit_code == 2 and "expected KEY=VALUE" in bad.output

    shown_runs = run_in_process(seeded, "runbook", "show", "edu-web-12")
    assert shown_runs.exit_code == 0 and shown_runs.output.startswith("edu-web-12: planned")

    unknown = run_in_process(seeded, "runbook", "run", "nope-01", "precheck")
    assert unknown.exit_code == 1 and "no legacy system 'nope-01'" in unknown.output
    # a step that may not run in the system's state is refused before Ansible starts
    refused = run_in_process(seeded, "runbook", "run", "edu-web-12", "decommission")
    assert refused.exit_code == 1 and "decommission cannot run while edu-web-12 is planned" in refused.output
    bad_step = run_in_process(seeded, "runbook", "run", "edu-web-12", "reboot")
    assert bad_step.exit_code == 2 and "Invalid value" in bad_step.output
