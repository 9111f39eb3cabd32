"""FuseML: the core REST API client (applications)."""
