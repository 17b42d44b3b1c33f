# Shared settings and helpers for the cloudmgr OpenStack lab (sourced, not run).
# shellcheck shell=bash
#
# The lab runs independent OpenStack control planes on one machine, the
# "instances" (LAB_INSTANCE): "province" (clouds.yaml entry cloudmgr-lab) and
# "city" (cloudmgr-lab-city), which make test uses, and "scale"
# (cloudmgr-lab-scale), the province at size: one nova-compute serving
# LAB_SCALE_NODES fake hypervisors (200), filled with servers by scale.sh. It
# starts only when named (LAB_CLOUDS=scale make lab-up), never for the tests.
# Each has its own ports, databases (prefix), RabbitMQ vhost, admin password,
# region, compute hosts and state dir; they share the venv, MariaDB and
# RabbitMQ. Scripts run for one instance when LAB_INSTANCE is set, else for
# the instances LAB_CLOUDS names: up.sh and status.sh default to province and
# city, down.sh to every instance.

LAB_SRC="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd -P)"
REPO_ROOT="$(cd "$LAB_SRC/../.." && pwd)"
LAB_ROOT="${CLOUDMGR_LAB_DIR:-$REPO_ROOT/.lab}"
mkdir -p "$LAB_ROOT"
LAB_ROOT="$(cd "$LAB_ROOT" && pwd -P)"
VENV="${CLOUDMGR_LAB_VENV:-$LAB_ROOT/venv}"
PY="$VENV/bin/python"
# the clouds file naming every instance (written by each instance's up.sh)
CLOUDS_YAML="$LAB_ROOT/clouds.yaml"
# which instances the last `up.sh` (without LAB_INSTANCE) started: status.sh checks those
CLOUDS_UP_FILE="$LAB_ROOT/clouds-up"
LAB_INSTANCES="province city scale"
# what up.sh and status.sh act on when LAB_CLOUDS is not set
LAB_DEFAULT_CLOUDS="province city"
LAB_INSTANCE_GIVEN="${LAB_INSTANCE:-}"
LAB_INSTANCE="${LAB_INSTANCE:-province}"

LAB_HOST="127.0.0.1"
# address the APIs listen on; the catalog always says 127.0.0.1 (a VM sets
# 0.0.0.0 and forwards the same ports from the host's loopback)
LAB_BIND="${LAB_BIND_HOST:-127.0.0.1}"
DB_HOST="${LAB_DB_HOST:-127.0.0.1}"
DB_PORT="${LAB_DB_PORT:-3306}"
DB_USER="${LAB_DB_USER:-root}"
DB_PASS="${LAB_DB_PASSWORD:-}"
DBS="keystone placement nova_api nova nova_cell0 glance neutron cinder"
RABBIT_HOST="${LAB_RABBIT_HOST:-127.0.0.1}"
RABBIT_PORT="${LAB_RABBIT_PORT:-5672}"
RABBIT_USER="${LAB_RABBIT_USER:-guest}"
RABBIT_PASS="${LAB_RABBIT_PASSWORD:-guest}"
RABBIT_VHOST="${LAB_RABBIT_VHOST:-/}"
SERVICE_PASSWORD="${LAB_SERVICE_PASSWORD:-cloudmgr-lab-service}"

