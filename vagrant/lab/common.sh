# Shared settings and helpers for the cloudmgr OpenStack lab (sourced, not run).
# shellcheck shell=bash

LAB_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd "$LAB_SRC/../.." && pwd)"
LAB="${CLOUDMGR_LAB_DIR:-$REPO_ROOT/.lab}"
mkdir -p "$LAB"
LAB="$(cd "$LAB" && pwd -P)"
VENV="${CLOUDMGR_LAB_VENV:-$LAB/venv}"
PY="$VENV/bin/python"
ETC="$LAB/etc"
RUN="$LAB/run"
LOGS="$LAB/log"
DATA="$LAB/data"

LAB_HOST="127.0.0.1"
# address the APIs listen on; the catalog always says 127.0.0.1 (a VM sets
# 0.0.0.0 and forwards the same ports from the host's loopback)
LAB_BIND="${LAB_BIND_HOST:-127.0.0.1}"
DB_HOST="${LAB_DB_HOST:-127.0.0.1}"
DB_PORT="${LAB_DB_PORT:-3306}"
DB_USER="${LAB_DB_USER:-root}"
DB_PASS="${LAB_DB_PASSWORD:-}"
DB_PREFIX="${LAB_DB_PREFIX:-cmlab_}"
DBS="keystone placement nova_api nova nova_cell0 glance neutron cinder"
RABBIT_HOST="${LAB_RABBIT_HOST:-127.0.0.1}"
RABBIT_PORT="${LAB_RABBIT_PORT:-5672}"
RABBIT_USER="${LAB_RABBIT_USER:-guest}"
RABBIT_PASS="${LAB_RABBIT_PASSWORD:-guest}"
RABBIT_VHOST="${LAB_RABBIT_VHOST:-/}"

ADMIN_PASSWORD="${LAB_ADMIN_PASSWORD:-cloudmgr-lab-admin}"
SERVICE_PASSWORD="${LAB_SERVICE_PASSWORD:-cloudmgr-lab-service}"
REGION="RegionOne"
KEYSTONE_PORT=5000
PLACEMENT_PORT=8778
NOVA_PORT=8774
GLANCE_PORT=9292
NEUTRON_PORT=9696
CINDER_PORT=8776
AUTH_URL="http://$LAB_HOST:$KEYSTONE_PORT/v3"

# Usable capacity per compute host (the fake driver reports 1000 vCPU,
# 800000 MB and 600000 GB; the rest is reserved).
LAB_HOST_VCPUS="${LAB_HOST_VCPUS:-16}"
LAB_HOST_RAM_MB="${LAB_HOST_RAM_MB:-32768}"
LAB_HOST_DISK_GB="${LAB_HOST_DISK_GB:-200}"
FAKE_VCPUS=1000
FAKE_RAM_MB=800000
FAKE_DISK_GB=600000
COMPUTE_HOSTS="compute1 compute2"

# Every service process the lab runs, in start order. Cinder's come last:
# up.sh can add them to a running lab that has the others (CORE_SERVICES).
CORE_SERVICES="keystone placement glance neutron nova-api nova-conductor nova-scheduler nova-compute-compute1 nova-compute-compute2"
CINDER_SERVICES="cinder-api cinder-scheduler cinder-volume cinder-backup"
SERVICES="$CORE_SERVICES $CINDER_SERVICES"

