"""webmill.crawl stage."""
