"""The duty officer's wall screen: open alarms of every site, the officers' buttons, the
sites' links and today's history, live over server-sent events. ``auth`` holds accounts and
durable sessions, ``server`` the HTTP routes, ``static/`` the page (plain HTML, CSS, JS)."""
