"""The cloud programme (issue 6): migration waves and tracking progress against the deadlines.

``models`` holds the waves, their members and the daily snapshots; ``services`` the wave
state machine (draft → checked → running → done | cancelled); ``fit`` the wave check (quota
headroom per department, free capacity of the target cloud); ``tracking`` the programme's
figures (progress, burndown, overdue and at-risk systems, server rooms closed); ``config``
reads ``etc/programme.yaml``; ``jobs`` the daily snapshot, the reminders and wave completion.
"""
