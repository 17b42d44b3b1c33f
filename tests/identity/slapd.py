"""A private OpenLDAP server for the LDAP login tests: Debian's ``slapd`` on a free port.

The configuration is generated into a temporary folder (``cn=config`` loaded with
``slapadd -n0``): one mdb database for ``dc=gov,dc=test``, the ``memberof`` overlay (a
user's groups in its own entry, as ``cloudmgr.identity.ldap`` reads them) and the
``ppolicy`` overlay (an account locked with ``pwdAccountLockedTime``; ``olcPPolicyUseLockout``
so that a bind with the password-policy control is told "accountLocked").  Users and groups
are added over LDAP with ``ldapadd`` as the directory's root, after the server answers.

A missing ``slapd`` is a failure, never a skip: ``make system-deps`` installs it.
"""

from __future__ import annotations

import shutil
import socket
import subprocess
import time
from dataclasses import dataclass, field
from pathlib import Path

SLAPD = Path("/usr/sbin/slapd")
SLAPADD = Path("/usr/sbin/slapadd")
SCHEMA_DIR = Path("/etc/ldap/schema")
MODULE_DIR = Path("/usr/lib/ldap")

SUFFIX = "dc=gov,dc=test"
ROOT_DN = f"cn=admin,{SUFFIX}"
ROOT_PASSWORD = "slapd-test-root"
PEOPLE = f"ou=people,{SUFFIX}"
GROUPS = f"ou=groups,{SUFFIX}"
POLICY_DN = f"cn=default,ou=policies,{SUFFIX}"
START_TIMEOUT_SECONDS = 30.0


def _config_ldif(folder: Path) -> str:
    schemas = "\n".join(
        f"include: file://{SCHEMA_DIR / name}" for name in ("core.ldif", "cosine.ldif", "inetorgperson.ldif")
    )
    return f"""\
dn: cn=config
objectClass: olcGlobal
cn: config
olcPidFile: {folder / "slapd.pid"}
olcArgsFile: {folder / "slapd.args"}

dn: cn=module{{0}},cn=config
objectClass: olcModuleList
cn: module{{0}}
olcModulePath: {MODULE_DIR}
olcModuleLoad: back_mdb
olcModuleLoad: memberof
olcModuleLoad: ppolicy

dn: cn=schema,cn=config
objectClass: olcSchemaConfig
cn: schema

{schemas}

dn: olcDatabase={{-1}}frontend,cn=config
objectClass: olcDatabaseConfig
objectClass: olcFrontendConfig
olcDatabase: {{-1}}frontend

dn: olcDatabase={{0}}config,cn=config
objectClass: olcDatabaseConfig
olcDatabase: {{0}}config
olcAccess: {{0}}to * by * none

dn: olcDatabase={{1}}mdb,cn=config
objectClass: olcDatabaseConfig
objectClass: olcMdbConfig
olcDatabase: {{1}}mdb
olcSuffix: {SUFFIX}
olcRootDN: {ROOT_DN}
olcRootPW: {ROOT_PASSWORD}
olcDbDirectory: {folder / "data"}
olcDbIndex: objectClass eq
olcDbIndex: uid eq
olcAccess: {{0}}to attrs=userPassword by self write by anonymous auth by * none
olcAccess: {{1}}to * by self read by * none

dn: olcOverlay={{0}}memberof,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcMemberOf
olcOverlay: {{0}}memberof
olcMemberOfRefInt: TRUE
olcMemberOfGroupOC: groupOfNames
olcMemberOfMemberAD: member
olcMemberOfMemberOfAD: memberOf

dn: olcOverlay={{1}}ppolicy,olcDatabase={{1}}mdb,cn=config
objectClass: olcOverlayConfig
objectClass: olcPPolicyConfig
olcOverlay: {{1}}ppolicy
olcPPolicyDefault: {POLICY_DN}
olcPPolicyUseLockout: TRUE
"""