instance_settings() {  # instance_settings NAME: the settings of one lab instance
    case "$1" in
        province)
            LAB="$LAB_ROOT"
            CLOUD_NAME="cloudmgr-lab"
            DB_PREFIX="${LAB_DB_PREFIX:-cmlab_}"
            VHOST_NAME="cmlab"
            ADMIN_PASSWORD="${LAB_ADMIN_PASSWORD:-cloudmgr-lab-admin}"
            REGION="RegionOne"
            KEYSTONE_PORT=5000 PLACEMENT_PORT=8778 NOVA_PORT=8774
            GLANCE_PORT=9292 NEUTRON_PORT=9696 CINDER_PORT=8776
            COMPUTE_HOSTS="compute1 compute2"
            NOVA_CONTROL_HOST="cmlab-control"
            PROC_PREFIX="cmlab"
            ;;
        city)
            LAB="$LAB_ROOT/city"
            CLOUD_NAME="cloudmgr-lab-city"
            DB_PREFIX="${LAB_CITY_DB_PREFIX:-cmlab_city_}"
            VHOST_NAME="cmlab-city"
            ADMIN_PASSWORD="${LAB_CITY_ADMIN_PASSWORD:-cloudmgr-lab-city-admin}"
            REGION="RegionCity"
            KEYSTONE_PORT=15000 PLACEMENT_PORT=18778 NOVA_PORT=18774
            GLANCE_PORT=19292 NEUTRON_PORT=19696 CINDER_PORT=18776
            COMPUTE_HOSTS="city-compute1 city-compute2"
            NOVA_CONTROL_HOST="cmlab-city-control"
            PROC_PREFIX="cmlab-city"
            ;;
        scale)
            LAB="$LAB_ROOT/scale"
            CLOUD_NAME="cloudmgr-lab-scale"
            DB_PREFIX="${LAB_SCALE_DB_PREFIX:-cmlab_scale_}"
            VHOST_NAME="cmlab-scale"
            ADMIN_PASSWORD="${LAB_SCALE_ADMIN_PASSWORD:-cloudmgr-lab-scale-admin}"
            REGION="RegionScale"
            KEYSTONE_PORT=25000 PLACEMENT_PORT=28778 NOVA_PORT=28774
            GLANCE_PORT=29292 NEUTRON_PORT=29696 CINDER_PORT=28776
            # one nova-compute process serving every node (scale1-n000...)
            COMPUTE_HOSTS="scale1"
            NOVA_CONTROL_HOST="cmlab-scale-control"
            PROC_PREFIX="cmlab-scale"
            ;;
        *) echo "LAB_INSTANCE=$1: must be one of: $LAB_INSTANCES" >&2; exit 2 ;;
    esac
    AUTH_URL="http://$LAB_HOST:$KEYSTONE_PORT/v3"
}

lab_clouds_wanted() {  # lab_clouds_wanted [DEFAULT]: the instances LAB_CLOUDS names (else DEFAULT, else province and city), checked
    local want="${LAB_CLOUDS:-${1:-$LAB_DEFAULT_CLOUDS}}" i
    want="${want//,/ }"
    for i in $want; do
        case " $LAB_INSTANCES " in *" $i "*) ;; *) echo "LAB_CLOUDS: unknown cloud '$i' (known: $LAB_INSTANCES)" >&2; exit 2 ;; esac
    done
    # in the lab's order (province first)
    for i in $LAB_INSTANCES; do case " $want " in *" $i "*) printf '%s ' "$i" ;; esac; done
}

clouds_up_update() {  # clouds_up_update add|remove CLOUD...: the clouds status.sh checks
    local op="$1" i out=""; shift
    local have; have="$(cat "$CLOUDS_UP_FILE" 2>/dev/null || true)"
    for i in $LAB_INSTANCES; do
        case " $* " in
            *" $i "*) [ "$op" = add ] && out="$out$i " ;;
            *) case " $have " in *" $i "*) out="$out$i " ;; esac ;;
        esac
    done
    echo "$out" >"$CLOUDS_UP_FILE"
}

lab_cloud_entries() {  # "name|auth_url|password|region" per instance, for clouds.yaml
    local i
    for i in $LAB_INSTANCES; do
        ( instance_settings "$i"; printf '%s|%s|%s|%s\n' "$CLOUD_NAME" "$AUTH_URL" "$ADMIN_PASSWORD" "$REGION" )
    done
}

