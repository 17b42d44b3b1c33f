"""The work queue: side effects recorded in the same transaction as the decision that
causes them (a transactional outbox), then run by the scheduler's workers.

A work item is claimed with a lease; a worker that dies leaves its lease to expire and
another worker (or the restarted one) takes the item over.  Handlers are idempotent, so
running an item twice is safe.
"""
