"""Email addresses and public IP addresses replaced by placeholders, with counts."""

from __future__ import annotations

import ipaddress
import re

EMAIL = re.compile(r"\b[A-Za-z0-9._%+-]{1,64}@(?:[A-Za-z0-9-]{1,63}\.)+[A-Za-z]{2,24}\b")
IPV4 = re.compile(r"\b(?:(?:25[0-5]|2[0-4]\d|1?\d?\d)\.){3}(?:25[0-5]|2[0-4]\d|1?\d?\d)\b")
DOTTED_QUAD = re.compile(r"\d{1,3}\.\d{1,3}\.\d{1,3}\.\d{1,3}")  # what every IPV4 match contains; a faster scan


def scrub(text: str, email_placeholder: str, ip_placeholder: str) -> tuple[str, int, int]:
    """(text, emails replaced, IPs replaced). Private and reserved IPs are not PII and stay."""
    n_email = n_ip = 0

    def email(m):
        nonlocal n_email
        n_email += 1
        return email_placeholder

    def ip(m):
        nonlocal n_ip
        try:
            if not ipaddress.ip_address(m.group(0)).is_global:
                return m.group(0)
        except ValueError:
            return m.group(0)
        n_ip += 1
        return ip_placeholder

    if "@" in text:
        text = EMAIL.sub(email, text)
    if DOTTED_QUAD.search(text):
        text = IPV4.sub(ip, text)
    return text, n_email, n_ip
