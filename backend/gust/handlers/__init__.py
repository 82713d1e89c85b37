"""HTTP handlers: parse, call one service method, serialise."""
