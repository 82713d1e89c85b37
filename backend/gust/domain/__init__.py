"""Domain: plain data types and errors shared by every layer."""
