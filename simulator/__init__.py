"""Simulated hardware for tests, demos and technicians: serial button nodes on a pty."""
