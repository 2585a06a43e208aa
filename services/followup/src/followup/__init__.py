"""Followup: periodic prompts to caseworkers while a child is missing and after return."""
