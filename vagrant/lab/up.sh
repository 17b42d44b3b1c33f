#!/usr/bin/env bash
# Starts the cloudmgr OpenStack lab on 127.0.0.1: two independent clouds,
# "province" (cloudmgr-lab) and "city" (cloudmgr-lab-city), each with
# Keystone, Placement, Glance, Neutron (ML2 + the lab's own mechanism
# driver), Nova API, conductor, scheduler and two fake-driver computes
# (compute1/compute2, city-compute1/city-compute2), Cinder API, scheduler,
# volume (the lab's fake driver) and backup (common.sh: ports, databases).
#   up.sh                         both clouds (LAB_CLOUDS=province: only it)
#   LAB_INSTANCE=city up.sh       one cloud
# The clouds start side by side (faster on 2 cores than one after the other:
# vagrant/README.md); LAB_PARALLEL=0 starts them one after the other.
# Idempotent: returns at once when the lab is already up and healthy; a
# running lab that lacks only Cinder (or part of it) gets Cinder added
# without restarting the rest.
# Exit 0 only when every service answers and the lab's resources exist.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

DEBUG="${LAB_DEBUG:-false}"
T_ALL=$(ts)
TIMINGS=()
phase() { PHASE_NAME="$1"; PHASE_T=$(ts); say "== $1"; }
phase_done() {
    local e; e="$(elapsed "$PHASE_T")"
    TIMINGS+=("$(printf '%-22s %6s s' "$PHASE_NAME" "$e")")
    say "   $PHASE_NAME done in $e s"
}
fail() {  # fail MESSAGE [SERVICE...]: message, log tails, exit 1
    local msg="$1"; shift
    for s in "$@"; do log_tail "$s" 40; done
    die "$msg (logs: $LOGS)"
}

# ------------------------------------------------------ every cloud (no LAB_INSTANCE)
if [ -z "$LAB_INSTANCE_GIVEN" ]; then
    clouds="$(lab_clouds_wanted)"
    # the venv first, once (the clouds' own install phases then find it done)
    bash "$LAB_SRC/install.sh"
    clouds_up_update add $clouds
    rc=0
    if [ "${LAB_PARALLEL:-1}" = 1 ]; then
        pids=()
        for i in $clouds; do
            LAB_INSTANCE="$i" bash "$LAB_SRC/up.sh" &
            pids+=("$i:$!")
        done
        for ip in "${pids[@]}"; do
            wait "${ip#*:}" || { say "cloud ${ip%%:*} did not come up"; rc=1; }
        done
    else
        for i in $clouds; do
            LAB_INSTANCE="$i" bash "$LAB_SRC/up.sh" || { say "cloud $i did not come up"; rc=1; break; }
        done
    fi
    [ "$rc" = 0 ] || die "lab start failed after $(elapsed "$T_ALL") s"
    say "lab is UP ($LAB_ROOT: ${clouds% }) in $(elapsed "$T_ALL") s"
    echo "    clouds.yaml: $CLOUDS_YAML (clouds: $(for i in $clouds; do (instance_settings "$i"; printf '%s ' "$CLOUD_NAME"); done))"
    exit 0
fi

trap 'rc=$?; [ $rc -ne 0 ] && say "up.sh FAILED (exit $rc) after $(elapsed "$T_ALL") s in phase: ${PHASE_NAME:-start}"; exit $rc' EXIT

export LAB_AUTH_URL="$AUTH_URL" LAB_ADMIN_PASSWORD="$ADMIN_PASSWORD" \
       LAB_SERVICE_PASSWORD="$SERVICE_PASSWORD" COMPUTE_HOSTS LAB_DB_HOST="$DB_HOST" \
       LAB_DB_PORT="$DB_PORT" LAB_DB_USER="$DB_USER" LAB_DB_PASSWORD="$DB_PASS" \
       LAB_DB_PREFIX="$DB_PREFIX" LAB_REGION="$REGION" LAB_CLOUD_ENTRIES \
       LAB_PLACEMENT_PORT="$PLACEMENT_PORT" LAB_NOVA_PORT="$NOVA_PORT" LAB_GLANCE_PORT="$GLANCE_PORT" \
       LAB_NEUTRON_PORT="$NEUTRON_PORT" LAB_CINDER_PORT="$CINDER_PORT"
if [ "$LAB_INSTANCE" = scale ]; then export LAB_SCALE_NODES; fi
ADMIN() { "$PY" "$LAB_SRC/lab_admin.py" "$@"; }

all_running() {  # all_running [SERVICE...] (default: all of them)
    local s
    for s in ${*:-$SERVICES}; do svc_pid "$s" >/dev/null || return 1; done
}

lab_lock

