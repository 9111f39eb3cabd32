"""Typed settings, built once and passed down: groups, KServe serving options, placement."""
