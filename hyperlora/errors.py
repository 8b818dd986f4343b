"""Errors a user can cause and fix. The CLI prints these as one line, without a traceback."""


class HyperLoRAError(Exception):
    """Bad input: a missing or malformed file, a checkpoint for another base, an existing output dir."""
