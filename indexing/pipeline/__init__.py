"""The indexing pipeline: Kafka -> validate -> dedupe -> document writer -> bulk, dead letters."""
