"""The rule language's parser: text → syntax tree, by a small hand-written Pratt parser (never ``eval``).

Grammar (docs/core.md, "Strategies" has the reference with examples)::

    expression := expression ("or" | "and") expression
                | "not" expression
                | sum (("<" | "<=" | ">" | ">=" | "==" | "!=") sum)?      # comparisons do not chain
    sum        := sum ("+" | "-") product | product
    product    := product ("*" | "/") unary | unary
    unary      := "-" unary | postfix
    postfix    := primary ("." NAME | "@" TIMEFRAME | "[" NUMBER "]")*
    primary    := NUMBER | NAME | NAME "(" [expression ("," expression)*] ")" | "(" expression ")"

Binding, loosest first: ``or``, ``and``, ``not``, comparisons, ``+ -``, ``* /``, unary ``-``,
postfix. Numbers are decimal (``30``, ``2.5``, ``1e-8``). The parser knows no names: which
names and calls exist is decided by :mod:`.resolve`. Called by :mod:`.resolve` once per rule
at load; a :class:`ParseError` carries the 1-based column and says what was expected.
"""

from __future__ import annotations

import re
from dataclasses import dataclass


class ParseError(ValueError):
    """A rule that does not parse: ``column`` (1-based) and a message saying what was expected."""

    def __init__(self, column: int, message: str) -> None:
        super().__init__(message)
        self.column = column
        self.message = message


# -- syntax tree (positions are 1-based columns of the rule text) ---------------------------------


@dataclass(frozen=True, slots=True)
class Number:
    value: int | float
    column: int


@dataclass(frozen=True, slots=True)
class Name:
    name: str
    column: int


@dataclass(frozen=True, slots=True)
class Call:
    name: str
    arguments: tuple[Syntax, ...]
    column: int


@dataclass(frozen=True, slots=True)
class Member:
    operand: Syntax
    member: str
    column: int  # of the member name


@dataclass(frozen=True, slots=True)
class At:
    operand: Syntax
    timeframe: str
    column: int  # of the timeframe


@dataclass(frozen=True, slots=True)
class Index:
    operand: Syntax
    offset: int | float
    column: int  # of the offset


@dataclass(frozen=True, slots=True)
class Unary:
    op: str  # "-" or "not"
    operand: Syntax
    column: int


@dataclass(frozen=True, slots=True)
class Binary:
    op: str
    left: Syntax
    right: Syntax
    column: int  # of the operator


Syntax = Number | Name | Call | Member | At | Index | Unary | Binary

