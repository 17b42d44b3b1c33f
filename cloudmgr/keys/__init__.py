"""SSH public keys of department staff, for logging in to the servers they request (issue 16).

A department user keeps named OpenSSH public keys (RSA of at least 2048 bits, ECDSA on the
NIST curves, Ed25519); :func:`cloudmgr.keys.services.key_for_request` hands one of them, owner
checked, to the request that puts it on a new server.  A private key pasted by mistake is
refused and never stored, logged or shown back.
"""
