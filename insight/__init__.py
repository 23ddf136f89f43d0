"""Corpus statistics, the HTML report and SQL over the root."""
