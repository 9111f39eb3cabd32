"""Converted layouts in the artifact store: writing them (convert) and removing unused ones (gc)."""
