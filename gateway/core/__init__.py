"""The core every other package builds on: events, errors, clock, ports. Standard library only."""
