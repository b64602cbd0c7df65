"""The journal: the SQLite store and its writer thread, the recorder, the read side."""
