"""Firewall rules (Neutron security groups) of the servers departments request (issue 16).

Operators keep named templates of rules ("web", "ssh-admin", "db-internal"); a request picks
templates and may add rules of its own.  :func:`cloudmgr.firewall.services.resolve_rules` turns
that choice into the concrete rules of one security group (symbolic remotes resolved to the
department's admin network or its own group) and says whether an operator must approve it;
:func:`cloudmgr.firewall.services.needs_operator_approval` is the one rule about rules open to the
whole internet.  The Neutron calls come later, from a work item, through the CloudProvider.
"""
