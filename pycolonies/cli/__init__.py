"""The ``colonies`` command line."""
