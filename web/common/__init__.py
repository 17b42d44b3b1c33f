"""Web code shared by more than one audience: the forms base and the self-service forms, the page
helpers (requests, purchases, the programme, capacity), labels and display filters, the header
navigation, the cached request lists, the runbook JSON.  It imports ``web.core``, never an
audience's package (``web.portal``, ``web.operations``, ``web.finance``, ``web.admin``,
``web.api``, ``web.auth``).
"""
