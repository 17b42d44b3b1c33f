"""Quotas as code: files in quotas/, one ledger across all clouds, plan/apply, drift, change requests."""
