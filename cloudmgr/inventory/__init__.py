"""Legacy inventory: the departments' servers still in their own server rooms (issue 6).

``models`` holds the server rooms and legacy systems, ``services`` the state machine
(:func:`~cloudmgr.inventory.services.transition_system`), ``classification`` the classified
rule (:func:`~cloudmgr.inventory.classification.ensure_placeable`), ``importer`` the
all-or-nothing import of the Ansible inventory and ``assessment`` the complexity score.
"""
