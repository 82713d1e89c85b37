"""Bus adapters: in-process (default) and Redis Streams."""
