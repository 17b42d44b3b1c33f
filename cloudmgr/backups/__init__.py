"""Snapshots and backups of the departments' volumes, and the backup schedules the scheduler runs (issue 16)."""
