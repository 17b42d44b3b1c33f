#!/usr/bin/env bash
# The scale cloud (cloudmgr-lab-scale): the province at size, for benchmarks.
#   vagrant/lab/scale.sh fill [TOTAL]   boot servers until it holds TOTAL
#                                       (LAB_SCALE_SERVERS, default 2500), then
#                                       save the state as "filled"
#   vagrant/lab/scale.sh save NAME      save the cloud's state (its Nova, Placement
#                                       and Neutron databases) as NAME
#   vagrant/lab/scale.sh reset [NAME]   back to a saved state (default "filled";
#                                       "empty" is saved before the first fill):
#                                       restores the databases and restarts Nova,
#                                       Placement and Neutron, instead of deleting
#                                       servers one by one (~6 a second here)
#   vagrant/lab/scale.sh count          servers by status, and how they spread
# The cloud itself starts with `LAB_CLOUDS=scale make lab-up` (which also fills
# it: LAB_SCALE_SERVERS=0 skips that). Saved states are in .lab/scale/states/.
set -euo pipefail
export LAB_INSTANCE=scale
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"
[ -f "$ETC/nova/nova.conf" ] || die "the scale cloud was never started: LAB_CLOUDS=scale make lab-up"
db_pick_account || die "cannot log in to MariaDB at $DB_HOST:$DB_PORT"

STATES="$LAB/states"
# what a server touches: Nova's three databases, Placement's and Neutron's
STATE_DBS="nova_api nova nova_cell0 placement neutron"
# the services reading them, restarted around a reset (the compute last: at start it
# takes back the servers its node holds in the restored database)
STATE_SERVICES="placement neutron nova-api nova-conductor nova-scheduler"
# the RabbitMQ the running services use (wait-computes watches their queues): their own
# setting, since up.sh may have fallen back to another vhost than the one common.sh names
LAB_TRANSPORT_URL="$(sed -n 's/^transport_url = //p' "$ETC/nova/nova.conf" | head -1)"
[ -n "$LAB_TRANSPORT_URL" ] || die "no transport_url in $ETC/nova/nova.conf"
export LAB_TRANSPORT_URL
export LAB_AUTH_URL="$AUTH_URL" LAB_ADMIN_PASSWORD="$ADMIN_PASSWORD" LAB_REGION="$REGION" \
       COMPUTE_HOSTS LAB_SCALE_NODES LAB_DB_HOST="$DB_HOST" LAB_DB_PORT="$DB_PORT" LAB_DB_USER="$DB_USER" \
       LAB_DB_PASSWORD="$DB_PASS" LAB_DB_PREFIX="$DB_PREFIX"

save() {  # save NAME
    local name="$1" t0 d
    t0=$(ts)
    mkdir -p "$STATES/$name.part"
    for d in $STATE_DBS; do
        mysqldump_cmd --single-transaction --quick "${DB_PREFIX}$d" | gzip -1 >"$STATES/$name.part/$d.sql.gz"
    done
    "$PY" "$LAB_SRC/scale_fill.py" count >"$STATES/$name.part/servers.txt" 2>&1 || true
    rm -rf "${STATES:?}/$name"
    mv "$STATES/$name.part" "$STATES/$name"
    say "state $name saved in $(elapsed "$t0") s ($(du -sh "$STATES/$name" | cut -f1)): $(head -1 "$STATES/$name/servers.txt")"
}

mysqldump_cmd() {
    local args=(-h "$DB_HOST" -P "$DB_PORT" -u "$DB_USER" --protocol=TCP)
    [ -n "$DB_PASS" ] && args+=(-p"$DB_PASS")
    mysqldump "${args[@]}" "$@"
}

reset() {  # reset NAME
    local name="$1" t0 d s computes
    [ -d "$STATES/$name" ] || die "no saved state $name (saved: $(ls "$STATES" 2>/dev/null | tr '\n' ' '))"
    t0=$(ts)
    computes="$(for h in $COMPUTE_HOSTS; do printf 'nova-compute-%s ' "$h"; done)"
    for s in $computes $STATE_SERVICES; do bash "$LAB_SRC/ctl.sh" scale stop "$s" >/dev/null; done
    for d in $STATE_DBS; do
        mysql_cmd -e "DROP DATABASE IF EXISTS \`${DB_PREFIX}$d\`; CREATE DATABASE \`${DB_PREFIX}$d\` CHARACTER SET utf8mb4"
        gunzip -c "$STATES/$name/$d.sql.gz" | mysql_cmd "${DB_PREFIX}$d"
    done
    say "   databases restored at $(elapsed "$t0") s"
    for s in $STATE_SERVICES; do bash "$LAB_SRC/ctl.sh" scale start "$s" >/dev/null; done
    local hp=()
    for h in $COMPUTE_HOSTS; do
        bash "$LAB_SRC/ctl.sh" scale start "nova-compute-$h" >/dev/null
        hp+=("$h=$(svc_pid "nova-compute-$h" || echo 0)")
    done
    "$PY" "$LAB_SRC/lab_admin.py" wait-computes 600 "${hp[@]}" || die "nova-compute did not come back (log: $(logfile "nova-compute-${COMPUTE_HOSTS%% *}"))"
    # shellcheck disable=SC2086
    "$PY" "$LAB_SRC/lab_admin.py" wait-steady 900 45 $COMPUTE_HOSTS || die "nova-compute is not steady (log: $(logfile "nova-compute-${COMPUTE_HOSTS%% *}"))"
    say "state $name back in $(elapsed "$t0") s: $("$PY" "$LAB_SRC/scale_fill.py" count | head -1)"
}

case "${1:-}" in
    fill)
        total="${2:-${LAB_SCALE_SERVERS:-2500}}"
        [[ "$total" =~ ^[0-9]+$ ]] || die "fill: TOTAL must be a number, not '$total'"
        [ -d "$STATES/empty" ] || save empty
        t0=$(ts)
        "$PY" "$LAB_SRC/scale_fill.py" fill "$total" || die "fill did not finish (see above)"
        say "filled to $total servers in $(elapsed "$t0") s"
        save filled
        ;;
    save) [ $# -eq 2 ] && [[ "$2" =~ ^[a-z0-9-]+$ ]] || die "usage: scale.sh save NAME (a-z, 0-9, -)"; save "$2" ;;
    reset) reset "${2:-filled}" ;;
    count) "$PY" "$LAB_SRC/scale_fill.py" count ;;
    *) sed -n '2,16p' "$0" | sed 's/^# \{0,1\}//' >&2; exit 2 ;;
esac
