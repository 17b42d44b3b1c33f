"""cloudmgr: consolidation and self-service for a province's government clouds ("1+14+N").

The one rule every part of this package follows
================================================

A function of ``cloudmgr`` is one of two kinds, and says which by its signature:

* **A service works in the caller's session.**  It takes ``session`` (and the ``Actor`` who
  acts), reads and writes the database through it, decides every rule itself (who may, the
  classified rule, quotas, states) and never calls a cloud, Ansible or any other host.  It
  never commits: the caller's unit of work commits once, at its boundary (a web request, a
  CLI command, a job).  Pages and the API ask services what an actor may do (``may_*``);
  they never decide it themselves.

* **A job owns its units of work.**  It takes the ``Database`` (and the providers and
  settings it needs), opens short units of work of its own, and talks to clouds and hosts
  only *between* them, never while a transaction is open.  Jobs are what the scheduler and
  the work queue run, and what the CLI runs for operator actions that are jobs by nature.

Every side effect on a cloud or a host is a **work item** (:mod:`cloudmgr.workqueue`) that a
service writes in the same transaction as the change that causes it; a job runs it after the
commit, idempotently (servers carry idempotency keys), retried with backoff, taken over by
another worker when its lease expires.  So nothing reaches a cloud for a change that rolled
back, and nothing is lost when a process dies.

Who acts is always an :class:`~cloudmgr.organisation.actor.Actor`.  The process-wide runtime
(:func:`cloudmgr.runtime.get_runtime`) is read only by entry points (CLI commands, jobs and
work handlers, the scheduler); services get what they need as arguments.  ``cloudmgr`` never
imports ``web``.  ``tests/test_architecture.py`` checks what of this a test can check.
"""

__version__ = "0.1.0"
