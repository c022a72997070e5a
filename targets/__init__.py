"""Compilers from a checked rollout and its plan to files a platform applies, one module per target.

A target is one module here plus its templates in ``templates/<name>/``, like
a sqlglot dialect; shared pieces (the quoting filter, the template
environment, names, headers) live in :mod:`rolloutlang.targets.base`.  The
registry below names each target's class by import path, so listing targets
(for ``--help`` and did-you-mean) imports no target and no jinja2.  Adding a
target is one module, one template folder and one line here.
"""

from __future__ import annotations

import importlib
from collections.abc import Sequence
from typing import TYPE_CHECKING

if TYPE_CHECKING:
    from rolloutlang.targets.base import Target

# name -> "module:Class", in the order `--target all` compiles them.
TARGETS: dict[str, str] = {
    "argo": "rolloutlang.targets.argo:ArgoRollouts",
    "istio": "rolloutlang.targets.istio:Istio",
    "gitlab": "rolloutlang.targets.gitlab:GitLabTarget",
    "github": "rolloutlang.targets.github:GitHubTarget",
}

# Names that stand for several targets.
GROUPS: dict[str, tuple[str, ...]] = {
    "cluster": ("argo", "istio"),
    "ci": ("gitlab", "github"),
}


class UnknownTarget(ValueError):
    """A `--target` name that is neither a target nor a group; the message carries a did-you-mean."""


def target_names() -> list[str]:
    """Every registered target, in registry order."""
    return list(TARGETS)


def choices() -> list[str]:
    """What `--target` accepts: the targets, the groups, and `all`."""
    return [*TARGETS, *GROUPS, "all"]


def resolve(names: Sequence[str]) -> list[str]:
    """Expand groups and `all` into target names, keeping registry order and dropping repeats."""
    wanted: set[str] = set()
    for name in names:
        if name == "all":
            wanted.update(TARGETS)
        elif name in GROUPS:
            wanted.update(GROUPS[name])
        elif name in TARGETS:
            wanted.add(name)
        else:
            from rolloutlang.diagnostics import did_you_mean, one_of

            hint = did_you_mean(name, choices())
            raise UnknownTarget(
                f"unknown target `{name}`" + (f"; {hint}" if hint else "") + f" (targets: {one_of(choices())})"
            )
    return [name for name in TARGETS if name in wanted]


def get_target(name: str) -> Target:
    """An instance of the target registered under ``name``."""
    module_name, _, class_name = TARGETS[name].partition(":")
    cls = getattr(importlib.import_module(module_name), class_name)
    target: Target = cls()
    return target
