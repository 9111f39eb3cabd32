"""The edges where people and tools call the product: the CLI, the FuseML step and the MLflow
deployments plugin. They parse, call one operation and render; errors are mapped here only."""
