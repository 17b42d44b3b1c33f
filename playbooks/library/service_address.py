#!/usr/bin/python
"""Ansible module: the service address (a floating IPv4 address) on a host's interface.

``state=present`` adds the address unless the interface has it, then announces it with
gratuitous ARP so the LAN's neighbour caches follow it at once; ``state=absent`` removes
it.  ``changed`` says whether the address moved.

With ``record_dir`` (the province demo's hosts, which are directories: cloudmgr.runbooks.demo_hosts)
the address is recorded in ``record_dir/service_address`` instead: adding an address to an
interface needs root, and the demo runs without it.
"""

from __future__ import annotations

import os
import socket
import struct
import time

from ansible.module_utils.basic import AnsibleModule


def _has_address(module: AnsibleModule, interface: str, address: str) -> bool:
    rc, out, err = module.run_command(["ip", "-o", "-4", "addr", "show", "dev", interface])
    if rc != 0:
        module.fail_json(msg=f"cannot read the addresses of {interface}: {err.strip()}")
    return any(part.split("/")[0] == address for line in out.splitlines() for part in line.split())


def _announce(interface: str, address: str, count: int = 3) -> None:
    with open(f"/sys/class/net/{interface}/address") as handle:
        mac = bytes.fromhex(handle.read().strip().replace(":", ""))
    ip = socket.inet_aton(address)
    # Ethernet broadcast, ARP request announcing our own address (sender == target IP).
    frame = (
        b"\xff" * 6
        + mac
        + struct.pack("!H", 0x0806)
        + struct.pack("!HHBBH", 1, 0x0800, 6, 4, 1)
        + mac
        + ip
        + b"\x00" * 6
        + ip
    )
    with socket.socket(socket.AF_PACKET, socket.SOCK_RAW) as sock:
        sock.bind((interface, 0))
        for _ in range(count):
            sock.send(frame)
            time.sleep(0.05)


def _recorded(module: AnsibleModule, record_dir: str, address: str, want: bool) -> None:
    """The demo's service address: a record in the host's state directory (exits the module)."""
    record = os.path.join(record_dir, "service_address")
    try:
        with open(record) as handle:
            has = handle.read().strip() == address
    except FileNotFoundError:
        has = False
    if has != want and not module.check_mode:
        os.makedirs(record_dir, exist_ok=True)
        if want:
            with open(record, "w") as handle:
                handle.write(address + "\n")
        else:
            os.unlink(record)
    module.exit_json(changed=has != want, address=address, recorded_in=record)


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "address": {"type": "str", "required": True},
            "prefix": {"type": "int", "default": 24},
            "interface": {"type": "str", "required": True},
            "state": {"type": "str", "choices": ["present", "absent"], "default": "present"},
            "record_dir": {"type": "path"},
        },
        supports_check_mode=True,
    )
    p = module.params
    if p["record_dir"]:
        _recorded(module, p["record_dir"], p["address"], p["state"] == "present")
    has = _has_address(module, p["interface"], p["address"])
    want = p["state"] == "present"
    if has == want:
        module.exit_json(changed=False, address=p["address"], interface=p["interface"])
    if not module.check_mode:
        verb = "add" if want else "del"
        cidr = f"{p['address']}/{p['prefix']}"
        rc, _out, err = module.run_command(["ip", "addr", verb, cidr, "dev", p["interface"]])
        if rc != 0:
            module.fail_json(msg=f"ip addr {verb} {cidr} dev {p['interface']}: {err.strip()}")
        if want:
            try:
                _announce(p["interface"], p["address"])
            except OSError as exc:
                module.warn(f"gratuitous ARP for {p['address']} failed: {exc}")
    module.exit_json(changed=True, address=p["address"], interface=p["interface"])


if __name__ == "__main__":
    main()
