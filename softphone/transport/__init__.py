"""asyncio adapters that move bytes between sockets and the sans-IO core, and RFC 3263."""
