"""rolloutlang: a declarative rollout language for ML models.

The pipeline reads top to bottom: source -> parse tree (``rolloutlang.syntax``)
-> IR (``rolloutlang.ir``, built by ``rolloutlang.lower``) -> plan graph
(``rolloutlang.plan``) -> checks (``rolloutlang.checks``) -> targets | simulator.
"""

__version__ = "0.1.0"


def _map_source_tree() -> None:
    # Installed, setuptools maps grammar/, simulator/ and targets/ to
    # rolloutlang.grammar, .simulator and .targets (see pyproject.toml).  Run
    # from a source checkout (`python -m rolloutlang` in the repo root), this
    # folder is imported directly; searching the repo root for sub-packages
    # gives the same names.
    from pathlib import Path

    root = Path(__file__).resolve().parent.parent
    if (root / "grammar" / "rollout.lark").is_file() and (root / "pyproject.toml").is_file():
        __path__.append(str(root))


_map_source_tree()
