#!/usr/bin/env bash
# with-postgres.sh COMMAND...: run COMMAND with CLOUDMGR_TEST_DATABASE_URL naming a PostgreSQL server.
#
# When the caller already names one (CI names this machine's), COMMAND runs against it.  Otherwise a
# throwaway cluster of our own: initdb into a temporary directory, a server listening only on a
# Unix socket in that directory (no TCP port to collide with anything), stopped and removed when
# COMMAND ends, however it ends.  The server package is installed when missing, like Chromium.
set -euo pipefail

if [ -n "${CLOUDMGR_TEST_DATABASE_URL:-}" ]; then
    exec "$@"
fi

say() { printf '[with-postgres] %s\n' "$*" >&2; }

find_bin() {  # the newest installed PostgreSQL's bin directory
    local d
    for d in $(ls -d /usr/lib/postgresql/*/bin 2>/dev/null | sort -V -r); do
        [ -x "$d/initdb" ] && [ -x "$d/pg_ctl" ] && { echo "$d"; return 0; }
    done
    command -v initdb >/dev/null 2>&1 && dirname "$(command -v initdb)" && return 0
    return 1
}

if ! PGBIN="$(find_bin)"; then
    if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
        say "installing the PostgreSQL server (Debian's postgresql)"
        apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq postgresql >/dev/null
        PGBIN="$(find_bin)" || { say "PostgreSQL installed but initdb not found"; exit 1; }
    else
        say "no PostgreSQL server here: install it (Debian: apt-get install postgresql) or set CLOUDMGR_TEST_DATABASE_URL"
        exit 1
    fi
fi

DIR="$(mktemp -d /tmp/cloudmgr-pg.XXXXXX)"
RUN=()  # PostgreSQL refuses to run as root: as root, the cluster belongs to the postgres account
if [ "$(id -u)" = 0 ]; then
    id postgres >/dev/null 2>&1 || useradd --system --no-create-home --shell /usr/sbin/nologin postgres
    chown postgres "$DIR"
    RUN=(runuser -u postgres --)
fi

stop() {
    "${RUN[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -m immediate stop >/dev/null 2>&1 || true
    rm -rf "$DIR"
}
trap stop EXIT
trap 'exit 130' INT TERM

"${RUN[@]}" "$PGBIN/initdb" -D "$DIR/data" -U postgres -A trust -E UTF8 --locale=C.UTF-8 >"$DIR/initdb.log" 2>&1 \
    || { cat "$DIR/initdb.log" >&2; exit 1; }
# Sized for a test run: fsync off (the cluster is thrown away), enough connections for the
# tests' web processes and pools.
"${RUN[@]}" "$PGBIN/pg_ctl" -D "$DIR/data" -l "$DIR/server.log" -w -t 60 \
    -o "-c listen_addresses='' -k $DIR -p 5432 -c fsync=off -c synchronous_commit=off -c full_page_writes=off -c max_connections=200" \
    start >/dev/null || { cat "$DIR/server.log" >&2; exit 1; }

export CLOUDMGR_TEST_DATABASE_URL="postgresql+psycopg://postgres@/postgres?host=$DIR&port=5432"
say "throwaway PostgreSQL $("$PGBIN/postgres" --version | awk '{print $3}') on socket $DIR (removed afterwards)"
set +e
"$@"
rc=$?
set -e
exit $rc
