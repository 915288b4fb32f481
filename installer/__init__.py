"""Installer for the graphile_worker job queue schema: python -m installer --help."""
