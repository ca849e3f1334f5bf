"""The control plane: registering blueprints, immutable revisions, Debezium connectors."""
