"""webmill.dedup stage."""
