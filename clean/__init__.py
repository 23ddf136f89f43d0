"""webmill.clean stage."""
