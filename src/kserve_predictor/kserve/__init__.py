"""KServe and Kubernetes: manifests as pure functions, pure readings of an InferenceService,
the readiness rule, release differences, ownership, and the API client."""
