"""What scrapy's retry middleware lacks: exponential backoff between retries."""

from __future__ import annotations

import asyncio

from scrapy.downloadermiddlewares.retry import RetryMiddleware


class BackoffRetryMiddleware(RetryMiddleware):
    """scrapy's retries (5xx, timeouts, dropped connections), each waiting twice as long as the last."""

    def _retry(self, request, reason):
        new = super()._retry(request, reason)
        if new is not None:
            base = self.crawler.settings.getfloat("WEBMILL_RETRY_BACKOFF", 0.25)
            new.meta["wm_backoff"] = base * 2 ** (new.meta.get("retry_times", 1) - 1)
        return new


class BackoffDelayMiddleware:
    """Waits out a retry's backoff before the request is queued for download."""

    async def process_request(self, request, spider=None):
        delay = request.meta.pop("wm_backoff", 0)
        if delay:
            await asyncio.sleep(delay)
        return None
