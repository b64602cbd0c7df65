"""The monthly report: ``alarm-gateway report -c FILE --month 2026-11``.

Reads the gateway's journal read-only (safe while the gateway runs) and writes what the
hospital's security manager brings to the monthly meeting with the ward police: alarms by
ward, device and type, response times, what the police never acknowledged, the escalation
channels, device health, drills against the target, the gateway's own troubles. Domain
code: it never imports drivers or the simulator. Details: ``docs/report.md``.
"""