# (made before a script exports one instance's LAB_* settings for lab_admin.py)
LAB_CLOUD_ENTRIES="$(lab_cloud_entries)"
instance_settings "$LAB_INSTANCE"
# (a script's children act on the same cloud; without LAB_INSTANCE, on every cloud)
if [ -n "$LAB_INSTANCE_GIVEN" ]; then export LAB_INSTANCE; fi
mkdir -p "$LAB"
ETC="$LAB/etc"
RUN="$LAB/run"
LOGS="$LAB/log"
DATA="$LAB/data"
# what the configuration files depend on besides configs.sh (up.sh restarts on a change)
INSTANCE_SETTINGS_ID="$LAB_INSTANCE $CLOUD_NAME $DB_PREFIX $VHOST_NAME $REGION $KEYSTONE_PORT $PLACEMENT_PORT $NOVA_PORT $GLANCE_PORT $NEUTRON_PORT $CINDER_PORT $COMPUTE_HOSTS $NOVA_CONTROL_HOST"

# Usable capacity per compute host (the fake driver reports 1000 vCPU,
# 800000 MB and 600000 GB; the rest is reserved).
LAB_HOST_VCPUS="${LAB_HOST_VCPUS:-16}"
LAB_HOST_RAM_MB="${LAB_HOST_RAM_MB:-32768}"
LAB_HOST_DISK_GB="${LAB_HOST_DISK_GB:-200}"
FAKE_VCPUS=1000
FAKE_RAM_MB=800000
FAKE_DISK_GB=600000
# The scale cloud: how many fake hypervisors its compute serves, and each one's size
# (a province server: 2 x 16 cores, 256 GB; Nova's default CPU allocation ratio 4.0).
LAB_SCALE_NODES="${LAB_SCALE_NODES:-200}"
LAB_SCALE_NODE_VCPUS="${LAB_SCALE_NODE_VCPUS:-32}"
LAB_SCALE_NODE_RAM_MB="${LAB_SCALE_NODE_RAM_MB:-262144}"
LAB_SCALE_NODE_DISK_GB="${LAB_SCALE_NODE_DISK_GB:-4096}"
if [ "$LAB_INSTANCE" = scale ]; then INSTANCE_SETTINGS_ID="$INSTANCE_SETTINGS_ID $LAB_SCALE_NODES $LAB_SCALE_NODE_VCPUS $LAB_SCALE_NODE_RAM_MB $LAB_SCALE_NODE_DISK_GB"; fi

# Every service process the lab runs, in start order. Cinder's come last:
# up.sh can add them to a running lab that has the others (CORE_SERVICES).
CORE_SERVICES="keystone placement glance neutron nova-api nova-conductor nova-scheduler $(for h in $COMPUTE_HOSTS; do printf 'nova-compute-%s ' "$h"; done)"
CORE_SERVICES="${CORE_SERVICES% }"
CINDER_SERVICES="cinder-api cinder-scheduler cinder-volume cinder-backup"
SERVICES="$CORE_SERVICES $CINDER_SERVICES"

ts() { date +%s.%N; }
elapsed() { awk -v a="$1" -v b="$(ts)" 'BEGIN{printf "%.1f", b-a}'; }
say() { printf '[lab %s %s] %s\n' "${LAB_INSTANCE_GIVEN:-all}" "$(date +%H:%M:%S)" "$*"; }
die() { printf '[lab %s %s] ERROR: %s\n' "${LAB_INSTANCE_GIVEN:-all}" "$(date +%H:%M:%S)" "$*" >&2; exit 1; }

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
# another lab: a process whose state dir is neither LAB_ROOT nor one under it (the
# city's .lab/city is this lab's, not another one)
lab_procs_other() { lab_procs | awk -F= -v d="$1" '$2 != d && index($2, d "/") != 1 {print $1}' | tr '\n' ' '; }

kill_pids() {  # kill_pids "PID..." [SECONDS]: TERM their process groups, KILL after SECONDS (10)
    local p g pgs="" own
    own="$(ps -o pgid= -p $$ | tr -d ' ')"
    # (a process may be gone already: the other cloud's up.sh, run side by side, stops the
    # same strays; under set -e -o pipefail a failing ps would end this script)
    for p in $1; do
        g="$(ps -o pgid= -p "$p" 2>/dev/null | tr -d ' ')" || g=""
        if [ -n "$g" ] && [ "$g" != "$own" ]; then pgs="$pgs $g"; fi
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
    for g in $pgs; do left="$left $(ps -o pid=,comm= -s "$g" 2>/dev/null | tr -s ' \n' ' ' || true)"; done
    say "still running after ${2:-10} s, killing:$left"
    for g in $pgs; do kill -KILL -- "-$g" 2>/dev/null || true; done
    for p in $1; do kill -KILL "$p" 2>/dev/null || true; done
    return 0
}

