"""What a blueprint declares: event contract, documents, sources, sidecar, dependencies, indices."""
