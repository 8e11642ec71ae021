"""Worker processes on one box: the local bus between them, and their supervisor."""
