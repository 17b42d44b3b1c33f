#!/usr/bin/env bash
# Creates the lab virtualenv with real OpenStack services (from PyPI) and the
# lab's own ML2 mechanism driver. Idempotent: a stamp file records what was
# installed; a re-run with the same set returns at once.
set -euo pipefail
. "$(dirname "${BASH_SOURCE[0]}")/common.sh"

PYTHON="${LAB_PYTHON:-python3.11}"
PKGS=(
    "keystone==30.0.0"
    "openstack-placement==16.0.0"
    "nova==34.0.0"
    "glance==33.0.0"
    "neutron==29.0.0"
    "cinder==29.0.0"
    "oslo.messaging==18.3.1"
    "SQLAlchemy==2.1.9"
    "PyMySQL==1.2.4"
    "gunicorn==27.0.1"
    "openstacksdk==4.22.0"
    "python-openstackclient==10.5.0"
)
apt_install() {
    export DEBIAN_FRONTEND=noninteractive
    say "install: apt-get install $*"
    apt-get update -qq && apt-get install -y -qq "$@" >/dev/null
}
# Debian: the MariaDB client (mysql, mysqldump), Python 3.11 with venv
command -v mysql >/dev/null 2>&1 && command -v mysqldump >/dev/null 2>&1 \
    || apt_install mariadb-client
if ! command -v "$PYTHON" >/dev/null 2>&1; then
    apt_install python3.11 python3.11-venv python3.11-dev gcc
fi
ML2_SRC="$LAB_SRC/cloudmgr_lab_ml2"
ml2_hash="$(cd "$ML2_SRC" && find . -type f \( -name '*.py' -o -name '*.toml' \) -print0 | sort -z | xargs -0 sha256sum | sha256sum | cut -c1-16)"
want="$(printf '%s\n' "${PKGS[@]}" "ml2=$ml2_hash" "python=$("$PYTHON" -c 'import sys;print(sys.version.split()[0])')")"
STAMP="$VENV/.cloudmgr-lab-installed"

if [ -x "$PY" ] && [ -f "$STAMP" ] && [ "$(cat "$STAMP")" = "$want" ]; then
    say "install: venv $VENV already up to date"
    exit 0
fi

t0=$(ts)
if [ ! -x "$PY" ]; then
    say "install: creating venv $VENV"
    if ! "$PYTHON" -m venv "$VENV" >/dev/null 2>&1; then
        apt_install python3.11-venv python3.11-dev gcc
        "$PYTHON" -m venv "$VENV"
    fi
fi
if [ ! -x "$VENV/bin/uv" ]; then
    "$VENV/bin/pip" install -q --disable-pip-version-check uv
fi
say "install: installing OpenStack packages into $VENV"
"$VENV/bin/uv" pip install --quiet --python "$PY" "${PKGS[@]}"
# the lab's plugins: ML2 driver, Nova fake virt driver (non-editable,
# reinstalled when their source changes)
# (built from a copy: setuptools leaves build/ and *.egg-info where it builds)
rm -rf "$LAB_ROOT/build/cloudmgr_lab_ml2" && mkdir -p "$LAB_ROOT/build"
cp -r "$ML2_SRC" "$LAB_ROOT/build/cloudmgr_lab_ml2"
rm -rf "$LAB_ROOT/build/cloudmgr_lab_ml2/build" "$LAB_ROOT/build/cloudmgr_lab_ml2"/*.egg-info
"$VENV/bin/uv" pip install --quiet --python "$PY" --reinstall-package cloudmgr-lab-ml2 "$LAB_ROOT/build/cloudmgr_lab_ml2"
PYTHONWARNINGS=ignore "$PY" - <<'PY'
import importlib.metadata as md
eps = [e.name for e in md.entry_points(group="neutron.ml2.mechanism_drivers")]
assert "cloudmgr_lab" in eps, eps
import keystone, nova, glance, neutron, cinder, placement, openstack, pymysql  # noqa
PY
# the lab's Cinder driver, in a process of its own: cinder's test package
# selects oslo.service's eventlet backend at import, and the imports above
# have selected the threading one
PYTHONWARNINGS=ignore "$PY" -c 'import cloudmgr_lab_ml2.volume' 2>/dev/null \
    || die "the lab's Cinder driver does not import (cloudmgr_lab_ml2/volume.py)"
[ -x "$VENV/bin/cloudmgr-lab-nova-compute" ] || die "cloudmgr-lab-nova-compute missing in $VENV"
echo "$want" > "$STAMP"
say "install: done in $(elapsed "$t0") s"