ts() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(ts)" 'BEGIN{printf "%.1f", b-a}'; }
say() { printf '[lab %s] %s\n' "$(date +%H:%M:%S)" "$*"; }
die() { printf '[lab %s] ERROR: %s\n' "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

DB_USER_GIVEN="${LAB_DB_USER:-}"
LAB_DB_ACCOUNT_PASSWORD="${LAB_DB_PASSWORD:-cloudmgr-lab-db}"
db_login() { mysql_cmd -e 'SELECT 1' >/dev/null 2>&1; }
db_pick_account() {  # root with no password (CI machines), else 'cmlab'
    [ -n "$DB_USER_GIVEN" ] && return 0
    db_login && return 0
    local u="$DB_USER" p="$DB_PASS"
    DB_USER=cmlab; DB_PASS="$LAB_DB_ACCOUNT_PASSWORD"
    db_login && return 0
    DB_USER="$u"; DB_PASS="$p"
    return 1
}

mysql_cmd() {
    local args=(-h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" --protocol=TCP)
    [ -n "$DB_PASS" ] && args+=(-p"$DB_PASS")
    mysql "${args[@]}" "$@"
}

db_url() {  # db_url NAME
    local auth="$DB_USER"
    [ -n "$DB_PASS" ] && auth="$DB_USER:$DB_PASS"
    echo "mysql+pymysql://$auth@$DB_HOST:$DB_PORT/${DB_PREFIX}$1?charset=utf8mb4"
}

transport_url() {
    local vh="$RABBIT_VHOST"
    [ "$vh" = "/" ] && vh=""
    echo "rabbit://$RABBIT_USER:$RABBIT_PASS@$RABBIT_HOST:$RABBIT_PORT/$vh"
}

port_open() { (exec 3<>"/dev/tcp/$1/$2") 2>/dev/null; }

pidfile() { echo "$RUN/$1.pid"; }
logfile() { echo "$LOGS/$1.log"; }

svc_pid() {  # prints pid if the service's process is alive
    local f; f="$(pidfile "$1")"
    [ -f "$f" ] || return 1
    local p; p="$(cat "$f" 2>/dev/null)"
    [ -n "$p" ] && kill -0 "$p" 2>/dev/null || return 1
    # a recycled pid is not ours: lab processes run in $RUN
    [ "$(readlink "/proc/$p/cwd" 2>/dev/null)" = "$RUN" ] || return 1
    echo "$p"
}

log_tail() {  # log_tail SERVICE [lines]
    local f; f="$(logfile "$1")"
    if [ -f "$f" ]; then
        echo "----- last ${2:-40} lines of $f -----" >&2
        tail -n "${2:-40}" "$f" >&2
        echo "-----" >&2
    fi
}

# Every lab process runs with $LAB/run as its working directory (marked by
# the file .cloudmgr-lab-run), which finds them even without pid files and
# survives the process titles that gunicorn and oslo.service rewrite.
lab_procs() {  # lab_procs: "pid=labdir" for every lab process on the machine
    local d c
    for d in /proc/[0-9]*; do
        c="$(readlink "$d/cwd" 2>/dev/null)" || continue
        case "$c" in */run) ;; *) continue ;; esac
        [ -f "$c/.cloudmgr-lab-run" ] || continue
        [ "${d#/proc/}" = "$$" ] && continue
        echo "${d#/proc/}=${c%/run}"
    done
    return 0
}
lab_procs_mine() { lab_procs | awk -F= -v d="$1" '$2 == d {print $1}' | tr '\n' ' '; }
lab_procs_other() { lab_procs | awk -F= -v d="$1" '$2 != d {print $1}' | tr '\n' ' '; }

kill_pids() {  # kill_pids "PID..." [SECONDS]: TERM their process groups, KILL after SECONDS (10)
    local p g pgs="" own
    own="$(ps -o pgid= -p $$ | tr -d ' ')"
    for p in $1; do
        g="$(ps -o pgid= -p "$p" 2>/dev/null | tr -d ' ')"
        [ -n "$g" ] && [ "$g" != "$own" ] && pgs="$pgs $g"
    done
    for g in $pgs; do kill -TERM -- "-$g" 2>/dev/null || true; done
    for p in $1; do kill -TERM "$p" 2>/dev/null || true; done
    local i
    for i in $(seq $(( ${2:-10} * 5 ))); do
        local alive=0
        for p in $1; do kill -0 "$p" 2>/dev/null && alive=1; done
        for g in $pgs; do [ -n "$(ps -o pid= -s "$g" 2>/dev/null)" ] && alive=1; done
        [ "$alive" = 0 ] && return 0
        sleep 0.2
    done
    local left=""
    for g in $pgs; do left="$left $(ps -o pid=,comm= -s "$g" 2>/dev/null | tr -s ' \n' ' ')"; done
    say "still running after ${2:-10} s, killing:$left"
    for g in $pgs; do kill -KILL -- "-$g" 2>/dev/null || true; done
    for p in $1; do kill -KILL "$p" 2>/dev/null || true; done
    return 0
}

lab_lock() {  # one up.sh/down.sh at a time per state dir (fd 9)
    [ -n "${CLOUDMGR_LAB_LOCKED:-}" ] && return 0
    exec 9>"$LAB/.lock"
    if ! flock -n 9; then
        say "another up.sh/down.sh is running on $LAB: waiting for it"
        flock -w "${1:-900}" 9 || die "timed out waiting for the lab lock"
    fi
    export CLOUDMGR_LAB_LOCKED=1
}
