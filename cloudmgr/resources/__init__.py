"""A department's resources on its clouds, read together for operators and administrators (issue
16): SSH keys, volumes, firewall groups, public addresses, snapshots, backups and schedules, with
the quota ledger's usage beside what is listed.  The web reads it through
:mod:`cloudmgr.resources.services`."""
