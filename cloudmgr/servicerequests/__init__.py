"""Self-service VM requests: catalog → approval chain → quota reservation → provisioning → lifecycle."""
