"""Logging in: local accounts, Keystone and LDAP backends, role mapping, password policy, lock-out.

``services.login`` is the one entry point the web layer calls.  Local accounts are checked
against their password hash; an account that is not local (or an unknown username) is
tried against the configured external backends (``CLOUDMGR_LOGIN_BACKENDS``), whose
roles/groups and domain are mapped to a cloudmgr role and department by the mapping file
(``CLOUDMGR_IDENTITY_MAPPING_FILE``).  The first external login creates the local user
record, marked external in ``external_identities``; later logins update it.
"""
