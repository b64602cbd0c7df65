"""Features: the parts the composition root adds after the spine, each one builder.

A builder is an async callable taking the :class:`~gateway.app.Gateway` and adding its
inputs, processors, control commands, tasks and closers. They are imported here as callables
(``BUILDERS`` in :mod:`gateway.features.builders`), so the import graph shows every wire;
each does nothing unless its config section enables it.
"""
