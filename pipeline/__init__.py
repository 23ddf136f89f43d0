"""``webmill run``: every stage from seed URLs to weights as one job, each skipped when up to date."""
