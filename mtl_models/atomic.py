"""Moved to probes.atomic; kept until every import says so."""

from probes.atomic import staging_dir, write_bytes, write_json, write_npz  # noqa: F401
