"""Why an upgrade was refused with HTTP 403, read from its body (protocol.md §1.4, §8.2 item 5).

The simulator's refusal body is one line naming the reason (``Forbidden: unknown
deploymentId``, ``Forbidden: origin not allowed``); a real server's body may name it too, or
say nothing useful. A body that names a cause gives that cause and its fix; any other 403
gives both candidates (protocol.md §9 rows 1-2). Used by the report's diagnosis and by
``harness probe``, so the two always agree.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


@dataclass(frozen=True, slots=True)
class RefusalCause:
    """One cause of a refused upgrade: a short key, what it means, the fix, the docs link."""

    key: str
    cause: str
    fix: str
    docs: str


UNKNOWN_DEPLOYMENT = RefusalCause(
    "unknown_deployment",
    "deploymentId unknown (wrong, deleted, inactive, or from another region or org)",
    "copy the id from the Messenger deployment and use that region's webmessaging host",
    "docs/troubleshooting.md#unknown-deploymentid",
)
MISSING_DEPLOYMENT = RefusalCause(
    "missing_deployment",
    "no deploymentId in the URL",
    "add ?deploymentId=<Messenger deployment id> to the /v1 URL",
    "docs/troubleshooting.md#unknown-deploymentid",
)
ORIGIN_NOT_ALLOWED = RefusalCause(
    "origin_not_allowed",
    "Origin not allowed by the deployment's allowed domains",
    "add the site's domain to the deployment, or send an allowed Origin (--origin)",
    "docs/troubleshooting.md#origin-not-allowed",
)
#: A 403 whose body names neither cause.
FORBIDDEN = RefusalCause(
    "unnamed",
    "deploymentId unknown or Origin not allowed (the response body names neither)",
    "check the deploymentId and region, then the deployment's allowed domains and --origin",
    "docs/troubleshooting.md#http-403-on-the-upgrade",
)

_NAMED: tuple[tuple[re.Pattern[str], RefusalCause], ...] = (
    (re.compile(r"missing\s+deployment\s*id|no\s+deployment\s*id", re.I), MISSING_DEPLOYMENT),
    (
        re.compile(
            r"(unknown|invalid|inactive)\s+deployment\s*id"
            r"|deployment\s*id\s+(is\s+)?(unknown|invalid|inactive|not\s+found)",
            re.I,
        ),
        UNKNOWN_DEPLOYMENT,
    ),
    (re.compile(r"origin\s+(is\s+)?not\s+allowed|disallowed\s+origin", re.I), ORIGIN_NOT_ALLOWED),
)


def forbidden_cause(body: str | None) -> RefusalCause:
    """The cause a 403 body names (or the recorded detail that quotes it), else FORBIDDEN."""
    text = body or ""
    for pattern, cause in _NAMED:
        if pattern.search(text):
            return cause
    return FORBIDDEN
