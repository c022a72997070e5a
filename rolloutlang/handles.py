"""What the names of people, chat channels and container images look like.

These strings leave the spec: approvers become the required reviewers of a CI
environment, channels receive failure notices, and the pipeline image is what
the generated CI jobs run in.  They are identifiers, so the lowering pass
accepts only identifier characters (never quotes, `$`, backticks, braces or
whitespace), and the targets still pass them on as quoted data.
"""

from __future__ import annotations

import re

MAX_LENGTH = 255

# "@recs-leads", "@org/team", "platform/ml-leads" (a GitLab group and subgroup), "alice".
_SEGMENT = r"[A-Za-z0-9_][A-Za-z0-9_.-]*"
_HANDLE = re.compile(rf"@?{_SEGMENT}(?:/{_SEGMENT})*")
# "#recs-ml-oncall", "@oncall", "ml-alerts@example.com", "teams/ml/oncall".
_CHANNEL = re.compile(r"[#@]?[A-Za-z0-9_][A-Za-z0-9_.@+/-]*")

# An OCI image reference without a digest, as in distribution/reference:
# [host[:port]/]path[/path...][:tag], path components in lower case.
_HOST = r"[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?(?:\.[A-Za-z0-9](?:[A-Za-z0-9-]*[A-Za-z0-9])?)*(?::[0-9]+)?"
_COMPONENT = r"[a-z0-9]+(?:(?:[._]|__|-+)[a-z0-9]+)*"
_IMAGE = re.compile(rf"(?:{_HOST}/)?{_COMPONENT}(?:/{_COMPONENT})*(?::[A-Za-z0-9_][A-Za-z0-9_.-]{{0,127}})?")
# "name@sha256:<hex>": a digest written inside the reference.
_DIGEST_SUFFIX = re.compile(r"@([a-z][a-z0-9]*:[0-9A-Za-z]+)$")

HANDLE_HELP = ('write a user or team handle such as "@recs-leads" or "@org/team": letters, digits, `.`, `_`, `-`, '
               "and `/` between a group and its subgroup")
CHANNEL_HELP = ('write a channel such as "#recs-ml-oncall", or a handle such as "@oncall": letters, digits, `.`, '
                "`_`, `-`, `@`, `+` and `/`")


def is_handle(text: str) -> bool:
    """A user, team or group handle an approval can name."""
    return len(text) <= MAX_LENGTH and _HANDLE.fullmatch(text) is not None


def is_channel(text: str) -> bool:
    """A chat channel or handle a notice can go to."""
    return len(text) <= MAX_LENGTH and _CHANNEL.fullmatch(text) is not None


def is_image_reference(text: str) -> bool:
    """An image reference without a digest: `registry.example.com/ml/rollout-ci` or `python:3.12-slim`."""
    return len(text) <= MAX_LENGTH and _IMAGE.fullmatch(text) is not None


def split_digest(reference: str) -> tuple[str, str | None]:
    """`name@sha256:...` -> (`name`, `sha256:...`); a reference without a digest -> (reference, None)."""
    m = _DIGEST_SUFFIX.search(reference)
    if m is None:
        return reference, None
    return reference[: m.start()], m.group(1)
