"""Genesys Cloud region → Guest API socket host (protocol.md §1.1, §1.2)."""

from __future__ import annotations

from typing import Final
from urllib.parse import urlencode

from harness.errors import UsageError

REGION_DOMAINS: Final = {
    "us-east-1": "mypurecloud.com",
    "us-east-2": "use2.us-gov-pure.cloud",  # FedRAMP [sources differ]
    "us-west-2": "usw2.pure.cloud",
    "ca-central-1": "cac1.pure.cloud",
    "sa-east-1": "sae1.pure.cloud",
    "eu-west-1": "mypurecloud.ie",
    "eu-west-2": "euw2.pure.cloud",
    "eu-central-1": "mypurecloud.de",
    "eu-central-2": "euc2.pure.cloud",
    "me-central-1": "mec1.pure.cloud",
    "mx-central-1": "mxc1.pure.cloud",
    "ap-south-1": "aps1.pure.cloud",
    "ap-northeast-1": "mypurecloud.jp",
    "ap-northeast-2": "apne2.pure.cloud",
    "ap-northeast-3": "apne3.pure.cloud",
    "ap-southeast-1": "apse1.pure.cloud",
    "ap-southeast-2": "mypurecloud.com.au",
}


def region_url(region: str, deployment_id: str, application: str | None = None) -> str:
    """``wss://webmessaging.<domain>/v1?deploymentId=…`` for a region name.

    Raises:
        UsageError: the region is not in the §1.2 table.
    """
    domain = REGION_DOMAINS.get(region.strip().lower())
    if domain is None:
        known = ", ".join(sorted(REGION_DOMAINS))
        raise UsageError(f"unknown region {region!r}; known: {known}")
    query = {"deploymentId": deployment_id}
    if application:
        query["application"] = application
    return f"wss://webmessaging.{domain}/v1?{urlencode(query)}"


def region_host(region: str) -> str:
    """``wss://webmessaging.<domain>`` for a region name (``eu-west-1``) or its domain
    (``mypurecloud.ie``, as the web messaging tester's scripts write it).

    Raises:
        UsageError: neither a known region nor a domain.
    """
    text = region.strip().lower()
    domain = REGION_DOMAINS.get(text)
    if domain is None:
        if "." not in text or "/" in text or ":" in text:
            known = ", ".join(sorted(REGION_DOMAINS))
            raise UsageError(f"unknown region {region!r}: use a domain or one of {known}")
        domain = text.removeprefix("webmessaging.")
    return f"wss://webmessaging.{domain}"
