"""The alarm domain, sans-I/O: lifecycle engine, model, policy, escalation plans, commands, drills."""
