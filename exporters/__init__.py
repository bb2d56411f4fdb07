"""Where route observations go: PostgreSQL (the default) and JSON lines."""
