"""The imperative shell: bytes -> protocol -> auth/core, timers, startup and shutdown."""
