"""Scheduling: assignment with long-poll wake-ups (and, later, deadlines and graph resolution)."""
