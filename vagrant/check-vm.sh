#!/usr/bin/env bash
# Checks a provisioned Vagrant VM from the host, end to end:
#   1. cloudmgr's /healthz and /readyz on 127.0.0.1:8080, Keystone on 127.0.0.1:5000;
#   2. through cloudmgr's API: a department user asks for 2 m1.tiny on the education
#      cloud, the department head and an operator approve, the scheduler in the VM
#      provisions them on the VM's Nova (both must be ACTIVE there too), then the user
#      deletes them and they must be gone from Nova.
# The three check accounts (vmcheck-staff, vmcheck-head, vmcheck-operator) are created
# in the VM at the first run; each run issues them fresh one-day tokens.  Run from
# vagrant/ with the same environment as `vagrant up` (CLOUDMGR_LIBVIRT_DRIVER, ...).
# Exit 0 when every step passed.
set -euo pipefail
cd "$(dirname "${BASH_SOURCE[0]}")"

BASE="${CLOUDMGR_VM_URL:-http://127.0.0.1:8080}"
say() { printf '[check-vm %s] %s\n' "$(date +%T)" "$*"; }
die() { say "FAILED: $*"; exit 1; }

health="$(curl -fsS -m 10 "$BASE/healthz")" || die "cloudmgr does not answer on $BASE"
say "cloudmgr /healthz: $health"
curl -fsS -m 10 http://127.0.0.1:5000/v3 | grep -q '"v3' || die "Keystone does not answer on 127.0.0.1:5000"
say "Keystone answers on 127.0.0.1:5000"
# readiness is cached 5 s per worker; a worker's first check can time out under TCG
ready=""
for _ in 1 2 3 4 5 6; do
    if curl -fs -m 30 -o /dev/null "$BASE/readyz"; then ready=yes; break; fi
    sleep 6
done
[ -n "$ready" ] || die "/readyz stayed not ready: $(curl -sS -m 30 "$BASE/readyz")"
say "cloudmgr /readyz: ready (database, scheduler leader, every cloud)"

say "check accounts and tokens in the VM"
TOKENS="$(vagrant ssh -c 'sudo bash -s' <<'VM'
set -euo pipefail
cd /var/lib/cloudmgr
cm() {  # the cloudmgr command as the services run it
    # shellcheck disable=SC2016
    sudo -u cloudmgr bash -c 'set -a; . /etc/cloudmgr/cloudmgr.env; set +a; exec /opt/cloudmgr/.venv/bin/cloudmgr "$@"' _ "$@"
}
ensure() {  # user role [department]: prints "user token", creating the user first if needed
    local token password
    if ! token="$(cm users token "$1" --name vm-check --days 1 2>/dev/null)"; then
        password="Vc-$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')"
        cm users create "$1" --role "$2" ${3:+--department "$3"} --password "$password" >/dev/null
        token="$(cm users token "$1" --name vm-check --days 1)"
    fi
    echo "$1 $token"
}
ensure vmcheck-staff dept_staff prov-education
ensure vmcheck-head dept_head prov-education
ensure vmcheck-operator operator
VM
)" || die "could not create the check accounts in the VM"
CHECK_TOKENS="$(printf '%s\n' "$TOKENS" | grep '^vmcheck-' | tr -d '\r')"
export CHECK_TOKENS CLOUDMGR_VM_URL="$BASE"

say "request -> approvals -> provisioning -> deletion, through the API"
if python3 - <<'PY'
import datetime
import json
import os
import subprocess
import sys
import time
import urllib.error
import urllib.request

base = os.environ["CLOUDMGR_VM_URL"] + "/api/v1"
tokens = dict(line.split() for line in os.environ["CHECK_TOKENS"].splitlines())


def call(user, method, path, body=None):
    request = urllib.request.Request(
        base + path, method=method, data=None if body is None else json.dumps(body).encode(),
        headers={"Authorization": "Bearer " + tokens[user], "Content-Type": "application/json"})
    try:
        with urllib.request.urlopen(request, timeout=60) as answer:
            return answer.status, json.load(answer)
    except urllib.error.HTTPError as error:
        return error.code, json.load(error)


