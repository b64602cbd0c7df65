"""The police receiver (``alarm-receiver``): the other end of the hospitals' hotline.

Gateways POST signed alarms to it (SPEC §4, §6); it commits each one before answering, shows
every site's open alarms on a wall screen for the duty officer, and hands what the officer did
back to the right gateway through a signed long-poll. See ``docs/receiver.md``.

``config`` reads the TOML file; ``store`` is the durable journal; ``intake`` is where alarms
come in (HTTP today, any other source through the same :class:`~receiver.intake.Intake`);
``api`` is the gateways' HTTP surface; ``screen`` the wall screen; ``supervision`` watches
each site's link; ``app`` wires them; ``cli`` is the command line.
"""
