"""The broker's domain: synchronous and deterministic."""
