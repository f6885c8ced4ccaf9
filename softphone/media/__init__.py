"""The media engine: codecs, audio ports, the pacing clock and per-call media streams."""
