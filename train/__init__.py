"""webmill.train stage."""
