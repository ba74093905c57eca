"""The write-side domain: aggregates as pure `decide`/`evolve` functions (stdlib, pydantic)."""
