#!/usr/bin/env bash
# Stops, starts or checks one service of one lab cloud, the others running on:
#   vagrant/lab/ctl.sh CLOUD stop|start|restart|status SERVICE
#   CLOUD    province | city | scale
#   SERVICE  keystone placement glance neutron nova-api nova-conductor
#            nova-scheduler nova-compute-HOST cinder-api cinder-scheduler
#            cinder-volume cinder-backup
# e.g. `vagrant/lab/ctl.sh city stop keystone` makes the city cloud
# unreachable (no token); `... city start keystone` brings it back (returns
# once Keystone issues tokens again). `make lab-up` restarts whatever is stopped.
set -euo pipefail
[ $# -eq 3 ] || { sed -n '2,11p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2; }
export LAB_INSTANCE="$1"
ACTION="$2" SERVICE="$3"
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
case " $SERVICES " in *" $SERVICE "*) ;; *) die "no service $SERVICE in cloud $LAB_INSTANCE ($SERVICES)" ;; esac
[ -f "$ETC/nova/nova.conf" ] || die "cloud $LAB_INSTANCE was never started: run make lab-up"

stop() {
    local p
    if p="$(svc_pid "$SERVICE")"; then
        kill_pids "$p" 6
        say "$SERVICE stopped (pid $p)"
    else
        say "$SERVICE was not running"
    fi
    rm -f "$(pidfile "$SERVICE")"
}

start() {
    if p="$(svc_pid "$SERVICE")"; then say "$SERVICE already running (pid $p)"; return 0; fi
    start_named "$SERVICE"
    local pid; pid="$(cat "$(pidfile "$SERVICE")")"
    export LAB_AUTH_URL="$AUTH_URL" LAB_ADMIN_PASSWORD="$ADMIN_PASSWORD" LAB_REGION="$REGION"
    local port=""
    case "$SERVICE" in
        keystone) "$PY" "$LAB_SRC/lab_admin.py" wait-keystone 120 "$pid" || die "keystone did not issue a token (log: $(logfile keystone))" ;;
        placement) port="$PLACEMENT_PORT" ;;
        glance) port="$GLANCE_PORT" ;;
        neutron) port="$NEUTRON_PORT" ;;
        nova-api) port="$NOVA_PORT" ;;
        cinder-api) port="$CINDER_PORT" ;;
    esac
    if [ -n "$port" ]; then
        "$PY" "$LAB_SRC/lab_admin.py" wait-http "$SERVICE" "http://$LAB_HOST:$port/" 120 "$pid" \
            || die "$SERVICE does not answer (log: $(logfile "$SERVICE"))"
    fi
    say "$SERVICE started (pid $pid)"
}

case "$ACTION" in
    stop) stop ;;
    start) start ;;
    restart) stop; start ;;
    status) if p="$(svc_pid "$SERVICE")"; then echo "$SERVICE running (pid $p)"; else echo "$SERVICE stopped"; exit 1; fi ;;
    *) die "action must be stop, start, restart or status" ;;
esac
