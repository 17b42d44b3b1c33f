"""The self-service catalog: what each cloud offers, under which names, at which monthly price."""
