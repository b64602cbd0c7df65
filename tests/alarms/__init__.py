"""Alarm, command and escalation tests."""
