"""Automated call tests: load generation (and, to come, scenario files and their runner)."""
