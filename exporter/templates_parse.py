"""Alert templates, step one: Go text/template source → syntax tree (lexer and parser)."""

from __future__ import annotations

import re
from dataclasses import dataclass, field

from exporter.templates_funcs import TemplateError

# -- lexer ---------------------------------------------------------------------------------

_TOKEN = re.compile(
    r"""(?P<space>\s+)
      |(?P<decl>:=)|(?P<assign>=)|(?P<pipe>\|)|(?P<lparen>\()|(?P<rparen>\))|(?P<comma>,)
      |(?P<string>"(?:[^"\\\n]|\\.)*")|(?P<raw>`[^`]*`)|(?P<char>'(?:[^'\\]|\\.)+')
      |(?P<number>[+-]?(?:0[xX][0-9a-fA-F_]+|(?:\d[\d_]*\.?[\d_]*|\.\d[\d_]*)(?:[eE][+-]?\d+)?))
      |(?P<field>(?:\.[A-Za-z_]\w*)+)|(?P<dot>\.)
      |(?P<var>\$\w*)|(?P<ident>[A-Za-z_]\w*)""",
    re.VERBOSE,
)
_KEYWORDS = {"if", "else", "end", "range", "with", "nil", "true", "false", "break", "continue",
             "define", "template", "block"}


@dataclass(frozen=True, slots=True)
class Token:
    kind: str
    text: str
    pos: int  # offset in the whole template text, for Go's line:col


def _lex_action(text: str, start: int, end: int) -> list[Token]:
    tokens: list[Token] = []
    pos = start
    while pos < end:
        m = _TOKEN.match(text, pos, end)
        if m is None:
            raise _ParseFail(pos, f"unexpected {text[pos]!r} in command".replace("'", '"'))
        kind = m.lastgroup or ""
        if kind != "space":
            tok_text = m.group(0)
            if kind == "field" and tokens and tokens[-1].pos + len(tokens[-1].text) == pos \
                    and tokens[-1].kind in ("var", "rparen", "field"):
                kind = "chain"  # `$x.y` / `(...).y`: a field of the value just before
            tokens.append(Token(kind, tok_text, pos))
        pos = m.end()
    return tokens


class _ParseFail(Exception):
    def __init__(self, pos: int, message: str) -> None:
        super().__init__(message)
        self.pos = pos
        self.message = message


# -- syntax tree ---------------------------------------------------------------------------


@dataclass(slots=True)
class Operand:
    """One argument: kind is field, var, ident, dot, string, number, bool, nil or pipe."""

    kind: str
    value: object
    pos: int
    chain: tuple[str, ...] = ()
    text: str = ""


@dataclass(slots=True)
class Pipeline:
    decls: tuple[str, ...]
    assign: bool
    commands: list[list[Operand]]
    pos: int


@dataclass(slots=True)
class Node:
    """text, action, if, range, with, break or continue."""

    kind: str
    text: str = ""
    pipe: Pipeline | None = None
    body: list[Node] = field(default_factory=list)
    orelse: list[Node] = field(default_factory=list)


@dataclass(slots=True)
class Template:
    """A parsed template, ready to execute many times."""

    name: str
    text: str
    nodes: list[Node]


# -- parser --------------------------------------------------------------------------------


