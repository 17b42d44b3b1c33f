# cloudmgr: the two commands of the README, and the lab.
#   make run   set up, migrate, load the demo, serve http://127.0.0.1:8000 (simulated cloud)
#   make test  set up, start the lab OpenStack (and PostgreSQL if none is named), run ruff, mypy and the whole suite

SHELL := /bin/bash
PYTHON ?= python3.11
VENV := .venv
PY := $(VENV)/bin/python
UV := $(VENV)/bin/uv
STAMP_RUN := $(VENV)/.installed-run
STAMP_DEV := $(VENV)/.installed-dev
# Compiled modules are kept, under the venv (not beside the sources): without them every Python process
# (each CLI run and web or scheduler process a test starts, ansible-playbook, the lab's OpenStack
# services) compiled every module it imports anew, ~4 s of CPU a start (tests/test_cli.py: 82 -> 49 s).
# Machines that set PYTHONDONTWRITEBYTECODE (this kind does) would otherwise never keep them.
unexport PYTHONDONTWRITEBYTECODE
export PYTHONPYCACHEPREFIX := $(CURDIR)/$(VENV)/pycache

.PHONY: run test venv dev-venv system-deps lab-up lab-down lab-scale-reset lab-status lint typecheck pytest bench clean

$(VENV)/bin/python:
	@command -v $(PYTHON) >/dev/null || { echo "need $(PYTHON) (Python 3.11)"; exit 1; }
	$(PYTHON) -m venv $(VENV)
	$(VENV)/bin/pip install --quiet --disable-pip-version-check uv

$(STAMP_RUN): requirements.txt pyproject.toml | $(VENV)/bin/python
	$(UV) pip install --quiet --python $(PY) -r requirements.txt
	$(UV) pip install --quiet --python $(PY) --no-deps -e .
	touch $@

$(STAMP_DEV): requirements-dev.txt $(STAMP_RUN)
	$(UV) pip install --quiet --python $(PY) -r requirements-dev.txt
	touch $@

venv: $(STAMP_RUN)
dev-venv: $(STAMP_DEV)

# The province demo (CLOUDMGR_DEMO, cloudmgr/config.py): province-sized simulated clouds, legacy hosts that
# are directories under the instance folder (a wave runs end to end without root), the programme mid-way.
run: export CLOUDMGR_DEMO ?= $(if $(filter openstack,$(CLOUDMGR_CLOUD_PROVIDER)),0,1)
run: venv
	$(VENV)/bin/cloudmgr db upgrade
	$(VENV)/bin/cloudmgr seed-demo --no-logins
	$(VENV)/bin/cloudmgr clouds sync
	$(VENV)/bin/cloudmgr quotas apply
	$(VENV)/bin/cloudmgr inventory import --only-new inventory/legacy.yml
	$(VENV)/bin/cloudmgr programme seed-demo
	$(VENV)/bin/cloudmgr lines seed-demo
	@$(VENV)/bin/cloudmgr demo-logins
	$(VENV)/bin/cloudmgr serve

# Debian packages the tests drive: Chromium (pages), CJK fonts (screenshots), sshd and rsync (Ansible test hosts),
# prometheus (promtool checks and unit-tests deploy/prometheus/alerts.yml).
system-deps:
	@missing=""; \
	for pkg in chromium fonts-noto-cjk openssh-server openssh-client iproute2 rsync slapd ldap-utils prometheus; do \
	  dpkg -s $$pkg >/dev/null 2>&1 || missing="$$missing $$pkg"; \
	done; \
	if [ -n "$$missing" ]; then \
	  echo "installing:$$missing"; \
	  apt-get update -qq && DEBIAN_FRONTEND=noninteractive apt-get install -y -qq $$missing >/dev/null; \
	fi

# The lab: two clouds, the province's (cloudmgr-lab) and a city's (cloudmgr-lab-city), in .lab/clouds.yaml.
# LAB_CLOUDS=province make lab-up starts the province's alone; make test starts both (below).
lab-up:
	bash vagrant/lab/up.sh

lab-down:
	bash vagrant/lab/down.sh

# The scale cloud (cloudmgr-lab-scale: 200 hypervisors, 2,500 servers) starts with
# LAB_CLOUDS=scale make lab-up, never for the tests; this puts back its saved servers.
lab-scale-reset:
	bash vagrant/lab/scale.sh reset

lab-status:
	bash vagrant/lab/status.sh

lint: dev-venv
	$(VENV)/bin/ruff check cloudmgr web tests benchmarks
	$(VENV)/bin/ruff format --check cloudmgr web tests benchmarks

typecheck: dev-venv
	$(VENV)/bin/mypy

pytest: dev-venv
	$(PY) -m pytest $(PYTEST_ARGS)

# Every database test runs on SQLite and PostgreSQL: on the server CLOUDMGR_TEST_DATABASE_URL names,
# or else on a throwaway cluster of the test run's own (tests/with-postgres.sh).
# Workers: one per core, at most 4; the tests that share the lab or the test hosts run in one of them.
TEST_WORKERS ?= auto
# (the lab's tests use both clouds: whatever LAB_CLOUDS says, lab-up starts both for them)
test: export LAB_CLOUDS = province city
test: dev-venv system-deps lab-up lint typecheck
	bash tests/with-postgres.sh $(PY) -m pytest -n $(TEST_WORKERS) --maxprocesses 4 --dist loadgroup $(PYTEST_ARGS)

bench: dev-venv lab-up
	$(PY) benchmarks/adapter_overhead.py
	$(PY) benchmarks/usable_vms.py

clean:
	rm -rf $(VENV) instance test-artifacts .pytest_cache .mypy_cache .ruff_cache
