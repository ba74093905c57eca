"""`cqrs bench`: throughput, latency, replay and memory of each stage, on the real services."""
