"""softphone: a command-line SIP softphone and call-test tool.

The package is layered as docs/DESIGN.md describes: a sans-IO core (``sip``, later ``sdp`` and
``rtp``) that only turns bytes and timer ticks into events and bytes, thin asyncio adapters,
the user-agent engine (the public Python API) and the CLI on top.
"""

__version__ = "0.1.0"
