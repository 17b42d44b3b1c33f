"""Real hosts for the runbook tests: Linux network namespaces with their own sshd.

Each host is a network namespace joined to a bridge in the root namespace (a small LAN,
``10.231.0.0/24``) and runs a real ``sshd`` with its own configuration, host key and
authorized key, all generated into a temporary directory.  Ansible reaches the hosts over
ssh exactly as it would reach a server room's machines.

The namespaces share the root file system, so every host gets its own data directory
(``<root>/srv/<host>/``) through its host variables; the application "service" of a host
is a small HTTP server started by the playbooks inside the namespace, so "the source still
serves" is checked over the network.

Requires root and iproute2 + openssh-server (``make system-deps``).  Set-up failures raise:
the tests fail, never skip.  Leftovers of a killed earlier run (namespaces, the bridge,
processes inside the namespaces) are removed before the set-up and after the tear-down.
"""

from __future__ import annotations

import contextlib
import fcntl
import os
import shutil
import signal
import socket
import subprocess
import time
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any

PREFIX = "cmrb"
BRIDGE = f"{PREFIX}0"
NETWORK = "10.231.0"
BRIDGE_ADDRESS = f"{NETWORK}.1"
SERVICE_ADDRESS = f"{NETWORK}.100"
SERVICE_PORT = 8080
LOCK_FILE = Path("/run/cloudmgr-runbook-testhosts.lock")
HOSTS = {"source": 11, "target": 12}  # name → last octet


class NetnsHostError(RuntimeError):
    pass


def _run(*argv: str, check: bool = True) -> subprocess.CompletedProcess[str]:
    result = subprocess.run(argv, capture_output=True, text=True, timeout=30)
    if check and result.returncode != 0:
        raise NetnsHostError(f"{' '.join(argv)} failed ({result.returncode}): {result.stderr.strip()}")
    return result


@dataclass
class NetnsHost:
    name: str
    netns: str
    address: str
    data_dir: Path
    state_dir: Path
    sshd: subprocess.Popen[bytes] | None = None
    # The services the tests started here as our children: reaped when they are stopped.
    services: list[subprocess.Popen[bytes]] = field(default_factory=list)

    def stop_services(self) -> None:
        """Kill the services the tests started here and reap them (no zombie, no
        "subprocess is still running" when the Popen is collected)."""
        for proc in self.services:
            if proc.poll() is None:
                proc.kill()
            proc.wait(timeout=10)
        self.services.clear()

    def ansible_vars(self, key_file: Path) -> dict[str, Any]:
        return {
            "ansible_host": self.address,
            "ansible_user": "root",
            "ansible_ssh_private_key_file": str(key_file),
            "ansible_ssh_common_args": "-o StrictHostKeyChecking=no -o UserKnownHostsFile=/dev/null",
            "ansible_python_interpreter": "/usr/bin/python3",
            "app_data_dir": str(self.data_dir),
            "app_state_dir": str(self.state_dir),
            "service_interface": "eth0",
        }


@dataclass
class NetnsHosts:
    root: Path
    key_file: Path
    hosts: dict[str, NetnsHost] = field(default_factory=dict)

    @property
    def source(self) -> NetnsHost:
        return self.hosts["source"]

    @property
    def target(self) -> NetnsHost:
        return self.hosts["target"]

    def service_url(self, path: str = "") -> str:
        return f"http://{SERVICE_ADDRESS}:{SERVICE_PORT}/{path}"


def cleanup() -> None:
    """Remove every namespace, process and link a (possibly killed) earlier run left behind."""
    listed = _run("ip", "netns", "list", check=False).stdout.split()
    for name in listed:
        if not name.startswith(f"{PREFIX}-"):
            continue
        for pid in _run("ip", "netns", "pids", name, check=False).stdout.split():
            with contextlib.suppress(ProcessLookupError, ValueError):
                os.kill(int(pid), signal.SIGKILL)
        _run("ip", "netns", "del", name, check=False)
    links = _run("ip", "-o", "link", "show", check=False).stdout
    for line in links.splitlines():
        parts = line.split(":")
        if len(parts) > 1:
            link = parts[1].strip().split("@")[0]
            if link == BRIDGE or link.startswith(f"{PREFIX}-"):
                _run("ip", "link", "del", link, check=False)