BASE_ENTRIES = f"""\
dn: {SUFFIX}
objectClass: dcObject
objectClass: organization
dc: gov
o: Test government

dn: {PEOPLE}
objectClass: organizationalUnit
ou: people

dn: {GROUPS}
objectClass: organizationalUnit
ou: groups

dn: ou=policies,{SUFFIX}
objectClass: organizationalUnit
ou: policies

dn: {POLICY_DN}
objectClass: organizationalRole
objectClass: pwdPolicy
cn: default
pwdAttribute: userPassword
pwdLockout: TRUE
pwdMaxFailure: 0
"""


@dataclass
class Slapd:
    """A running slapd: its URL, and ldapadd/ldapmodify as the directory's root."""

    folder: Path
    port: int
    process: subprocess.Popen[bytes] | None = field(default=None, repr=False)

    @property
    def url(self) -> str:
        return f"ldap://127.0.0.1:{self.port}"

    def _ldap_tool(self, tool: str, ldif: str) -> None:
        result = subprocess.run(
            [tool, "-x", "-H", self.url, "-D", ROOT_DN, "-w", ROOT_PASSWORD],
            input=ldif.encode(),
            capture_output=True,
            check=False,
            timeout=60,
        )
        if result.returncode != 0:
            raise RuntimeError(f"{tool} failed ({result.returncode}): {result.stderr.decode(errors='replace')}")

    def add(self, ldif: str) -> None:
        self._ldap_tool("ldapadd", ldif)

    def modify(self, ldif: str) -> None:
        self._ldap_tool("ldapmodify", ldif)

    def stop(self) -> None:
        if self.process is not None and self.process.poll() is None:
            self.process.terminate()
            try:
                self.process.wait(timeout=20)
            except subprocess.TimeoutExpired:
                self.process.kill()
                self.process.wait(timeout=20)


def _free_port() -> int:
    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        return int(probe.getsockname()[1])


def _answers(port: int) -> bool:
    try:
        with socket.create_connection(("127.0.0.1", port), timeout=1):
            return True
    except OSError:
        return False


def start_slapd(folder: Path) -> Slapd:
    """Generate the configuration in ``folder``, start slapd in the foreground and wait for it."""
    missing = [str(p) for p in (SLAPD, SLAPADD) if not p.exists()] + [
        tool for tool in ("ldapadd", "ldapmodify") if shutil.which(tool) is None
    ]
    if missing:
        raise RuntimeError(
            f"the LDAP tests need Debian's slapd and ldap-utils (missing: {', '.join(missing)}): run make system-deps"
        )
    config_dir = folder / "slapd.d"
    config_dir.mkdir(parents=True)
    (folder / "data").mkdir()
    config = folder / "config.ldif"
    config.write_text(_config_ldif(folder), encoding="utf-8")
    loaded = subprocess.run(
        [str(SLAPADD), "-n0", "-F", str(config_dir), "-l", str(config)],
        capture_output=True,
        check=False,
        timeout=60,
    )
    if loaded.returncode != 0:
        raise RuntimeError(f"slapadd -n0 failed: {loaded.stderr.decode(errors='replace')}")
    port = _free_port()
    log = (folder / "slapd.log").open("wb")
    # -d 0: stay in the foreground (no fork), so the test owns the process and can stop it.
    process = subprocess.Popen(
        [str(SLAPD), "-d", "0", "-h", f"ldap://127.0.0.1:{port}/", "-F", str(config_dir)],
        stdout=log,
        stderr=subprocess.STDOUT,
    )
    log.close()
    server = Slapd(folder=folder, port=port, process=process)
    deadline = time.monotonic() + START_TIMEOUT_SECONDS
    while not _answers(port):
        if process.poll() is not None or time.monotonic() > deadline:
            server.stop()
            output = (folder / "slapd.log").read_text(encoding="utf-8", errors="replace")
            raise RuntimeError(f"slapd did not start on port {port}:\n{output[-4000:]}")
        time.sleep(0.1)
    server.add(BASE_ENTRIES)
    return server
