"""Test-suite settings.

Hypothesis draws the same examples on every run (derandomize), so a CI run is
reproducible; set HYPOTHESIS_RANDOM=1 to explore new examples locally.
"""

from __future__ import annotations

import os

import pytest
from hypothesis import settings

settings.register_profile("reproducible", derandomize=True)
settings.register_profile("explore", derandomize=False)
settings.load_profile("explore" if os.environ.get("HYPOTHESIS_RANDOM") else "reproducible")


def pytest_addoption(parser: pytest.Parser) -> None:
    parser.addoption(
        "--update-goldens",
        action="store_true",
        default=False,
        help="rewrite the golden files under tests/golden/ from the current output instead of comparing",
    )
