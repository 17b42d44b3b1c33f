"""Migration runbooks: a legacy system's move onto the cloud, step by step, with Ansible (issue 6).

``models`` holds the runs (one per system and step) and their events, ``steps`` the steps
and their playbooks, ``services`` the runner (each step through the one wrapper over
``ansible_runner.run``, :mod:`cloudmgr.automation`), ``jobs`` the work-queue handlers and
``metrics`` the step durations and rollbacks.
"""
