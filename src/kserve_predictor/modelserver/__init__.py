"""The data plane of the local target and the project runtime: a converted layout loaded the way
the engine's KServe runtime loads it, served by ``kserve.ModelServer``."""
