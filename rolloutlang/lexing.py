"""lark's contextual lexer, reading most tokens with one scanner instead of one per parser state.

lark's contextual lexer gives each parser state a scanner of only the
terminals that state accepts, and compiles each one the first time it is
used: about 50 regular expressions for a small file, two thirds of the time
`rollout check` spends parsing it.  Here every token is first read with the
scanner of all terminals, which is compiled once.  That token stands when the
state accepts both the terminal the scanner matched and the type that
terminal became (a word becomes a keyword only where the keyword is
accepted); otherwise the state's own scanner reads it again, as lark would.

Why that is the same token: lark tries terminals in one fixed order (priority,
then longest pattern) and takes the first that matches, and a state's scanner
tries a subset of them in that same order.  If the first terminal matching in
the whole order is in the subset, no terminal of the subset comes before it
and matches, so the state's scanner takes it too, with the same text.  Ignored
terminals (spaces, comments) are in every state's subset, so they are skipped
alike.  `tests/test_syntax.py` checks the two lexers against each other on the
examples and on the fuzzer's inputs.
"""

from __future__ import annotations

import importlib
from collections.abc import Callable, Iterator
from typing import Any


def read_with_one_scanner(parser: Any) -> None:
    """Make the built ``lark.Lark`` parser lex with one scanner first (see the module's docstring)."""
    from lark.exceptions import UnexpectedCharacters
    from lark.lexer import ContextualLexer

    unexpected_token: Any = importlib.import_module("lark.exceptions").UnexpectedToken  # untyped in lark
    frontend = parser.parser
    found = getattr(frontend.lexer, "lexer", frontend.lexer)  # inside lark's post-lexer connector
    if type(found) is not ContextualLexer or getattr(found.root_lexer, "user_callbacks", None):
        return  # not the lexer this reasoning is about: lark's own is right, only slower
    contextual: Any = found  # lark's lexers are typed by their abstract base, without these attributes
    root: Any = contextual.root_lexer
    _ = root.scanner  # built now, so its callbacks exist to be wrapped
    last_raw: list[Any] = [None, None]  # (start, terminal) of the last token a callback retyped

    def recording(callback: Callable[[Any], Any]) -> Callable[[Any], Any]:
        def retype(token: Any) -> Any:
            last_raw[0], last_raw[1] = token.start_pos, token.type
            return callback(token)
        return retype

    root.callback = {name: recording(callback) for name, callback in root.callback.items()}
    accepted: dict[int, frozenset[str]] = {}

    def lex(lexer_state: Any, parser_state: Any) -> Iterator[Any]:
        try:
            while True:
                lexer = contextual.lexers[parser_state.position]
                accepts = accepted.get(id(lexer))
                if accepts is None:
                    accepts = accepted[id(lexer)] = frozenset(t.name for t in lexer.terminals)
                counter, last_token = lexer_state.line_ctr, lexer_state.last_token
                at = (counter.char_pos, counter.line, counter.column, counter.line_start_pos)
                try:
                    token = root.next_token(lexer_state, parser_state)
                except UnexpectedCharacters:
                    token = None
                if token is not None and token.type in accepts:
                    matched = last_raw[1] if last_raw[0] == token.start_pos else token.type
                    if matched in accepts:
                        yield token
                        continue
                # Back to where this token began; the state's own scanner reads it, as lark would.
                counter.char_pos, counter.line, counter.column, counter.line_start_pos = at
                lexer_state.last_token = last_token
                last_raw[0] = None
                yield lexer.next_token(lexer_state, parser_state)
        except EOFError:
            pass
        except UnexpectedCharacters as exc:
            # As lark's contextual lexer: a terminal defined but not expected here is an unexpected token.
            previous = lexer_state.last_token
            try:
                token = root.next_token(lexer_state, parser_state)
            except UnexpectedCharacters:
                raise exc from None
            raise unexpected_token(token, exc.allowed, state=parser_state, token_history=[previous],
                                  terminals_by_name=root.terminals_by_name) from None

    contextual.lex = lex
