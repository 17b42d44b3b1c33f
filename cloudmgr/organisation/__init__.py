"""The organisation: the "1+14+N" clouds, the departments that use them, and the people."""
