"""RTP (RFC 3550), sans-IO: packets, receiver statistics, the jitter buffer."""