def _wait_for_ssh(address: str, sshd: subprocess.Popen[bytes], log: Path, timeout: float = 20.0) -> None:
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if sshd.poll() is not None:
            raise NetnsHostError(f"sshd on {address} exited: {log.read_text(errors='replace')[-2000:]}")
        try:
            with socket.create_connection((address, 22), timeout=1) as conn:
                conn.settimeout(2)
                if conn.recv(64).startswith(b"SSH-"):
                    return
        except OSError:
            time.sleep(0.1)
    raise NetnsHostError(f"sshd on {address} does not answer after {timeout:.0f} s")


def _sshd_config(host_dir: Path, address: str) -> Path:
    config = host_dir / "sshd_config"
    config.write_text(
        "\n".join(
            [
                "Port 22",
                f"ListenAddress {address}",
                f"HostKey {host_dir / 'ssh_host_ed25519_key'}",
                f"PidFile {host_dir / 'sshd.pid'}",
                f"AuthorizedKeysFile {host_dir / 'authorized_keys'}",
                "PermitRootLogin prohibit-password",
                "PubkeyAuthentication yes",
                "PasswordAuthentication no",
                "KbdInteractiveAuthentication no",
                "UsePAM no",
                "StrictModes no",
                "UseDNS no",
                "MaxStartups 50",
                "Subsystem sftp internal-sftp",
                "",
            ]
        )
    )
    return config


def _start_host(hosts: NetnsHosts, name: str, octet: int, client_pub: str) -> NetnsHost:
    netns = f"{PREFIX}-{name}"
    address = f"{NETWORK}.{octet}"
    host_side, ns_side = f"{PREFIX}-{name[:3]}-h", f"{PREFIX}-{name[:3]}-n"
    _run("ip", "netns", "add", netns)
    _run("ip", "link", "add", host_side, "type", "veth", "peer", "name", ns_side)
    _run("ip", "link", "set", host_side, "master", BRIDGE)
    _run("ip", "link", "set", host_side, "up")
    _run("ip", "link", "set", ns_side, "netns", netns)
    _run("ip", "-n", netns, "link", "set", ns_side, "name", "eth0")
    _run("ip", "-n", netns, "addr", "add", f"{address}/24", "dev", "eth0")
    _run("ip", "-n", netns, "link", "set", "eth0", "up")
    _run("ip", "-n", netns, "link", "set", "lo", "up")

    host_dir = hosts.root / "hosts" / name
    host_dir.mkdir(parents=True)
    _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-f", str(host_dir / "ssh_host_ed25519_key"))
    (host_dir / "authorized_keys").write_text(client_pub)
    config = _sshd_config(host_dir, address)
    log = host_dir / "sshd.log"
    sshd = subprocess.Popen(
        ["ip", "netns", "exec", netns, "/usr/sbin/sshd", "-D", "-f", str(config), "-E", str(log)],
        stdin=subprocess.DEVNULL,
        stdout=subprocess.DEVNULL,
        stderr=subprocess.DEVNULL,
    )
    host = NetnsHost(
        name=name,
        netns=netns,
        address=address,
        data_dir=hosts.root / "srv" / name / "app",
        state_dir=hosts.root / "srv" / name / "state",
        sshd=sshd,
    )
    hosts.hosts[name] = host
    _wait_for_ssh(address, sshd, log)
    return host


