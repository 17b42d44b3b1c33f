"""Finance review of departments' hardware purchases against what the clouds already provide (issue 7).

A department's purchase request (category, items with specs, amount, the application
system it serves) gets automatic findings when it is submitted — the cloud provides it
(a concrete flavor x count offer that fits the quota and the free capacity), no new
server rooms, duplicates, already migrating, classified exception — and a finance
reviewer approves, blocks or returns it.  Reports and the showback of cloud costs live
in ``reports.py`` and ``showback.py``.
"""
