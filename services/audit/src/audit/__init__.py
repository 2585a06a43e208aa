"""Audit: the append-only compliance trail of every event on every ``mfc.*`` topic."""
