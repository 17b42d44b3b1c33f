"""What a value handed to Ansible may look like: the rules every path checks it by.

The wrapper (:func:`cloudmgr.automation.run_playbook`) marks every value it passes
``!unsafe``, so Ansible never templates it on the controller.  But values also reach the
managed hosts: in ``ssh``'s command line (the address, the user, the port), in file paths,
in commands the playbooks build.  So the values with a shape (an address, a user name, a
port, a path, an interface) are checked against that shape where they come in (the
inventory import, ``cloudmgr runbook configure``) and again before each run, and anything
else is refused with the field named.

Each ``*_problem`` function returns why a value is refused (a phrase to put after the
field's name), or ``None`` when it is fine.
"""

from __future__ import annotations

import ipaddress
import posixpath
import re
from collections.abc import Mapping
from typing import Any

#: An inventory host or group name: it appears in templates (``inventory_hostname``,
#: ``groups[...]``) and host patterns, so only characters with no meaning there.
NAME_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9._-]{0,254}$")
#: A variable name, as Ansible requires it (and nothing a template could hide in).
VARIABLE_NAME_RE = re.compile(r"^[A-Za-z_][A-Za-z0-9_]{0,127}$")

_DNS_LABEL_RE = re.compile(r"^[A-Za-z0-9](?:[A-Za-z0-9-]{0,61}[A-Za-z0-9])?$")
_POSIX_USER_RE = re.compile(r"^[a-z_][a-z0-9_-]{0,31}$")
_PATH_RE = re.compile(r"^/[A-Za-z0-9._/+-]*$")
_INTERFACE_RE = re.compile(r"^[A-Za-z0-9][A-Za-z0-9_.-]{0,14}$")
_SERVICE_NAME_RE = re.compile(r"^[a-z0-9][a-z0-9_-]{0,63}$")
_SSH_OPTION_VALUE_RE = re.compile(r"^[A-Za-z0-9_./+-]{1,255}$")
#: ``ssh -o`` options a host may set: none of them runs a command (ProxyCommand,
#: LocalCommand, KnownHostsCommand, Match exec … are refused).
SSH_OPTIONS = frozenset(
    {
        "batchmode",
        "connecttimeout",
        "identitiesonly",
        "loglevel",
        "serveralivecountmax",
        "serveraliveinterval",
        "stricthostkeychecking",
        "userknownhostsfile",
    }
)
MAX_PATH = 1024


def shown(value: object, limit: int = 80) -> str:
    """The refused value as a message shows it: quoted, control characters escaped, short."""
    text = repr(value)
    return text if len(text) <= limit else text[: limit - 1] + "…"


def is_dns_name(value: str) -> bool:
    """An RFC 1123 host name: dot-separated labels of letters, digits and inner '-'; the last
    label not all digits (that would be a mistyped IPv4 address)."""
    name = value[:-1] if value.endswith(".") else value
    if not name or len(name) > 253:
        return False
    labels = name.split(".")
    return all(_DNS_LABEL_RE.match(label) for label in labels) and not labels[-1].isdigit()


def ip_problem(value: object, *, version: int | None = None) -> str | None:
    if not isinstance(value, str):
        return f"must be an IP address, not {shown(value)}"
    try:
        address = ipaddress.ip_address(value)
    except ValueError:
        return f"must be an IP address, not {shown(value)}"
    if version is not None and address.version != version:
        return f"must be an IPv{version} address, not {shown(value)}"
    return None


def address_problem(value: object) -> str | None:
    """An address Ansible reaches a host on: an IP address or a DNS name."""
    if isinstance(value, str) and (ip_problem(value) is None or is_dns_name(value)):
        return None
    return f"must be an IP address or a DNS name (letters, digits, '-' and '.'), not {shown(value)}"


def port_problem(value: object) -> str | None:
    return integer_problem(value, 1, 65535)


def integer_problem(value: object, low: int, high: int) -> str | None:
    if isinstance(value, bool) or not isinstance(value, int):
        return f"must be a whole number from {low} to {high}, not {shown(value)}"
    if not low <= value <= high:
        return f"must be from {low} to {high}, not {value}"
    return None


def boolean_problem(value: object) -> str | None:
    return None if isinstance(value, bool) else f"must be true or false, not {shown(value)}"


def user_problem(value: object) -> str | None:
    """A POSIX user name (lowercase letter or '_' first, then lowercase letters, digits, '_', '-')."""
    if isinstance(value, str) and _POSIX_USER_RE.match(value):
        return None
    return f"must be a user name (a lowercase letter or '_', then up to 31 of a-z, 0-9, '_', '-'), not {shown(value)}"


def path_problem(value: object) -> str | None:
    """An absolute, normalised path of plain characters (letters, digits, '.', '_', '-', '+', '/')."""
    if not isinstance(value, str) or not _PATH_RE.match(value) or len(value) > MAX_PATH:
        return f"must be an absolute path of letters, digits, '.', '_', '-', '+' and '/', not {shown(value)}"
    if posixpath.normpath(value) != value or value.startswith("//"):
        return f"must be a normalised path (no '..', '.', '//' or trailing '/'), not {shown(value)}"
    return None


def interface_problem(value: object) -> str | None:
    if isinstance(value, str) and _INTERFACE_RE.match(value):
        return None
    return f"must be a network interface name (up to 15 letters, digits, '_', '.', '-'), not {shown(value)}"


def service_name_problem(value: object) -> str | None:
    if isinstance(value, str) and _SERVICE_NAME_RE.match(value):
        return None
    return f"must be a service name (lowercase letters, digits, '_', '-'), not {shown(value)}"


def ssh_args_problem(value: object) -> str | None:
    """Extra ssh arguments: only ``-o Name=value`` options of :data:`SSH_OPTIONS`."""
    if not isinstance(value, str):
        return f"must be text, not {shown(value)}"
    tokens = value.split()
    index = 0
    while index < len(tokens):
        word = tokens[index]
        if word == "-o" and index + 1 < len(tokens):
            option = tokens[index + 1]
            index += 2
        elif word.startswith("-o") and len(word) > 2:
            option = word[2:]
            index += 1
        else:
            return f"may only hold '-o Name=value' ssh options, not {shown(word)}"
        name, sep, option_value = option.partition("=")
        if not sep or name.lower() not in SSH_OPTIONS:
            allowed = ", ".join(sorted(SSH_OPTIONS))
            return f"may only set the ssh options {allowed}; not {shown(option)}"
        if not _SSH_OPTION_VALUE_RE.match(option_value):
            return f"option {name} has a value of odd characters: {shown(option_value)}"
        if name.lower() == "userknownhostsfile" and path_problem(option_value) is not None:
            return f"option {name} must be an absolute normalised path, not {shown(option_value)}"
    return None


def connection_problems(host_vars: Mapping[str, Any], ansible_host: str | None) -> list[str]:
    """The problems of an imported host's connection variables, each starting with its field:
    ``ansible_host`` (the stored text) an address, and ``ansible_port`` / ``ansible_user``
    (checked when given) a port and a user name."""
    problems = []
    if ansible_host:
        problem = address_problem(ansible_host)
        if problem:
            problems.append(f"ansible_host {problem}")
    port = host_vars.get("ansible_port")
    if port is not None and port != "":
        if isinstance(port, str) and port.strip().isdigit() and port.strip().isascii():
            port = int(port.strip())
        problem = port_problem(port)
        if problem:
            problems.append(f"ansible_port {problem}")
    user = host_vars.get("ansible_user")
    if user is not None and user != "":
        problem = user_problem(user)
        if problem:
            problems.append(f"ansible_user {problem}")
    return problems
