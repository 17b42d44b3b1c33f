#!/usr/bin/env bash
# Exit 0 iff every lab service responds: a Keystone token, Nova conductor,
# scheduler and compute1/compute2 up with a fresh heartbeat, Placement
# providers for both computes, Glance and Neutron answering (lab-public external,
# lab-router joining it to lab-internet and lab-extranet), Cinder's
# scheduler, volume and backup services up and its volume types there.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[ -x "$PY" ] || { echo "lab venv missing ($VENV): run vagrant/lab/up.sh"; exit 1; }
rc=0
total=0
for s in $SERVICES; do
    if p="$(svc_pid "$s")"; then
        # its process group (each service runs in a session of its own):
        # gunicorn workers, forked children, cinder-backup's privsep daemon
        mb="$(ps -o rss= -g "$p" 2>/dev/null | awk '{s+=$1} END {printf "%d", s/1024}')"
        total=$((total + mb))
        printf '  %-22s pid %-8s rss %s MB\n' "$s" "$p" "$mb"
    else
        printf '  %-22s NOT RUNNING\n' "$s"; rc=1
    fi
done
echo "  total RSS of the lab's processes: $total MB"
export LAB_AUTH_URL="$AUTH_URL" LAB_ADMIN_PASSWORD="$ADMIN_PASSWORD" COMPUTE_HOSTS
"$PY" "$LAB_SRC/lab_admin.py" status || rc=1
[ "$rc" = 0 ] && echo "lab OK ($LAB/clouds.yaml)" || echo "lab NOT OK (logs: $LOGS)"
exit "$rc"
