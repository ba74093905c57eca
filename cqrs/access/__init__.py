"""Least privilege per topic prefix on the secure services: what `cqrs access apply` grants."""
