#!/usr/bin/env bash
# Exit 0 iff every lab service responds: a Keystone token, Nova conductor,
# scheduler and both computes up with a fresh heartbeat, Placement
# providers for both computes, Glance and Neutron answering (lab-public external,
# lab-router joining it to lab-internet and lab-extranet), Cinder's
# scheduler, volume and backup services up and its volume types there.
# For every cloud up.sh started and down.sh did not stop (.lab/clouds-up; LAB_CLOUDS=city or
# LAB_INSTANCE=city: that one); prints each process's RSS and the sums.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

[ -x "$PY" ] || { echo "lab venv missing ($VENV): run vagrant/lab/up.sh"; exit 1; }

if [ -z "$LAB_INSTANCE_GIVEN" ]; then
    if [ -z "${LAB_CLOUDS:-}" ] && [ -s "$CLOUDS_UP_FILE" ]; then
        LAB_CLOUDS="$(cat "$CLOUDS_UP_FILE")"
    fi
    rc=0
    total=0
    for i in $(lab_clouds_wanted); do
        echo "== cloud $i"
        out="$(LAB_INSTANCE="$i" bash "$0")" || rc=1
        echo "$out"
        mb="$(echo "$out" | sed -n 's/^  total RSS of the cloud.s processes: \([0-9]*\) MB$/\1/p')"
        total=$((total + ${mb:-0}))
    done
    shared="$(ps -C mariadbd,beam.smp,epmd -o rss= 2>/dev/null | awk '{s+=$1} END {printf "%d", s/1024}')"
    echo "== total RSS of the clouds' processes: $total MB (and MariaDB + RabbitMQ, shared: $shared MB)"
    exit "$rc"
fi

rc=0
total=0
for s in $SERVICES; do
    if p="$(svc_pid "$s")"; then
        # its process group (each service runs in a session of its own):
        # gunicorn workers, forked children, cinder-backup's privsep daemon
        mb="$(ps -o rss= -g "$p" 2>/dev/null | awk '{s+=$1} END {printf "%d", s/1024}')"
        total=$((total + mb))
        printf '  %-26s pid %-8s rss %s MB\n' "$s" "$p" "$mb"
    else
        printf '  %-26s NOT RUNNING\n' "$s"; rc=1
    fi
done
echo "  total RSS of the cloud's processes: $total MB"
export LAB_AUTH_URL="$AUTH_URL" LAB_ADMIN_PASSWORD="$ADMIN_PASSWORD" COMPUTE_HOSTS LAB_REGION="$REGION"
if [ "$LAB_INSTANCE" = scale ]; then export LAB_SCALE_NODES; fi
"$PY" "$LAB_SRC/lab_admin.py" status || rc=1
[ "$rc" = 0 ] && echo "cloud $LAB_INSTANCE OK ($CLOUD_NAME in $CLOUDS_YAML)" \
    || echo "cloud $LAB_INSTANCE NOT OK (logs: $LOGS)"
exit "$rc"
