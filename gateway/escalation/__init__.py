"""Escalation of alarms to the police hotline (SPEC §4).

``model`` holds the sans-I/O wire model (the request body, its signature, the retry rules,
the delivery result); ``http`` is the thin adapter that does the POSTs off the event loop.
"""