scale_fill() {  # the scale cloud: its servers (LAB_SCALE_SERVERS, default 2500; 0: none)
    [ "$LAB_INSTANCE" = scale ] && [ "${LAB_SCALE_SERVERS:-2500}" != 0 ] || return 0
    bash "$LAB_SRC/scale.sh" fill "${LAB_SCALE_SERVERS:-2500}"
}

# The configuration the running services read: a lab started with another
# configs.sh restarts (the fast paths below require the same digest).
CONFIGS_ID="$( { cat "$LAB_SRC/configs.sh"; echo "$INSTANCE_SETTINGS_ID"; } | sha256sum | cut -c1-16)"
CONFIGS_MARK="$LAB/state/configs-id"
configs_current() { [ "$(cat "$CONFIGS_MARK" 2>/dev/null)" = "$CONFIGS_ID" ]; }

# ---------------------------------------------------------------- fast path
if [ -x "$PY" ] && [ -f "$CLOUDS_YAML" ] && configs_current && all_running \
        && ADMIN status >/dev/null 2>&1; then
    say "lab already up and healthy ($LAB); nothing to do"
    trap - EXIT
    scale_fill
    exit 0
fi
# the rest of the lab up and healthy, Cinder not (as after an update that
# brought Cinder): add Cinder only, the others keep running
CINDER_ONLY=0
if [ -x "$PY" ] && [ -f "$CLOUDS_YAML" ] && [ -f "$LAB/state/initialized" ] && configs_current \
        && all_running $CORE_SERVICES && ADMIN status --without-cinder >/dev/null 2>&1; then
    CINDER_ONLY=1
    say "lab up except Cinder: adding Cinder, the other services keep running"
fi

mkdir -p "$ETC" "$RUN" "$LOGS" "$DATA"

# ------------------------------------------------------------------ install
phase install
bash "$LAB_SRC/install.sh"
phase_done

# ------------------------------------------------------------- leftovers
phase leftovers
stop_cinder() {  # Cinder's processes of this lab (pid files, else command line)
    local s p pids=""
    for s in $CINDER_SERVICES; do p="$(svc_pid "$s")" && pids="$pids $p"; done
    for p in $(lab_procs_mine "$LAB"); do
        case " $pids " in *" $p "*) continue ;; esac
        tr '\0' ' ' <"/proc/$p/cmdline" 2>/dev/null | grep -q cinder && pids="$pids $p"
    done
    if [ -n "${pids// /}" ]; then
        say "stopping Cinder processes:$pids"
        kill_pids "$pids" 6
    fi
    for s in $CINDER_SERVICES; do rm -f "$(pidfile "$s")"; done
}
if [ "$CINDER_ONLY" = 1 ]; then
    stop_cinder
    PORTS="$CINDER_PORT"
else
    bash "$LAB_SRC/down.sh"
    PORTS="$KEYSTONE_PORT $PLACEMENT_PORT $NOVA_PORT $GLANCE_PORT $NEUTRON_PORT $CINDER_PORT"
fi
# processes of a lab started from another state dir hold the same ports,
# queues and database names: only one lab runs per machine (this lab's
# other cloud, under $LAB_ROOT, is not another lab)
stray="$(lab_procs_other "$LAB_ROOT")"
if [ -n "$stray" ]; then
    say "WARNING: stopping processes of another lab: $stray"
    kill_pids "$stray" 6
fi
for port in $PORTS; do
    if port_open "$LAB_HOST" "$port"; then
        holder="$(ss -ltnpH "sport = :$port" 2>/dev/null | sed -n 's/.*users:((\(.*\))).*/\1/p' | head -1)"
        die "port $port on $LAB_HOST is already in use (${holder:-unknown process}); stop it first"
    fi
done
phase_done

