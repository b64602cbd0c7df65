"""MicroPython firmware of the serial button node, and the host shim that runs it under CPython."""
