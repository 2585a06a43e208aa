"""Notifier: legal deadlines (law enforcement, NCMEC) and escalation to on-call staff."""
