"""rolloutlang: a declarative rollout language for ML models.

The pipeline reads top to bottom: source -> parse tree (``rolloutlang.syntax``)
-> IR (``rolloutlang.ir``, built by ``rolloutlang.lowering``) -> plan graph
(``rolloutlang.plan``) -> checks (``rolloutlang.checks``) -> targets | simulator.

Installed, ``grammar/``, ``simulator/`` and ``targets/`` at the top of the
repository are the sub-packages ``rolloutlang.grammar``, ``.simulator`` and
``.targets`` (pyproject maps them).  In a source checkout the same names are
symlinks in this folder, so the tree imports, and mypy checks it, exactly as
the installed package.
"""

__version__ = "0.1.0"