class _Parser:
    def __init__(self, text: str, funcs: frozenset[str], variables: tuple[str, ...]) -> None:
        self.text = text
        self.funcs = funcs
        self.scopes: list[list[str]] = [["$", *variables]]
        self.actions = self._split(text)
        self.i = 0
        self._else_tokens: list[Token] = []

    def _split(self, text: str) -> list[tuple[str, int, int]]:
        """("text"|"action", start, end) pieces with trim markers applied."""
        out: list[tuple[str, int, int]] = []
        pos, trim_next = 0, False
        while True:
            open_at = text.find("{{", pos)
            stop = len(text) if open_at < 0 else open_at
            lo, hi = pos, stop
            if trim_next:
                while lo < hi and text[lo] in " \t\r\n":
                    lo += 1
            inner = open_at + 2
            if open_at >= 0 and text.startswith("-", inner) and inner + 1 < len(text) \
                    and text[inner + 1] in " \t\r\n":
                while hi > lo and text[hi - 1] in " \t\r\n":
                    hi -= 1
                inner += 2
            if hi > lo:
                out.append(("text", lo, hi))
            if open_at < 0:
                return out
            close = self._find_close(text, inner)
            end, trim_next = close, False
            if close >= 2 and text[close - 1] == "-" and text[close - 2] in " \t\r\n":
                end, trim_next = close - 2, True
            out.append(("action", inner, end))
            pos = close + 2

    def _find_close(self, text: str, pos: int) -> int:
        in_quote = ""
        i = pos
        while i < len(text):
            c = text[i]
            if in_quote:
                if c == "\\" and in_quote != "`":
                    i += 1
                elif c == in_quote:
                    in_quote = ""
                elif c == "\n" and in_quote != "`":
                    raise _ParseFail(i, "unterminated quoted string")
            elif c in "\"'`":
                in_quote = c
            elif text.startswith("/*", i) and text[pos:i].strip() == "":
                end = text.find("*/", i + 2)
                if end < 0:
                    raise _ParseFail(i, "unclosed comment")
                i = end + 1
            elif text.startswith("}}", i):
                return i
            i += 1
        raise _ParseFail(len(text), "unclosed action")

    def parse(self) -> list[Node]:
        nodes, stop = self._list()
        if stop is not None:
            raise _ParseFail(stop[1], f"unexpected {{{{{stop[0]}}}}}")
        return nodes

    def _list(self) -> tuple[list[Node], tuple[str, int] | None]:
        nodes: list[Node] = []
        while self.i < len(self.actions):
            kind, start, end = self.actions[self.i]
            self.i += 1
            if kind == "text":
                nodes.append(Node("text", text=self.text[start:end]))
                continue
            if self.text[start:end].strip().startswith("/*"):
                continue  # a comment
            tokens = _lex_action(self.text, start, end)
            if not tokens:
                raise _ParseFail(start, "missing value for command")
            head = tokens[0]
            if head.kind == "ident" and head.text in ("end", "else"):
                if head.text == "else":
                    self._else_tokens = tokens[1:]
                return nodes, (head.text, head.pos)
            if head.kind == "ident" and head.text in ("if", "range", "with"):
                nodes.append(self._control(head, tokens[1:]))
            elif head.kind == "ident" and head.text in ("break", "continue"):
                nodes.append(Node(head.text))
            elif head.kind == "ident" and head.text in ("define", "template", "block"):
                raise _ParseFail(head.pos, f"{{{{{head.text}}}}} is not supported")
            else:
                nodes.append(Node("action", pipe=self._pipeline(tokens, "command", head.pos)))
        return nodes, None

    def _control(self, head: Token, tokens: list[Token]) -> Node:
        self.scopes.append([])
        pipe = self._pipeline(tokens, head.text, head.pos)
        body, stop = self._list()
        orelse: list[Node] = []
        if stop is None:
            raise _ParseFail(len(self.text), "unexpected EOF")
        if stop[0] == "else":
            rest = self._else_tokens
            if rest and rest[0].kind == "ident" and rest[0].text in ("if", "with"):
                # `else if` / `else with` nests, sharing the outer {{end}}.
                orelse = [self._control(rest[0], rest[1:])]
            else:
                if rest:
                    raise _ParseFail(rest[0].pos, f"unexpected {rest[0].text} in else")
                orelse, stop = self._list()
                if stop is None:
                    raise _ParseFail(len(self.text), "unexpected EOF")
                if stop[0] != "end":
                    raise _ParseFail(stop[1], "expected end; found {{else}}")
        self.scopes.pop()
        return Node(head.text, pipe=pipe, body=body, orelse=orelse)

    def _pipeline(self, tokens: list[Token], context: str, pos: int) -> Pipeline:
        decls: list[str] = []
        assign = False
        # `$x :=` / `$k, $v :=` / `$x =` before the commands.
        j = 0
        while j + 1 < len(tokens) and tokens[j].kind == "var":
            nxt = tokens[j + 1].kind
            if nxt in ("decl", "assign"):
                decls.append(tokens[j].text)
                assign = nxt == "assign"
                j += 2
                break
            if nxt == "comma" and context == "range":
                decls.append(tokens[j].text)
                j += 2
                continue
            break
        if assign:
            for name in decls:
                self._check_var(name, tokens[0].pos)
        commands = self._commands(tokens[j:], context, pos)
        if not assign:
            self.scopes[-1].extend(decls)
        return Pipeline(tuple(decls), assign, commands, pos)

    def _commands(self, tokens: list[Token], context: str, pos: int) -> list[list[Operand]]:
        commands: list[list[Operand]] = [[]]
        k = 0
        while k < len(tokens):
            tok = tokens[k]
            if tok.kind == "pipe":
                if not commands[-1]:
                    raise _ParseFail(tok.pos, "missing command")
                commands.append([])
                k += 1
                continue
            if tok.kind == "rparen":
                raise _ParseFail(tok.pos, "unexpected right paren")
            operand, k = self._operand(tokens, k)
            commands[-1].append(operand)
        if not commands[-1]:
            if len(commands) == 1:
                raise _ParseFail(pos, f"missing value for {context}")
            raise _ParseFail(pos, "missing command")
        return commands

    def _operand(self, tokens: list[Token], k: int) -> tuple[Operand, int]:
        tok = tokens[k]
        kind, text = tok.kind, tok.text
        k += 1
        if kind == "lparen":
            depth, j = 1, k
            while j < len(tokens) and depth:
                depth += {"lparen": 1, "rparen": -1}.get(tokens[j].kind, 0)
                j += 1
            if depth:
                raise _ParseFail(tok.pos, "unclosed left paren")
            inner = Pipeline((), False, self._commands(tokens[k : j - 1], "parenthesized pipeline",
                                                       tok.pos), tok.pos)
            op = Operand("pipe", inner, tok.pos, text="(" + self.text[tok.pos + 1:tokens[j - 1].pos]
                         + ")")
            k = j
        elif kind == "field":
            op = Operand("field", None, tok.pos, tuple(text[1:].split(".")), text)
        elif kind == "dot":
            op = Operand("dot", None, tok.pos, text=".")
        elif kind == "var":
            self._check_var(text, tok.pos)
            op = Operand("var", text, tok.pos, text=text)
        elif kind in ("string", "raw", "char"):
            op = Operand("string", _unquote(text), tok.pos, text=text)
        elif kind == "number":
            op = Operand("number", _number(text, tok.pos), tok.pos, text=text)
        elif kind == "ident" and text in ("true", "false"):
            op = Operand("bool", text == "true", tok.pos, text=text)
        elif kind == "ident" and text == "nil":
            op = Operand("nil", None, tok.pos, text=text)
        elif kind == "ident":
            if text not in self.funcs:
                raise _ParseFail(tok.pos, f'function "{text}" not defined')
            op = Operand("ident", text, tok.pos, text=text)
        else:
            raise _ParseFail(tok.pos, f"unexpected {go_quote_token(text)} in operand")
        while k < len(tokens) and tokens[k].kind == "chain":
            op.chain += tuple(tokens[k].text[1:].split("."))
            op.text += tokens[k].text
            k += 1
        return op, k

    def _check_var(self, name: str, pos: int) -> None:
        if not any(name in scope for scope in self.scopes):
            raise _ParseFail(pos, f'undefined variable "{name}"')


