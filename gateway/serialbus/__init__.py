"""The domain side of the serial node bus: frame handling logic, the node registry, enrolment."""
