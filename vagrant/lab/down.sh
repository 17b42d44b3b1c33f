#!/usr/bin/env bash
# Stops every lab process (by pid file, whole process groups), keeping state.
#   down.sh           stop; the next up.sh restarts on the same databases
#   down.sh --purge   also drop the lab databases and remove $LAB state
#                     (the venv is kept)
# Both clouds (province, city), or LAB_CLOUDS=city (a list) / LAB_INSTANCE=city: one.
set -uo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PURGE=0
case "${1:-}" in
    --purge) PURGE=1 ;;
    "") ;;
    *) echo "usage: $0 [--purge]" >&2; exit 2 ;;
esac

if [ -z "$LAB_INSTANCE_GIVEN" ]; then
    t0=$(ts)
    rc=0
    for i in $(lab_clouds_wanted "$LAB_INSTANCES"); do
        LAB_INSTANCE="$i" bash "$LAB_SRC/down.sh" "$@" || rc=1
    done
    clouds_up_update remove $(lab_clouds_wanted "$LAB_INSTANCES")
    if [ "$PURGE" = 1 ] && [ -z "${LAB_CLOUDS:-}" ]; then
        rm -rf "$CLOUDS_YAML" "$CLOUDS_UP_FILE" "$LAB_ROOT/build" "$LAB_ROOT/city" "$LAB_ROOT/scale"
    fi
    say "lab down in $(elapsed "$t0") s"
    exit "$rc"
fi

lab_lock
t0=$(ts)
running=""
if [ -d "$RUN" ]; then
    for s in $SERVICES; do
        p="$(svc_pid "$s")" && running="$running $s:$p"
    done
fi
# processes of this lab whose pid file was lost
strays=""
for p in $(lab_procs_mine "$LAB"); do
    case " $running " in *":$p "*) ;; *) strays="$strays $p" ;; esac
done
if [ -z "${running// /}" ] && [ -z "${strays// /}" ]; then
    say "no lab process running"
else
    say "stopping lab processes:$running${strays:+ others:$strays}"
    kill_pids "$(for sp in $running; do printf '%s ' "${sp#*:}"; done) $strays" 6
fi
rm -f "$RUN"/*.pid 2>/dev/null

if [ "$PURGE" = 1 ]; then
    say "purging: dropping databases ${DB_PREFIX}* and removing state in $LAB (venv kept)"
    if db_pick_account; then
        sql="DROP DATABASE IF EXISTS \`${DB_PREFIX}meta\`; "
        for d in $DBS; do sql+="DROP DATABASE IF EXISTS \`${DB_PREFIX}$d\`; "; done
        mysql_cmd -e "$sql" || say "WARNING: could not drop the databases"
    else
        say "WARNING: MariaDB not reachable: databases not dropped"
    fi
    if command -v rabbitmqctl >/dev/null 2>&1; then
        timeout 20 rabbitmqctl -q delete_vhost "$VHOST_NAME" >/dev/null 2>&1 || true
    fi
    # only what up.sh makes (the state dir may be anywhere)
    rm -rf "$ETC" "$RUN" "$LOGS" "$DATA" "$LAB/state" "$LAB/keystone"
fi
say "cloud $LAB_INSTANCE down in $(elapsed "$t0") s"