def nova_servers():
    """{server id: status} of every server in the VM's Nova, asked inside the VM."""
    listing = subprocess.run(
        ["vagrant", "ssh", "-c", "sudo OS_CLIENT_CONFIG_FILE=/var/lib/cloudmgr-lab/clouds.yaml "
         "/var/lib/cloudmgr-lab/venv/bin/openstack --os-cloud cloudmgr-lab server list --all-projects "
         "-f value -c ID -c Status"],
        capture_output=True, text=True, check=True, timeout=300).stdout
    return dict(line.split() for line in listing.replace("\r", "").splitlines() if len(line.split()) == 2)


def log(message):
    print(f"  {message}", file=sys.stderr, flush=True)


def wait(what, done, seconds=900):
    started = time.monotonic()
    while time.monotonic() - started < seconds:
        value = done()
        if value:
            log(f"{what} after {time.monotonic() - started:.0f} s")
            return value
        time.sleep(5)
    sys.exit(f"{what}: not within {seconds} s")


status, catalog = call("vmcheck-staff", "GET", "/catalog?cloud=education")
if status != 200:
    sys.exit(f"catalog of the education cloud: {status} {catalog}")
offered = {(i["kind"], i["cloud_name"]): i["id"] for i in catalog["items"]}
status, created = call("vmcheck-staff", "POST", "/requests", {
    "cloud": "education", "zone": "extranet", "flavor": offered["flavor", "m1.tiny"],
    "image": offered["image", "cirros-lab"], "count": 2, "name_prefix": f"vmcheck-{int(time.time())}",
    "justification": "vagrant/check-vm.sh", "expires_on": (datetime.date.today() + datetime.timedelta(days=90)).isoformat(), "submit": True})
if status != 201:
    sys.exit(f"request refused: {status} {created}")
request_id = created["id"]
log(f"request {request_id}: {created['state']}, approval chain {created['approval_steps']}")
for user in ("vmcheck-head", "vmcheck-operator"):
    status, body = call(user, "POST", f"/requests/{request_id}/approve", {})
    if status != 200:
        sys.exit(f"approval by {user} refused: {status} {body}")
    log(f"approved by {user}: {body['state']}")


def request_final():
    # approved and provisioning are the only states the scheduler moves on by itself
    status, body = call("vmcheck-staff", "GET", f"/requests/{request_id}")
    return body if body["state"] not in ("approved", "provisioning") else None


final = wait(f"request {request_id} finished", request_final)
servers = final["servers"]
if final["state"] != "active" or any(s["state"] != "active" for s in servers):
    sys.exit(f"request ended {final['state']}: {[(s['name'], s['state'], s['fault']) for s in servers]}")
log(f"{len(servers)} servers active: " + ", ".join(f"{s['name']} {s['cloud_server_id']}" for s in servers))
in_nova = nova_servers()
if any(in_nova.get(s["cloud_server_id"]) != "ACTIVE" for s in servers):
    sys.exit(f"the VM's Nova disagrees: {[(s['name'], in_nova.get(s['cloud_server_id'])) for s in servers]}")
log("the VM's Nova has both ACTIVE")
for server in servers:
    status, body = call("vmcheck-staff", "POST", f"/servers/{server['id']}/actions",
                        {"action": "delete", "confirm": server["name"]})
    if status != 202:
        sys.exit(f"delete of {server['name']} refused: {status} {body}")


def all_deleted():
    states = [call("vmcheck-staff", "GET", f"/servers/{s['id']}")[1]["state"] for s in servers]
    return all(state == "deleted" for state in states)


wait("both servers deleted", all_deleted)
left = set(nova_servers()) & {s["cloud_server_id"] for s in servers}
if left:
    sys.exit(f"deleted in cloudmgr but still in the VM's Nova: {sorted(left)}")
log("the VM's Nova has neither any more")
PY
then
    say "PASSED"
else
    die "the API flow did not complete (above)"
fi
