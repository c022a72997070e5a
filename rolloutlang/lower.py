"""The lowering pass's former home, kept so that `rolloutlang.lower` still imports: see :mod:`rolloutlang.lowering`."""

from __future__ import annotations

from rolloutlang.lowering import *  # noqa: F403
from rolloutlang.lowering import __all__ as __all__
