"""The security desk console: a small web page served by the gateway process itself.

Open alarms in big type with a sound and a flash on each new one, the actions a guard takes
(acknowledge, call the police now, resolve), device troubles, the gateway's health and
today's history, updated live over server-sent events. See ``docs/console.md``.

``gateway.features.console`` wires it into the gateway; ``service`` runs the web server; ``server`` is the HTTP surface; ``feed`` turns journal
commits into page updates; ``auth`` holds accounts, sessions and login throttling; the page
itself is plain HTML, CSS and JavaScript in ``static/``.
"""