def go_quote_token(text: str) -> str:
    return '"' + text.replace('"', '\\"') + '"'


def _unquote(text: str) -> str:
    if text[0] == "`":
        return text[1:-1]
    body = text[1:-1]
    return re.sub(r"\\(.)", lambda m: {"n": "\n", "t": "\t", "r": "\r"}.get(m[1], m[1]), body)


def _number(text: str, pos: int) -> int | float:
    clean = text.replace("_", "")
    try:
        if re.fullmatch(r"[+-]?(0[xX][0-9a-fA-F]+|\d+)", clean):
            return int(clean, 0) if not re.fullmatch(r"[+-]?0\d+", clean) else int(clean, 8)
        return float(clean)
    except ValueError:
        raise _ParseFail(pos, f"bad number syntax: {go_quote_token(text)}") from None


def line_col(text: str, pos: int) -> tuple[int, int]:
    line = text.count("\n", 0, pos) + 1
    nl = text.rfind("\n", 0, pos)
    return line, (pos if nl < 0 else pos - nl - 1)


def parse_template(
    text: str,
    name: str,
    funcs: frozenset[str],
    variables: tuple[str, ...] = (),
) -> Template:
    """Parse a template; raises TemplateError `template: NAME:LINE: message`."""
    try:
        return Template(name, text, _Parser(text, funcs, variables).parse())
    except _ParseFail as fail:
        line, _ = line_col(text, fail.pos)
        raise TemplateError(f"template: {name}:{line}: {fail.message}") from None
