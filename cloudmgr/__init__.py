"""cloudmgr: consolidation and self-service for a province's government clouds ("1+14+N")."""

__version__ = "0.1.0"
