"""Durability behind interfaces: memory (reference) now, SQLite next."""
