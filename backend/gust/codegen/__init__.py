"""Code generated from the backend for other parts of the project (the frontend's types)."""
