"""Authentication and authorization hooks: typed Protocols returning Decision | None."""