# -- tokens ---------------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      | (?P<number>[0-9]+(?:\.[0-9]+)?(?:[eE][+-]?[0-9]+)?)
      | (?P<name>[A-Za-z_][A-Za-z0-9_]*)
      | (?P<op><=|>=|==|!=|[-+*/()<>,.\[\]@])""",
    re.VERBOSE,
)
_TIMEFRAME = re.compile(r"[A-Za-z0-9]+")
KEYWORDS = frozenset({"and", "or", "not"})


@dataclass(frozen=True, slots=True)
class Token:
    kind: str  # number | name | op | timeframe | end
    text: str
    column: int

    def describe(self) -> str:
        if self.kind == "end":
            return "the end of the rule"
        return f"'{self.text}'"


def tokenize(text: str) -> list[Token]:
    """The tokens of ``text`` followed by an ``end`` token; raises :class:`ParseError`."""
    tokens: list[Token] = []
    position = 0
    while position < len(text):
        if text[position] == "@":
            tokens.append(Token("op", "@", position + 1))
            match = _TIMEFRAME.match(text, position + 1)
            if match is None:
                raise ParseError(position + 2, "expected a timeframe after '@', like @5m or @1h")
            tokens.append(Token("timeframe", match.group(), position + 2))
            position = match.end()
            continue
        match = _TOKEN.match(text, position)
        if match is None:
            raise ParseError(position + 1, f"unexpected character {text[position]!r}")
        kind = match.lastgroup or ""
        if kind != "space":
            tokens.append(Token(kind, match.group(), position + 1))
        position = match.end()
    tokens.append(Token("end", "", len(text) + 1))
    return tokens


# -- parser ---------------------------------------------------------------------------------------

_INFIX = {"or": 10, "and": 20, "<": 40, "<=": 40, ">": 40, ">=": 40, "==": 40, "!=": 40,
          "+": 50, "-": 50, "*": 60, "/": 60}
_NOT = 30
_COMPARE = 40
_NEGATE = 70
_OPERAND = ("expected an operand: a number, a price field (close, open, high, low, volume, price),"
            " a parameter, a call like ema(12), '-', 'not' or '('")


def parse(text: str) -> Syntax:
    """The syntax tree of one rule; raises :class:`ParseError` at the first problem."""
    if not text.strip():
        raise ParseError(1, "the rule is empty: expected a condition like rsi(14) < 30")
    parser = _Parser(tokenize(text))
    tree = parser.expression(0)
    token = parser.peek()
    if token.kind != "end":
        expected = "an operator (and, or, a comparison, + - * /) or the end of the rule"
        if token.kind == "op" and token.text == ")":
            raise ParseError(token.column, "unbalanced ')': no '(' is open here")
        raise ParseError(token.column, f"expected {expected}, found {token.describe()}")
    return tree


class _Parser:
    def __init__(self, tokens: list[Token]) -> None:
        self.tokens = tokens
        self.position = 0

    def peek(self) -> Token:
        return self.tokens[self.position]

    def advance(self) -> Token:
        token = self.tokens[self.position]
        if token.kind != "end":
            self.position += 1
        return token

    def expect(self, text: str, what: str) -> Token:
        token = self.peek()
        if token.kind != "op" or token.text != text:
            raise ParseError(token.column, f"expected {what}, found {token.describe()}")
        return self.advance()

    def expression(self, floor: int) -> Syntax:
        """Pratt loop: a prefix, then infix operators that bind tighter than ``floor``."""
        left = self.prefix()
        while True:
            token = self.peek()
            operator = token.text if token.kind in ("op", "name") else ""
            power = _INFIX.get(operator)
            if power is None or power <= floor:
                return left
            self.advance()
            right = self.expression(power)
            left = Binary(operator, left, right, token.column)
            if power == _COMPARE:
                following = self.peek()
                if following.kind == "op" and _INFIX.get(following.text) == _COMPARE:
                    raise ParseError(following.column, f"comparisons do not chain: write a {operator} b and"
                                     f" b {following.text} c instead of a {operator} b {following.text} c")

    def prefix(self) -> Syntax:
        token = self.advance()
        if token.kind == "name" and token.text == "not":
            return Unary("not", self.expression(_NOT), token.column)
        if token.kind == "op" and token.text == "-":
            return Unary("-", self.expression(_NEGATE), token.column)
        return self.postfix(self.primary(token))

    def primary(self, token: Token) -> Syntax:
        if token.kind == "number":
            return Number(_number(token.text), token.column)
        if token.kind == "name":
            if token.text in KEYWORDS:
                raise ParseError(token.column, f"{_OPERAND}, found the keyword '{token.text}'")
            following = self.peek()
            if following.kind == "op" and following.text == "(":
                self.advance()
                return Call(token.text, self.arguments(token.text), token.column)
            return Name(token.text, token.column)
        if token.kind == "op" and token.text == "(":
            inner = self.expression(0)
            self.expect(")", "')' to close the '(' at column " + str(token.column))
            return inner
        raise ParseError(token.column, f"{_OPERAND}, found {token.describe()}")

    def arguments(self, name: str) -> tuple[Syntax, ...]:
        following = self.peek()
        if following.kind == "op" and following.text == ")":
            self.advance()
            return ()
        found = [self.expression(0)]
        while True:
            token = self.peek()
            if token.kind == "op" and token.text == ",":
                self.advance()
                found.append(self.expression(0))
                continue
            self.expect(")", f"',' or ')' after the arguments of {name}")
            return tuple(found)

    def postfix(self, operand: Syntax) -> Syntax:
        while True:
            token = self.peek()
            if token.kind != "op" or token.text not in (".", "@", "["):
                return operand
            self.advance()
            if token.text == ".":
                member = self.advance()
                if member.kind != "name":
                    raise ParseError(member.column, "expected a line name after '.', like .signal or .upper,"
                                     f" found {member.describe()}")
                operand = Member(operand, member.text, member.column)
            elif token.text == "@":
                timeframe = self.advance()  # the tokenizer guarantees a timeframe token here
                operand = At(operand, timeframe.text, timeframe.column)
            else:
                offset = self.advance()
                if offset.kind != "number":
                    raise ParseError(offset.column, "expected a whole number of evaluations inside [ ], like"
                                     f" [1], found {offset.describe()}")
                self.expect("]", "']' after the offset")
                operand = Index(operand, _number(offset.text), offset.column)


def _number(text: str) -> int | float:
    if text.isdigit():
        return int(text)
    return float(text)
