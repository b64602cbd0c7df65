"""Running for years: health, systemd notify, the control socket, logs, periodic tests."""
