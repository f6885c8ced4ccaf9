"""Allows ``python -m softphone``."""

from softphone.cli.main import main

main()
