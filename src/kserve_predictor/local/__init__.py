"""The local target: an engine's layout built on this machine and served by KServe's own Python
model server (``modelserver``) on 127.0.0.1, with no cluster.

The same detection and engine layout plan as the KServe path, built in the local cache (the
model's store is only read). Modules, one job each (``target`` re-exports the entry points):
``layout`` and ``cache`` (model → layout on disk), ``registry`` (records, per-name lock),
``supervisor`` (server processes), ``network`` (address checks), ``deployment`` (deploy flow,
``serve``).

Running a model needs the ``serve`` extra (and ``tensorflow`` for TF/Keras); imports are lazy.
"""
