"""Ports: the typing.Protocols that services depend on and adapters implement."""
