"""gunicorn entry points for the lab's OpenStack API services.

OpenStack's WSGI modules parse sys.argv with oslo.config, and gunicorn's own
command line would be taken for theirs: clear it before importing. Each
service reads its config location from OS_<SERVICE>_CONFIG_DIR/FILES, set by
up.sh. Used as e.g. ``gunicorn 'lab_wsgi:keystone()'``.
"""

import importlib
import os
import sys


def _load(module):
    sys.argv = [sys.argv[0]]
    return importlib.import_module(module).application


def keystone():
    return _load("keystone.wsgi.api")


def placement():
    return _load("placement.wsgi.api")


def nova():
    return _load("nova.wsgi.osapi_compute")


def glance():
    return _load("glance.wsgi.api")


def neutron():
    return _load("neutron.wsgi.api")


def cinder():
    # cinder.wsgi.api reads its config files from sys.argv only (no
    # OS_*_CONFIG_* route): hand it OS_CINDER_CONFIG_FILE that way
    sys.argv = [sys.argv[0], "--config-file",
                os.environ["OS_CINDER_CONFIG_FILE"]]
    return importlib.import_module("cinder.wsgi.api").application
