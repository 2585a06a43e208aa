"""Intake: the county-facing front door. Turns reports from county systems (HTTP or
``mfc.inbound.v1``) into canonical missing-episode events on ``mfc.episodes.v1``."""
