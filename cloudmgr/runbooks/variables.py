"""What an operator may configure for a system's runbook, and the shape of each value.

The runbook target (``cloudmgr runbook configure``, :func:`cloudmgr.runbooks.services.configure_target`)
holds the target VM's address, the service address and Ansible variables.  Every value
reaches Ansible and the hosts, so only known variables are accepted, each checked against
its shape (:mod:`cloudmgr.automation.values`): an unknown name is refused too (a variable
such as ``ansible_ssh_common_args=-o ProxyCommand=…`` or ``ansible_connection`` changes how
Ansible runs, and ``verified`` or ``system_hostname`` are cloudmgr's to set).  The same
checks run again on the stored values before each run (:func:`target_problems`), so a
value stored before these rules existed cannot slip through.
"""

from __future__ import annotations

from collections.abc import Callable, Mapping
from typing import Any

from cloudmgr.automation.values import (
    address_problem,
    boolean_problem,
    integer_problem,
    interface_problem,
    ip_problem,
    path_problem,
    port_problem,
    service_name_problem,
    ssh_args_problem,
    user_problem,
)

Check = Callable[[object], str | None]

#: Variables for every host of the run (``--var``).
GROUP_VARIABLES: Mapping[str, Check] = {
    "service_port": port_problem,
    "service_prefix": lambda value: integer_problem(value, 1, 32),
    "app_service_name": service_name_problem,
    "replication_key_file": path_problem,
    "min_free_mb": lambda value: integer_problem(value, 0, 1 << 30),
    "virtio_drivers_ready": boolean_problem,
    "provision_wait_seconds": lambda value: integer_problem(value, 1, 3600),
}
#: Host variables of the source or the target (``--source-var``, ``--target-var``); the
#: address is not one of them: it is the inventory's ``ansible_host`` / ``--target-host``.
HOST_VARIABLES: Mapping[str, Check] = {
    "ansible_user": user_problem,
    "ansible_port": port_problem,
    "ansible_ssh_private_key_file": path_problem,
    "ansible_ssh_common_args": ssh_args_problem,
    "ansible_python_interpreter": path_problem,
    "app_data_dir": path_problem,
    "app_state_dir": path_problem,
    "service_interface": interface_problem,
}


def target_host_problem(value: object) -> str | None:
    """The target VM's address: like the inventory's ``ansible_host``, an IP address or a DNS name."""
    return address_problem(value)


def service_address_problem(value: object) -> str | None:
    """The service address moves between the hosts' interfaces: an IPv4 address."""
    return ip_problem(value, version=4)


def variables_problems(kind: str, variables: Mapping[str, Any], allowed: Mapping[str, Check]) -> list[str]:
    """Every refused variable of ``variables`` as "<kind> <name> <why>"."""
    problems = []
    for name, value in variables.items():
        check = allowed.get(name)
        if check is None:
            problems.append(f"{kind} {name!r} is not a runbook variable (one of {', '.join(sorted(allowed))})")
            continue
        problem = check(value)
        if problem is not None:
            problems.append(f"{kind} {name} {problem}")
    return problems


def target_problems(
    *,
    target_host: str | None = None,
    service_address: str | None = None,
    vars: Mapping[str, Any] | None = None,
    source_vars: Mapping[str, Any] | None = None,
    target_vars: Mapping[str, Any] | None = None,
) -> list[str]:
    """Every problem of a runbook target's settings (empty when all are fine); ``None`` or ''
    addresses are not set and not checked."""
    problems = []
    if target_host:
        problem = target_host_problem(target_host)
        if problem:
            problems.append(f"target host {problem}")
    if service_address:
        problem = service_address_problem(service_address)
        if problem:
            problems.append(f"service address {problem}")
    problems += variables_problems("variable", vars or {}, GROUP_VARIABLES)
    problems += variables_problems("source variable", source_vars or {}, HOST_VARIABLES)
    problems += variables_problems("target variable", target_vars or {}, HOST_VARIABLES)
    return problems
