"""detect-secrets' pattern plugins (Yelp's ``detect-secrets``: AWS, Azure, Stripe, Twilio,
SendGrid, npm, PyPI, Telegram, Discord, Mailchimp, Square, Artifactory, private keys...)
run on RE2 instead of Python's backtracking ``re``.

Each plugin's patterns are recompiled with RE2; a pattern RE2 cannot run (look-around)
is left out, and ``secrets.py``'s own detectors cover those kinds. Their entropy and
keyword plugins are not used: they report values, not where they are, and flag short hex
words in prose; ``secrets.py`` has a bounded high-entropy ``key=value`` check instead.
"""

from __future__ import annotations

import logging
import re

import re2

from portway.guardrails.spans import Detector

logger = logging.getLogger(__name__)


def _kind(secret_type: str) -> str:
    """``"AWS Access Key"`` -> ``"AWS_ACCESS_KEY"``."""
    return "_".join(re.findall(r"[A-Za-z0-9]+", secret_type)).upper()


def _compiled(pattern: re.Pattern[str]) -> object | None:
    if pattern.flags & re.VERBOSE:
        return None
    prefix = "(?i)" if pattern.flags & re.IGNORECASE else ""
    options = re2.Options()
    options.log_errors = False
    try:
        return re2.compile(prefix + pattern.pattern, options)
    except re2.error:
        return None


def detect_secrets_detectors() -> tuple[Detector, ...]:
    """One detector per usable detect-secrets pattern (none when it is not installed)."""
    try:
        from detect_secrets.core.plugins.util import get_mapping_from_secret_type_to_class
        from detect_secrets.plugins.base import RegexBasedDetector
    except ImportError:
        logger.warning(
            "detect-secrets is not installed: the secrets guardrail uses its own patterns only"
        )
        return ()
    detectors: list[Detector] = []
    skipped = 0
    for secret_type, plugin in sorted(get_mapping_from_secret_type_to_class().items()):
        if not issubclass(plugin, RegexBasedDetector):
            continue
        for pattern in plugin.denylist:
            compiled = _compiled(pattern)
            if compiled is None:
                skipped += 1
                continue
            detectors.append(Detector(_kind(secret_type), compiled))
    logger.debug("detect-secrets: %d patterns on RE2, %d left out", len(detectors), skipped)
    return tuple(detectors)
