"""File-bytes adapters: ports/file_storage.py on a directory or on MongoDB GridFS."""
