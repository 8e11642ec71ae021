"""Coverage-guided fuzz targets (atheris) for Roost's decoder and connection state machine."""
