"""Choosing how a model is served: detection, the runtime KServe picks, what the runtime image
holds, and whether it will load and answer (compatibility). Metadata only, nothing executed."""