# ------------------------------------------------ starting one service
start_svc() {  # start_svc NAME CMD...: background process group, pid file
    local name="$1"; shift
    local log; log="$(logfile "$name")"
    printf '\n===== %s start %s\n' "$(date -u +%FT%TZ)" "$name" >>"$log"
    touch "$RUN/.cloudmgr-lab-run"
    # shellcheck disable=SC2086
    ( cd "$RUN" && exec setsid ${PRE:-} "$@" >>"$log" 2>&1 </dev/null 9>&- ) &
    echo $! >"$(pidfile "$name")"
}
# --limit-request-line: Nova asks Neutron for the ports of a page of servers in one URL; above
# ~85 servers with ports it passes gunicorn's default 4094 bytes (Neutron 414, then Nova 500).
# --keep-alive: with gunicorn's 2 s, a client reusing a pooled connection races the server
# closing it (ConnectionResetError; under load the scheduler then finds no host).
start_gunicorn() {  # start_gunicorn NAME PORT APP [VAR=VALUE...]
    local name="$1" port="$2" app="$3"; shift 3
    start_svc "$name" env "$@" "$VENV/bin/gunicorn" \
        --bind "$LAB_BIND:$port" --workers 1 --worker-class gthread \
        --threads 8 --timeout 300 --graceful-timeout 5 --no-control-socket \
        --limit-request-line 8190 --keep-alive 30 \
        --pythonpath "$LAB_SRC" --name "$PROC_PREFIX-$name" "lab_wsgi:$app()"
}
start_named() {  # start_named SERVICE: one service of this cloud, as up.sh starts it (ctl.sh)
    local nova=(--config-file "$ETC/nova/nova.conf") cinder=(--config-file "$ETC/cinder/cinder.conf")
    case "$1" in
        keystone) start_gunicorn keystone "$KEYSTONE_PORT" keystone OS_KEYSTONE_CONFIG_DIR="$ETC/keystone" ;;
        placement) start_gunicorn placement "$PLACEMENT_PORT" placement OS_PLACEMENT_CONFIG_DIR="$ETC/placement" ;;
        glance) start_gunicorn glance "$GLANCE_PORT" glance OS_GLANCE_CONFIG_DIR="$ETC/glance" ;;
        neutron) start_gunicorn neutron "$NEUTRON_PORT" neutron OS_NEUTRON_CONFIG_DIR="$ETC/neutron" \
            "OS_NEUTRON_CONFIG_FILES=neutron.conf;ml2_conf.ini" ;;
        nova-api) start_gunicorn nova-api "$NOVA_PORT" nova OS_NOVA_CONFIG_DIR="$ETC/nova" \
            "OS_NOVA_CONFIG_FILES=api-paste.ini;nova.conf" ;;
        nova-conductor|nova-scheduler) start_svc "$1" "$VENV/bin/$1" "${nova[@]}" ;;
        nova-compute-*) start_svc "$1" "$VENV/bin/cloudmgr-lab-nova-compute" "${nova[@]}" \
            --config-file "$ETC/nova/$1.conf" ;;
        cinder-api) start_gunicorn cinder-api "$CINDER_PORT" cinder OS_CINDER_CONFIG_FILE="$ETC/cinder/cinder.conf" ;;
        cinder-scheduler|cinder-volume|cinder-backup) start_svc "$1" "$VENV/bin/$1" "${cinder[@]}" ;;
        *) die "unknown service $1 (services of $LAB_INSTANCE: $SERVICES)" ;;
    esac
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
