"""SIA DC-09 (SPEC §7): the gateway reports to alarm receiving centres over TCP.

``codec`` builds ``SIA-DCS`` and ``NULL`` messages and reads the receiver's answers without
touching a socket; ``codes`` maps the gateway's events to SIA DC-03 codes; ``link`` is the
thin asyncio TCP adapter (one exchange per connection, ACK / NAK / DUH, backoff);
``sequence`` keeps the message numbers durable in the journal. Details: ``docs/dc09.md``.
"""
