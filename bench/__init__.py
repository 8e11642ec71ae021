"""Roost vs mosquitto benchmark: load generator, broker runners, report (`make bench`)."""