# ---------------------------------------------------- MariaDB and RabbitMQ
ensure_mariadb() {
    # Debian's own root@localhost logs in by unix socket only: then the lab
    # uses a TCP account of its own ('cmlab'), made through that socket
    use_lab_account() {
        [ -z "$DB_USER_GIVEN" ] || return 1
        db_pick_account && return 0
        DB_USER=cmlab; DB_PASS="$LAB_DB_ACCOUNT_PASSWORD"
        mysql -uroot -e "
            CREATE USER IF NOT EXISTS 'cmlab'@'localhost' IDENTIFIED BY '$DB_PASS';
            CREATE USER IF NOT EXISTS 'cmlab'@'127.0.0.1' IDENTIFIED BY '$DB_PASS';
            GRANT ALL PRIVILEGES ON *.* TO 'cmlab'@'localhost' WITH GRANT OPTION;
            GRANT ALL PRIVILEGES ON *.* TO 'cmlab'@'127.0.0.1' WITH GRANT OPTION;
            FLUSH PRIVILEGES;" 2>/dev/null && db_login
    }
    if port_open "$DB_HOST" "$DB_PORT"; then
        db_login && return 0
        use_lab_account && return 0
        die "cannot log in to MariaDB at $DB_HOST:$DB_PORT as $DB_USER (set LAB_DB_USER/LAB_DB_PASSWORD)"
    fi
    [ "$DB_HOST" = "127.0.0.1" ] || die "MariaDB at $DB_HOST:$DB_PORT is not reachable"
    say "MariaDB not reachable on $DB_HOST:$DB_PORT: installing/starting it"
    if [ ! -x /usr/sbin/mariadbd ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq mariadb-server mariadb-client >/dev/null
    fi
    if ! port_open "$DB_HOST" "$DB_PORT"; then
        # by hand, no systemd: loopback only
        [ -d /var/lib/mysql/mysql ] || mariadb-install-db --user=mysql --datadir=/var/lib/mysql >/dev/null
        mkdir -p /run/mysqld && chown mysql:mysql /run/mysqld
        setsid /usr/sbin/mariadbd --user=mysql --bind-address=127.0.0.1 \
            --port="$DB_PORT" >>"$LOGS/mariadb.log" 2>&1 </dev/null 9>&- &
        for _ in $(seq 60); do port_open "$DB_HOST" "$DB_PORT" && break; sleep 0.5; done
    fi
    port_open "$DB_HOST" "$DB_PORT" || fail "MariaDB did not start" mariadb
    db_login || use_lab_account \
        || die "cannot log in to MariaDB at $DB_HOST:$DB_PORT as $DB_USER (set LAB_DB_USER/LAB_DB_PASSWORD)"
}

ensure_rabbitmq() {
    if port_open "$RABBIT_HOST" "$RABBIT_PORT"; then return 0; fi
    [ "$RABBIT_HOST" = "127.0.0.1" ] || die "RabbitMQ at $RABBIT_HOST:$RABBIT_PORT is not reachable"
    say "RabbitMQ not reachable on $RABBIT_HOST:$RABBIT_PORT: installing/starting it"
    if [ ! -x /usr/sbin/rabbitmq-server ]; then
        export DEBIAN_FRONTEND=noninteractive
        apt-get update -qq
        apt-get install -y -qq rabbitmq-server >/dev/null
    fi
    # by hand, no systemd: AMQP, epmd and the Erlang distribution port on
    # loopback (rabbitmq-env.conf is read by the server and by rabbitmqctl)
    local envf=/etc/rabbitmq/rabbitmq-env.conf
    if ! grep -q '^NODE_IP_ADDRESS=' "$envf" 2>/dev/null; then
        mkdir -p /etc/rabbitmq
        cat >>"$envf" <<ENV
# added by cloudmgr vagrant/lab/up.sh: loopback only
NODENAME=rabbit@localhost
NODE_IP_ADDRESS=127.0.0.1
NODE_PORT=$RABBIT_PORT
DIST_PORT=25672
SERVER_ADDITIONAL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
CTL_ERL_ARGS="-kernel inet_dist_use_interface {127,0,0,1}"
export ERL_EPMD_ADDRESS=127.0.0.1
ENV
    fi
    export ERL_EPMD_ADDRESS=127.0.0.1
    pgrep -x epmd >/dev/null || epmd -address 127.0.0.1 -daemon 9>&- || true
    setsid /usr/sbin/rabbitmq-server >>"$LOGS/rabbitmq.log" 2>&1 </dev/null 9>&- &
    for _ in $(seq 120); do port_open "$RABBIT_HOST" "$RABBIT_PORT" && break; sleep 0.5; done
    port_open "$RABBIT_HOST" "$RABBIT_PORT" || fail "RabbitMQ did not start" rabbitmq
}

phase "mariadb+rabbitmq"
# the clouds share them: one cloud at a time starts them
exec 8>"$LAB_ROOT/.infra-lock"
flock -w 300 8 || die "timed out waiting for the other cloud to start MariaDB/RabbitMQ"
ensure_mariadb
export LAB_DB_USER="$DB_USER" LAB_DB_PASSWORD="$DB_PASS"
say "MariaDB: $DB_USER@$DB_HOST:$DB_PORT"
ensure_rabbitmq
# ~13 OpenStack processes per cloud each keep a small pool of connections
maxc="$(mysql_cmd -N -B -e 'SELECT @@GLOBAL.max_connections')"
if [ "${maxc:-0}" -lt 1000 ]; then
    mysql_cmd -e 'SET GLOBAL max_connections = 1000' 2>/dev/null || true
fi
flock -u 8; exec 8>&-
phase_done

# ---------------------------------------------------------------- init state
# The databases belong to the state dir that initialized them: its lab id
# is in $LAB/state/lab-id and in the table ${DB_PREFIX}meta.owner. Another
# id there (a lab from another checkout re-initialized them) or no
# databases at all means a fresh init here too.
INIT_MARK="$LAB/state/initialized"
META_DB="${DB_PREFIX}meta"
db_lab_id() { mysql_cmd -N -B -e "SELECT lab_id FROM \`$META_DB\`.owner LIMIT 1" 2>/dev/null || true; }
FRESH=0
if [ ! -f "$INIT_MARK" ]; then
    FRESH=1
elif [ "$(cat "$LAB/state/lab-id" 2>/dev/null)" != "$(db_lab_id)" ]; then
    say "the lab databases are gone or were re-initialized by another lab: initializing from scratch"
    FRESH=1
fi

# The cloud's queues live in a RabbitMQ vhost of their own ('cmlab' or 'cmlab-city', made
# with rabbitmqctl; a fresh init starts it empty) when the broker is local
# and rabbitmqctl works, else in the default vhost. The choice is kept in
# the state dir: Nova's cell mapping records the URL at init.
amqp_ok() { LAB_TRANSPORT_URL="$(transport_url)" ADMIN amqp-ok 2>/dev/null; }
rmq() { timeout 30 rabbitmqctl -q "$@" >/dev/null 2>&1; }
VHOST_FILE="$LAB/state/rabbit-vhost"
if [ -n "${LAB_RABBIT_VHOST:-}" ]; then
    :
elif [ "$FRESH" = 0 ] && [ -f "$VHOST_FILE" ]; then
    RABBIT_VHOST="$(cat "$VHOST_FILE")"
    if [ "$RABBIT_VHOST" = "$VHOST_NAME" ] && ! amqp_ok; then
        rmq add_vhost "$VHOST_NAME" || true; rmq set_permissions -p "$VHOST_NAME" "$RABBIT_USER" '.*' '.*' '.*' || true
    fi
elif [ "$RABBIT_HOST" = "127.0.0.1" ] && command -v rabbitmqctl >/dev/null 2>&1; then
    if [ "$FRESH" = 1 ]; then rmq delete_vhost "$VHOST_NAME" || true; fi
    rmq add_vhost "$VHOST_NAME" || true
    rmq set_permissions -p "$VHOST_NAME" "$RABBIT_USER" '.*' '.*' '.*' || true
    RABBIT_VHOST="$VHOST_NAME"
    amqp_ok || RABBIT_VHOST=/
fi
amqp_ok || die "cannot log in to RabbitMQ at $(transport_url | sed 's#//[^@]*@#//***@#')"
export LAB_TRANSPORT_URL="$(transport_url)"
[ "$FRESH" = 1 ] || [ -f "$VHOST_FILE" ] || { mkdir -p "$LAB/state"; echo "$RABBIT_VHOST" >"$VHOST_FILE"; }
say "RabbitMQ: $RABBIT_HOST:$RABBIT_PORT vhost '$RABBIT_VHOST'"

if [ "$FRESH" = 1 ] && [ "$CINDER_ONLY" = 1 ]; then
    # the running services use databases that are no more theirs
    say "the running lab lost its databases: restarting it from scratch"
    bash "$LAB_SRC/down.sh"
    CINDER_ONLY=0
fi

if [ "$FRESH" = 1 ]; then
    phase "fresh databases"
    rm -rf "$LAB/state" "$LAB/keystone" "$DATA"
    mkdir -p "$LAB/state" "$DATA"
    echo "$RABBIT_VHOST" >"$VHOST_FILE"
    lab_id="$(cat /proc/sys/kernel/random/uuid)"
    echo "$lab_id" >"$LAB/state/lab-id"
    sql="DROP DATABASE IF EXISTS \`$META_DB\`; CREATE DATABASE \`$META_DB\`;
         CREATE TABLE \`$META_DB\`.owner (lab_id VARCHAR(64) NOT NULL, lab_dir VARCHAR(1024), created_at DATETIME);
         INSERT INTO \`$META_DB\`.owner VALUES ('$lab_id', '$(hostname):$LAB', UTC_TIMESTAMP()); "
    for d in $DBS; do
        sql+="DROP DATABASE IF EXISTS \`${DB_PREFIX}$d\`; CREATE DATABASE \`${DB_PREFIX}$d\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci; "
    done
    mysql_cmd -e "$sql"
    phase_done
fi

# ------------------------------------------------------------------- configs
phase configs
# shellcheck source=/dev/null
. "$LAB_SRC/configs.sh"
write_configs
phase_done

# ------------------------------------------------------------------ db init
# A fresh init runs every service's migrations (40 s to 2 min on 2 cores).
# Their result, right after keystone's bootstrap, is kept as a SQL dump in a
# cache outside the state dir, keyed by the installed versions and by what
# the dump embeds (database URLs, RabbitMQ URL, admin password); a later
# fresh init with the same key loads it in seconds. LAB_SCHEMA_CACHE=0
# disables it.
SCHEMA_CACHE_DIR="${LAB_SCHEMA_CACHE_DIR:-${XDG_CACHE_HOME:-$HOME/.cache}/cloudmgr-lab}"
# The Keystone catalog the lab wants (users, services, endpoints of
# lab_admin.py); recorded in $LAB/state/keystone-catalog once made.
CATALOG_ID="$(ADMIN catalog-id)"
KEYSTONE_MARK="$LAB/state/keystone-catalog"
# (the package pins, cinder's among them, come from the install stamp)
schema_key="$( { grep -v "^ml2=" "$VENV/.cloudmgr-lab-installed"; echo "v2 $LAB_INSTANCE $DBS $CATALOG_ID $DB_PREFIX $(db_url x) $(transport_url) $ADMIN_PASSWORD $SERVICE_PASSWORD $REGION $KEYSTONE_PORT"; } | sha256sum | cut -c1-16)"
# (one file per cloud: schema-province-KEY, schema-city-KEY)
SCHEMA_DUMP="$SCHEMA_CACHE_DIR/schema-$LAB_INSTANCE-$schema_key.sql.gz"
# keystone once its service users and catalog exist (see "start services")
KEYSTONE_DUMP="$SCHEMA_CACHE_DIR/keystone-$LAB_INSTANCE-$schema_key.sql.gz"
dump_dbs() {  # dump_dbs FILE DB...
    local f="$1"; shift
    local args=(-h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" --protocol=TCP)
    [ -n "$DB_PASS" ] && args+=(-p"$DB_PASS")
    mkdir -p "$SCHEMA_CACHE_DIR"
    if mysqldump "${args[@]}" --single-transaction --add-drop-database \
            --databases "$@" 2>/dev/null | gzip -1 >"$f.tmp"; then
        mv "$f.tmp" "$f"
        say "   cached $* in $f"
        # this cloud's older keys (other versions or settings) are of no more use
        local kind; kind="$(basename "$f" | cut -d- -f1)"
        find "$SCHEMA_CACHE_DIR" -maxdepth 1 -name "$kind-$LAB_INSTANCE-*.sql.gz" ! -name "$(basename "$f")" -delete
        # and those of the lab before it had two clouds (KIND-KEY)
        find "$SCHEMA_CACHE_DIR" -maxdepth 1 -name "$kind-[0-9a-f][0-9a-f][0-9a-f][0-9a-f]*.sql.gz" -delete
    else
        rm -f "$f.tmp"
    fi
}

make_fernet_keys() {  # what keystone-manage fernet_setup/credential_setup do
    "$PY" - "$LAB/keystone" <<'PY'
import os, sys
from cryptography.fernet import Fernet
base = sys.argv[1]
for repo in ("fernet-keys", "credential-keys"):
    d = os.path.join(base, repo)
    os.makedirs(d, mode=0o700, exist_ok=True)
    for name in ("0", "1"):
        path = os.path.join(d, name)
        fd = os.open(path, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
        with os.fdopen(fd, "wb") as fh:
            fh.write(Fernet.generate_key())
PY
}

if [ "$FRESH" = 1 ] && [ "${LAB_SCHEMA_CACHE:-1}" != 0 ] && [ -s "$SCHEMA_DUMP" ]; then
    phase "db load (cached schema)"
    if gzip -dc "$SCHEMA_DUMP" | mysql_cmd; then
        make_fernet_keys
        FRESH_LOADED=1
        if [ -s "$KEYSTONE_DUMP" ] && gzip -dc "$KEYSTONE_DUMP" | mysql_cmd; then
            echo "$CATALOG_ID" >"$KEYSTONE_MARK"
        fi
    else
        say "   loading $SCHEMA_DUMP failed: running the migrations instead"
        rm -f "$SCHEMA_DUMP"
        sql=""
        for d in $DBS; do
            sql+="DROP DATABASE IF EXISTS \`${DB_PREFIX}$d\`; CREATE DATABASE \`${DB_PREFIX}$d\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci; "
        done
        mysql_cmd -e "$sql"
    fi
    phase_done
fi

if [ "$FRESH" = 1 ] && [ "${FRESH_LOADED:-0}" = 0 ]; then
    phase "db sync (parallel)"
    KM=("$VENV/bin/keystone-manage" --config-file "$ETC/keystone/keystone.conf")
    NM=("$VENV/bin/nova-manage" --config-file "$ETC/nova/nova.conf")
    init_keystone() {
        "${KM[@]}" db_sync
        "${KM[@]}" fernet_setup --keystone-user root --keystone-group root
        "${KM[@]}" credential_setup --keystone-user root --keystone-group root
        "${KM[@]}" bootstrap --bootstrap-password "$ADMIN_PASSWORD" \
            --bootstrap-username admin --bootstrap-project-name admin \
            --bootstrap-role-name admin --bootstrap-service-name keystone \
            --bootstrap-region-id "$REGION" \
            --bootstrap-admin-url "http://$LAB_HOST:$KEYSTONE_PORT/v3" \
            --bootstrap-internal-url "http://$LAB_HOST:$KEYSTONE_PORT/v3" \
            --bootstrap-public-url "http://$LAB_HOST:$KEYSTONE_PORT/v3"
    }
    init_placement() {
        "$VENV/bin/placement-manage" --config-file "$ETC/placement/placement.conf" db sync
    }
    init_glance() {
        "$VENV/bin/glance-manage" --config-file "$ETC/glance/glance-api.conf" db_sync
    }
    init_neutron() {
        "$VENV/bin/neutron-db-manage" --config-file "$ETC/neutron/neutron.conf" \
            --config-file "$ETC/neutron/ml2_conf.ini" upgrade heads
    }
    init_cinder() {
        "$VENV/bin/cinder-manage" --config-file "$ETC/cinder/cinder.conf" db sync
    }
    init_nova() {
        "${NM[@]}" api_db sync
        "${NM[@]}" cell_v2 map_cell0 --database_connection "$(db_url nova_cell0)"
        "${NM[@]}" cell_v2 create_cell --name cell1 --verbose
        "${NM[@]}" db sync
    }
    pids=()
    for s in keystone placement glance neutron nova cinder; do
        ( set -e; t=$(ts); "init_$s"; echo "init-$s took $(elapsed "$t") s" ) >"$LOGS/init-$s.log" 2>&1 &
        pids+=("$s:$!")
    done
    bad=()
    for sp in "${pids[@]}"; do
        wait "${sp#*:}" || bad+=("${sp%%:*}")
    done
    if [ "${#bad[@]}" -gt 0 ]; then
        for s in "${bad[@]}"; do log_tail "init-$s" 30; done
        die "database initialization failed for: ${bad[*]}"
    fi
    say "   $(cat "$LOGS"/init-*.log | grep -h '^init-.* took' | tr '\n' ' ')"
    if [ "${LAB_SCHEMA_CACHE:-1}" != 0 ]; then
        dbs=(); for d in $DBS; do dbs+=("${DB_PREFIX}$d"); done
        dump_dbs "$SCHEMA_DUMP" "${dbs[@]}"
    fi
    phase_done
fi
chmod 700 "$LAB/keystone" "$LAB/keystone"/* 2>/dev/null || true

# A lab initialized before it had Cinder: Cinder's database alone
CINDER_DB="${DB_PREFIX}cinder"
cinder_tables="$(mysql_cmd -N -B -e "SELECT COUNT(*) FROM information_schema.tables
    WHERE table_schema = '$CINDER_DB' AND table_name = 'services'" 2>/dev/null || echo 0)"
if [ "${cinder_tables:-0}" = 0 ]; then
    phase "cinder db sync"
    mysql_cmd -e "CREATE DATABASE IF NOT EXISTS \`$CINDER_DB\` CHARACTER SET utf8mb4 COLLATE utf8mb4_general_ci"
    "$VENV/bin/cinder-manage" --config-file "$ETC/cinder/cinder.conf" db sync >"$LOGS/init-cinder.log" 2>&1 \
        || fail "cinder-manage db sync failed" init-cinder
    phase_done
fi

# ------------------------------------------------------------ start services
check_alive() {  # fail early with the log when a process died
    local s
    for s in "$@"; do
        svc_pid "$s" >/dev/null || fail "$s exited during startup" "$s"
    done
}
utc_now() { date -u '+%Y-%m-%d %H:%M:%S'; }
heartbeat_since() {  # heartbeat_since BINARY HOST SINCE [DB]: true once reported
    local n
    n="$(mysql_cmd -N -B -e "SELECT COUNT(*) FROM \`${DB_PREFIX}${4:-nova}\`.services
        WHERE deleted = 0 AND \`binary\` = '$1' AND host = '$2'
        AND updated_at >= '$3'" 2>/dev/null || echo 0)"
    [ "${n:-0}" -gt 0 ]
}
wait_heartbeat() {  # wait_heartbeat SERVICE BINARY HOST SINCE TIMEOUT [DB]
    local deadline=$(( $(date +%s) + $5 ))
    until heartbeat_since "$2" "$3" "$4" "${6:-nova}"; do
        check_alive "$1"
        [ "$(date +%s)" -lt "$deadline" ] || fail "no heartbeat from $2 on $3 after $5 s" "$1"
        sleep 1
    done
}

CINDER_CONF=(--config-file "$ETC/cinder/cinder.conf")
start_cinder() {  # start_cinder [PRE]: api, scheduler, volume, backup
    PRE="${1:-}" start_gunicorn cinder-api "$CINDER_PORT" cinder \
        OS_CINDER_CONFIG_FILE="$ETC/cinder/cinder.conf"
    start_svc cinder-scheduler ${1:-} "$VENV/bin/cinder-scheduler" "${CINDER_CONF[@]}"
    start_svc cinder-volume ${1:-} "$VENV/bin/cinder-volume" "${CINDER_CONF[@]}"
    start_svc cinder-backup ${1:-} "$VENV/bin/cinder-backup" "${CINDER_CONF[@]}"
}
wait_cinder() {  # wait_cinder SINCE
    ADMIN wait-http cinder-api "http://$LAB_HOST:$CINDER_PORT/" 180 "$(svc_pid cinder-api || echo 0)" \
        || fail "cinder-api does not answer" cinder-api
    wait_heartbeat cinder-volume cinder-volume "$NOVA_CONTROL_HOST@fake" "$1" 120 cinder
    wait_heartbeat cinder-backup cinder-backup "$NOVA_CONTROL_HOST" "$1" 120 cinder
    # The scheduler reports once at start, then not until the volume service has sent it
    # its capabilities (or scheduler_driver_init_wait_time, 60 s, has passed): a volume
    # service slow to start (a loaded machine) left it "down" at the final check. Its
    # heartbeat after the volume service's says it is past that wait.
    wait_heartbeat cinder-scheduler cinder-scheduler "$NOVA_CONTROL_HOST" "$(utc_now)" 90 cinder
    say "   cinder up at $(elapsed "$PHASE_T") s"
}
KEYSTONE_SETUP=0
[ "$(cat "$KEYSTONE_MARK" 2>/dev/null)" = "$CATALOG_ID" ] || KEYSTONE_SETUP=1
keystone_setup() {
    ADMIN keystone || fail "keystone setup failed" keystone
    echo "$CATALOG_ID" >"$KEYSTONE_MARK"
    if [ "$FRESH" = 1 ] && [ "${LAB_SCHEMA_CACHE:-1}" != 0 ]; then
        dump_dbs "$KEYSTONE_DUMP" "${DB_PREFIX}keystone"
    fi
}

if [ "$CINDER_ONLY" = 1 ]; then
    phase "start cinder"
    SINCE="$(utc_now)"
    [ "$KEYSTONE_SETUP" = 0 ] || keystone_setup
    start_cinder
    wait_cinder "$SINCE"
    phase_done
else
    phase "start services"
    NOVA_CONF=(--config-file "$ETC/nova/nova.conf")
    SINCE="$(utc_now)"
    # Critical path: keystone -> conductor -> computes (which need placement).
    # Glance, Neutron and nova-api start at lower CPU priority (2 cores) and
    # are reniced once the computes report.
    NICE=(nice -n 10)
    start_gunicorn keystone "$KEYSTONE_PORT" keystone OS_KEYSTONE_CONFIG_DIR="$ETC/keystone"
    start_gunicorn placement "$PLACEMENT_PORT" placement OS_PLACEMENT_CONFIG_DIR="$ETC/placement"
    if [ "$KEYSTONE_SETUP" = 0 ]; then
        # service users exist: conductor and scheduler may start right away
        # (they tolerate keystone not answering yet, not unknown users)
        start_svc nova-conductor "$VENV/bin/nova-conductor" "${NOVA_CONF[@]}"
        start_svc nova-scheduler "${NICE[@]}" "$VENV/bin/nova-scheduler" "${NOVA_CONF[@]}"
    fi
    PRE="${NICE[*]}" start_gunicorn glance "$GLANCE_PORT" glance OS_GLANCE_CONFIG_DIR="$ETC/glance"
    PRE="${NICE[*]}" start_gunicorn neutron "$NEUTRON_PORT" neutron OS_NEUTRON_CONFIG_DIR="$ETC/neutron" \
        "OS_NEUTRON_CONFIG_FILES=neutron.conf;ml2_conf.ini"
    PRE="${NICE[*]}" start_gunicorn nova-api "$NOVA_PORT" nova OS_NOVA_CONFIG_DIR="$ETC/nova" \
        "OS_NOVA_CONFIG_FILES=api-paste.ini;nova.conf"
    # Cinder needs Keystone's users only when requests come
    start_cinder "${NICE[*]}"

    ADMIN wait-keystone 120 "$(svc_pid keystone || echo 0)" || fail "keystone did not issue a token" keystone
    if [ "$KEYSTONE_SETUP" = 1 ]; then
        keystone_setup
        start_svc nova-conductor "$VENV/bin/nova-conductor" "${NOVA_CONF[@]}"
        start_svc nova-scheduler "${NICE[@]}" "$VENV/bin/nova-scheduler" "${NOVA_CONF[@]}"
    fi
    say "   keystone ready at $(elapsed "$PHASE_T") s"
    ADMIN wait-http placement "http://$LAB_HOST:$PLACEMENT_PORT/" 120 "$(svc_pid placement || echo 0)" || fail "placement does not answer" placement
    say "   placement answers at $(elapsed "$PHASE_T") s"
    ADMIN wait-consumers 120 "$(svc_pid nova-conductor || echo 0)" conductor \
        || fail "nova-conductor did not start consuming" nova-conductor
    say "   nova-conductor listening at $(elapsed "$PHASE_T") s"

    for h in $COMPUTE_HOSTS; do
        start_svc "nova-compute-$h" "$VENV/bin/cloudmgr-lab-nova-compute" "${NOVA_CONF[@]}" \
            --config-file "$ETC/nova/nova-compute-$h.conf"
    done
    hp=(); for h in $COMPUTE_HOSTS; do hp+=("$h=$(svc_pid "nova-compute-$h" || echo 0)"); done
    ADMIN wait-computes 180 "${hp[@]}" || fail "nova-compute did not come up" \
        $(for h in $COMPUTE_HOSTS; do echo "nova-compute-$h"; done)
    say "   nova-computes up at $(elapsed "$PHASE_T") s"
    for s in $SERVICES; do
        p="$(svc_pid "$s")" && renice -n 0 -g "$p" >/dev/null 2>&1 || true
    done
    for pair in "glance:$GLANCE_PORT/" "neutron:$NEUTRON_PORT/" "nova-api:$NOVA_PORT/"; do
        s="${pair%%:*}"; rest="${pair#*:}"
        ADMIN wait-http "$s" "http://$LAB_HOST:$rest" 180 "$(svc_pid "$s" || echo 0)" \
            || fail "$s does not answer" "$s"
        say "   $s answers at $(elapsed "$PHASE_T") s"
    done
    wait_heartbeat nova-conductor nova-conductor "$NOVA_CONTROL_HOST" "$SINCE" 120
    wait_heartbeat nova-scheduler nova-scheduler "$NOVA_CONTROL_HOST" "$SINCE" 120
    # the scheduler maps new compute hosts to cell1 every few seconds
    # (discover_hosts_in_cells_interval); nova-manage if it has not
    hosts_sql="$(printf "'%s'," $COMPUTE_HOSTS | sed 's/,$//')"
    nhosts="$(echo $COMPUTE_HOSTS | wc -w)"
    mapped_hosts() {
        mysql_cmd -N -B -e "SELECT COUNT(*) FROM \`${DB_PREFIX}nova_api\`.host_mappings
            WHERE host IN ($hosts_sql)" 2>/dev/null || echo 0
    }
    deadline=$(( $(date +%s) + 30 ))
    while [ "$(mapped_hosts)" -lt "$nhosts" ] && [ "$(date +%s)" -lt "$deadline" ]; do sleep 1; done
    if [ "$(mapped_hosts)" -lt "$nhosts" ]; then
        say "   running nova-manage cell_v2 discover_hosts"
        "$VENV/bin/nova-manage" "${NOVA_CONF[@]}" cell_v2 discover_hosts --verbose \
            >>"$LOGS/init-nova.log" 2>&1 || fail "nova-manage cell_v2 discover_hosts failed" init-nova
    fi
    say "   compute hosts mapped at $(elapsed "$PHASE_T") s"
    wait_cinder "$SINCE"
    phase_done
fi

# ----------------------------------------------- resources and final check
phase "resources+check"
ADMIN finish "$CLOUDS_YAML" || fail "lab resources or final status check failed" \
    nova-api $(for h in $COMPUTE_HOSTS; do echo "nova-compute-$h"; done) glance neutron placement
touch "$INIT_MARK"
echo "$CONFIGS_ID" >"$CONFIGS_MARK"
phase_done

say "cloud $LAB_INSTANCE ($CLOUD_NAME) is UP ($LAB) in $(elapsed "$T_ALL") s"
for t in "${TIMINGS[@]}"; do echo "    $t"; done
echo "    clouds.yaml: $CLOUDS_YAML (cloud: $CLOUD_NAME)"
trap - EXIT
scale_fill
