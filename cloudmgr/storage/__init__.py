"""A department's data volumes and public addresses after provisioning (issue 16): the web, the
CLI and other packages use :mod:`cloudmgr.storage.services`; :mod:`cloudmgr.storage.jobs` runs
the cloud side of each change as a work item."""
