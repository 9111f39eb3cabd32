"""A model in an artifact store: its URL, and its MLmodel read from metadata only."""
