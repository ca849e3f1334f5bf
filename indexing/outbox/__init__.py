"""The write side: emit inside the application's transaction, and the relay to Kafka."""
