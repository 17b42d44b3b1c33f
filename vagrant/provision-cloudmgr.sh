#!/usr/bin/env bash
# Provisions cloudmgr in the lab VM, as deploy/README.md describes a production host:
# PostgreSQL, a venv, /etc/cloudmgr/cloudmgr.env, the systemd units of deploy/systemd
# (migrate, web, scheduler), the lab's clouds.yaml, the organisation imported and synced.
# Idempotent: `vagrant provision` runs it again.  Run by the Vagrantfile as root after
# vagrant/lab/up.sh (the lab must be up: the clouds sync talks to it).
set -euo pipefail

SRC="${CLOUDMGR_SRC:-/cloudmgr}"
APP=/opt/cloudmgr
STATE=/var/lib/cloudmgr
LAB_DIR="${CLOUDMGR_LAB_DIR:-/var/lib/cloudmgr-lab}"
ENV_FILE=/etc/cloudmgr/cloudmgr.env
export DEBIAN_FRONTEND=noninteractive

say() { printf '[cloudmgr-provision] %s\n' "$*"; }

say "packages: PostgreSQL, Python 3.11 (python3 runs the secrets one-liners below)"
apt-get install -y -qq postgresql python3 python3.11-venv python3.11-dev gcc >/dev/null
systemctl enable --now postgresql

say "user, directories, code in $APP"
id cloudmgr >/dev/null 2>&1 || useradd --system --home "$STATE" --shell /usr/sbin/nologin cloudmgr
install -d -m 0750 -o cloudmgr -g cloudmgr "$STATE" "$STATE/ansible"
install -d -m 0750 -o root -g cloudmgr /etc/cloudmgr /etc/openstack
[ -e "$APP" ] || ln -s "$SRC" "$APP"

say "virtualenv"
if [ ! -x "$APP/.venv/bin/cloudmgr" ] || [ "$SRC/requirements.txt" -nt "$APP/.venv/.installed" ]; then
    python3.11 -m venv "$APP/.venv"
    "$APP/.venv/bin/pip" install -q --upgrade pip
    "$APP/.venv/bin/pip" install -q -r "$SRC/requirements.txt"
    "$APP/.venv/bin/pip" install -q --no-deps -e "$SRC"
    touch "$APP/.venv/.installed"
fi

say "PostgreSQL role and database"
DB_PASSWORD_FILE=/etc/cloudmgr/db-password
if [ ! -s "$DB_PASSWORD_FILE" ]; then
    (umask 077 && python3 -c 'import secrets; print(secrets.token_hex(16))' >"$DB_PASSWORD_FILE")
fi
DB_PASSWORD="$(cat "$DB_PASSWORD_FILE")"
sudo -u postgres psql -q -v ON_ERROR_STOP=1 <<SQL
DO \$\$ BEGIN
  IF NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'cloudmgr') THEN
    CREATE ROLE cloudmgr LOGIN PASSWORD '$DB_PASSWORD';
  ELSE
    ALTER ROLE cloudmgr PASSWORD '$DB_PASSWORD';
  END IF;
END \$\$;
SQL
if ! sudo -u postgres psql -tAc "SELECT 1 FROM pg_database WHERE datname = 'cloudmgr'" | grep -q 1; then
    sudo -u postgres createdb -O cloudmgr cloudmgr
fi

say "clouds.yaml of the lab -> /etc/openstack/clouds.yaml"
install -m 0640 -o root -g cloudmgr "$LAB_DIR/clouds.yaml" /etc/openstack/clouds.yaml

say "$ENV_FILE"
if [ ! -s "$ENV_FILE" ]; then
    SECRET="$(python3 -c 'import secrets; print(secrets.token_hex(32))')"
    sed -e "s|^CLOUDMGR_SECRET_KEY=.*|CLOUDMGR_SECRET_KEY=$SECRET|" \
        -e "s|^CLOUDMGR_DATABASE_URL=.*|CLOUDMGR_DATABASE_URL=postgresql+psycopg://cloudmgr:$DB_PASSWORD@127.0.0.1:5432/cloudmgr|" \
        -e "s|^CLOUDMGR_PUBLIC_URL=.*|CLOUDMGR_PUBLIC_URL=http://127.0.0.1:8000|" \
        -e "s|^CLOUDMGR_SESSION_COOKIE_SECURE=.*|CLOUDMGR_SESSION_COOKIE_SECURE=false|" \
        -e "s|^CLOUDMGR_BIND=.*|CLOUDMGR_BIND=0.0.0.0:8000|" \
        -e "s|^CLOUDMGR_WEB_WORKERS=.*|CLOUDMGR_WEB_WORKERS=2|" \
        "$SRC/deploy/systemd/cloudmgr.env.example" >"$ENV_FILE.new"
    install -m 0640 -o root -g cloudmgr "$ENV_FILE.new" "$ENV_FILE"
    rm -f "$ENV_FILE.new"
fi

say "systemd units"
install -m 0644 "$SRC"/deploy/systemd/cloudmgr-*.service /etc/systemd/system/
systemctl daemon-reload
systemctl enable cloudmgr-migrate cloudmgr-web cloudmgr-scheduler
systemctl restart cloudmgr-migrate

say "organisation, clouds sync, quotas, first admin"
run_cli() {  # the cloudmgr command as the services run it (user, environment file)
    # shellcheck disable=SC2016
    sudo -u cloudmgr bash -c 'set -a; . "$1"; set +a; shift; exec "$@"' _ "$ENV_FILE" "$APP/.venv/bin/cloudmgr" "$@"
}
cd "$STATE"
run_cli org import
run_cli clouds sync || say "WARNING: clouds sync reported problems (see above)"
run_cli quotas apply || say "WARNING: quotas apply reported problems (see above)"
if [ ! -s /etc/cloudmgr/admin-password ]; then
    ADMIN_PASSWORD="Vg-$(python3 -c 'import secrets; print(secrets.token_urlsafe(12))')"
    run_cli users create admin --role admin --password "$ADMIN_PASSWORD"
    (umask 077 && echo "$ADMIN_PASSWORD" >/etc/cloudmgr/admin-password)
    say "admin password in /etc/cloudmgr/admin-password"
fi

systemctl restart cloudmgr-web cloudmgr-scheduler
for _ in $(seq 60); do
    curl -fsS http://127.0.0.1:8000/healthz >/dev/null 2>&1 && break
    sleep 1
done
curl -fsS http://127.0.0.1:8000/healthz >/dev/null || { journalctl -u cloudmgr-web -n 50 --no-pager; exit 1; }
say "cloudmgr is up: http://127.0.0.1:8000 (forwarded to the host), scheduler: systemctl status cloudmgr-scheduler"
