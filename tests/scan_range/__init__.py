"""A loopback test range for the TLS scanner: scenario certificates and servers that present them.

Used by the unit tests of ``_scan`` (tls, checks, runner) / the modules and by
``benchmarks/bench_scan.py``. Everything listens on 127.0.0.1 (and ::1 when the
machine has it) on ports the kernel picks; nothing here talks to any other address.
"""