@contextmanager
def running_hosts(root: Path) -> Iterator[NetnsHosts]:
    """The legacy source and the cloud target, each a namespace with sshd; torn down after."""
    if os.geteuid() != 0:
        raise NetnsHostError("the runbook test hosts need root (network namespaces, sshd)")
    for tool in ("ip", "ssh-keygen", "rsync"):
        if shutil.which(tool) is None:
            raise NetnsHostError(f"{tool} is missing: run `make system-deps`")
    if not Path("/usr/sbin/sshd").exists():
        raise NetnsHostError("/usr/sbin/sshd is missing: run `make system-deps` (openssh-server)")
    LOCK_FILE.parent.mkdir(parents=True, exist_ok=True)
    with open(LOCK_FILE, "w") as lock:
        # Another pytest session on this machine waits here rather than tearing ours down.
        fcntl.flock(lock, fcntl.LOCK_EX)
        cleanup()
        Path("/run/sshd").mkdir(mode=0o755, exist_ok=True)  # sshd's privilege-separation directory
        root.mkdir(parents=True, exist_ok=True)
        key_file = root / "id_ed25519"
        _run("ssh-keygen", "-q", "-t", "ed25519", "-N", "", "-C", "cloudmgr-runbook-tests", "-f", str(key_file))
        hosts = NetnsHosts(root=root, key_file=key_file)
        try:
            _run("ip", "link", "add", BRIDGE, "type", "bridge")
            _run("ip", "addr", "add", f"{BRIDGE_ADDRESS}/24", "dev", BRIDGE)
            _run("ip", "link", "set", BRIDGE, "up")
            client_pub = (root / "id_ed25519.pub").read_text()
            for name, octet in HOSTS.items():
                _start_host(hosts, name, octet, client_pub)
            yield hosts
        finally:
            for host in hosts.hosts.values():
                if host.sshd is not None and host.sshd.poll() is None:
                    host.sshd.terminate()
                    try:
                        host.sshd.wait(timeout=5)
                    except subprocess.TimeoutExpired:
                        host.sshd.kill()
                        host.sshd.wait(timeout=5)
                host.stop_services()
            cleanup()


def _app_service_code() -> tuple[str, str]:
    """The HTTP server of the playbooks' ``app_service`` module (one implementation)."""
    import importlib.util

    from cloudmgr.automation.runner import PLAYBOOKS_DIR

    spec = importlib.util.spec_from_file_location("_app_service", PLAYBOOKS_DIR / "library" / "app_service.py")
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return str(module.SERVER), str(module.MARKER)


def start_legacy_service(hosts: NetnsHosts, served_by: str, name: str = "app") -> None:
    """The legacy source as found in its server room: holding the service address and serving."""
    source = hosts.source
    server, marker = _app_service_code()
    source.state_dir.mkdir(parents=True, exist_ok=True)
    _run("ip", "-n", source.netns, "addr", "add", f"{SERVICE_ADDRESS}/24", "dev", "eth0")
    # The address may have lived on the target before (an earlier test cut over): forget its old
    # MAC here, as a gratuitous ARP would make the LAN do.
    _run("ip", "neigh", "flush", "to", SERVICE_ADDRESS, check=False)
    log = open(source.state_dir / f"{name}.log", "ab")  # noqa: SIM115 (the child keeps it)
    proc = subprocess.Popen(
        [
            "ip",
            "netns",
            "exec",
            source.netns,
            "/usr/bin/python3",
            "-c",
            server,
            f"{marker}:{name}",
            str(source.data_dir),
            "0.0.0.0",
            str(SERVICE_PORT),
            served_by,
        ],
        stdin=subprocess.DEVNULL,
        stdout=log,
        stderr=log,
        start_new_session=True,
    )
    log.close()
    source.services.append(proc)
    # `ip netns exec` execs the command: the pid is the server's own.
    (source.state_dir / f"{name}.pid").write_text(str(proc.pid))
    deadline = time.monotonic() + 10
    while time.monotonic() < deadline:
        try:
            with socket.create_connection((SERVICE_ADDRESS, SERVICE_PORT), timeout=0.5):
                return
        except OSError:
            time.sleep(0.05)
    raise NetnsHostError("the legacy service does not answer")
