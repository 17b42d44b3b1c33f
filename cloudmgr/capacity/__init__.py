"""Capacity against the target server counts, and the consolidation planner (``planner``)."""
