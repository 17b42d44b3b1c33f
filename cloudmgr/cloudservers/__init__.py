"""A stored mirror of each cloud's servers (issue 20, province scale).

A province cloud holds tens of thousands of servers: listing them all on every reconcile costs
about a minute and grows with the cloud.  :func:`~cloudmgr.cloudservers.services.sync_cloud_servers`
keeps a table of them instead: a full sync streams the listing page by page (memory flat in the
number of servers), a delta sync asks Nova only for what changed since the last one
(``changes-since``, deletions included), and readers (the reconcile job) read the table.
"""
