"""Hardware adapters: serial bus, codecs."""
