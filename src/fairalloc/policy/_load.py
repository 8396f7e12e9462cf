"""Reading policy files (YAML, JSON, TOML) into a :class:`Policy`, keeping source locations.

YAML is read as PyYAML's stream of events (from libyaml when it is installed), and JSON by a
small reader of its own; both build plain data with one iterative composer, which records where
each value stands in a :class:`SourceMap` keyed by the path of the value in the document, so
that a pydantic error's ``loc`` and an expression's error offset both map back to the file.
TOML is read with the standard library's ``tomllib``, which keeps no positions: a small scan of
the text's tables and ``key = value`` lines recovers them.

Every file is held to :class:`PolicyLimits` (size, nesting, alias expansion, length of texts
and numbers), and every problem a reader finds becomes a located :class:`PolicyError`: nothing
the file controls reaches Python's recursion limit or raises another exception.
"""

from __future__ import annotations

import contextlib
import difflib
import gc
import json
import math
import os
import re
import tomllib
import unicodedata
from collections.abc import Iterable, Iterator, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
import yaml.constructor
import yaml.resolver
from pydantic import BaseModel, ValidationError

from fairalloc.errors import PolicyError, PolicyIssue, SourceSpan
from fairalloc.policy import _model as M

with contextlib.suppress(ImportError):  # libyaml, when installed, reads YAML much faster
    import yaml.cyaml

__all__ = [
    "DEFAULT_LIMITS",
    "PathKey",
    "PolicyLimits",
    "SourceMap",
    "dotted",
    "parse_policy",
    "paused_gc",
    "read_policy",
]

PathKey = tuple[str, ...]
Format = Literal["yaml", "json", "toml"]


def dotted(path: Iterable[object]) -> str:
    """A document path as people write it: ``rules.eligibility[0].when``."""
    out = ""
    for p in path:
        if isinstance(p, int) or (isinstance(p, str) and p.isdigit()):
            out += f"[{p}]"
        else:
            out += f".{p}" if out else str(p)
    return out


@dataclass(frozen=True, slots=True)
class _Loc:
    line: int  # 1-based
    column: int  # 1-based
    style: str | None  # YAML scalar style: None (plain), "'", '"', "|", ">"
    start: int  # index into the text
    end: int


@dataclass(slots=True)
class SourceMap:
    """Where each value of a policy document stands in its file."""

    file: str = "<policy>"
    text: str | None = None
    locs: dict[PathKey, _Loc] = field(default_factory=dict)

    def span(
        self, path: Iterable[object], offset: int | None = None, value: str | None = None
    ) -> SourceSpan:
        """The location of the value at ``path``.

        ``offset`` is a character offset inside the value, whose text is ``value``. Falls back
        to the nearest enclosing value that has a location.
        """
        key = tuple(str(p) for p in path)
        name = dotted(key)
        probe = key
        while probe and probe not in self.locs:
            probe = probe[:-1]
        loc = self.locs.get(probe)
        if loc is None:
            return SourceSpan(self.file, 0, 0, name)
        if offset is None or value is None or probe != key or self.text is None:
            return SourceSpan(self.file, loc.line, loc.column, name)
        line, col = self._inside(loc, offset, value)
        return SourceSpan(self.file, line, col, name)

    def _inside(self, loc: _Loc, offset: int, value: str) -> tuple[int, int]:
        # Walk the scalar's source text alongside its value: folded lines, indentation of
        # block scalars and quotes are skipped, so the column is the one an editor shows.
        assert self.text is not None
        text = self.text
        i = loc.start
        if loc.style in ("'", '"'):
            i += 1
        elif loc.style in ("|", ">"):
            nl = text.find("\n", i)
            i = nl + 1 if nl >= 0 else i
            while i < loc.end and text[i] in " \t":
                i += 1
        for ch in value[:offset]:
            while i < loc.end and text[i] != ch:
                i += 1
            i += 1
        while (
            i < loc.end
            and text[i] in " \t\r\n"
            and offset < len(value)
            and value[offset] not in " \t\r\n"
        ):
            i += 1
        line = text.count("\n", 0, i) + 1
        col = i - (text.rfind("\n", 0, i) + 1) + 1
        return line, col


# -- limits -----------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class PolicyLimits:
    """How much a policy file may ask of the loader; beyond any limit, a located error.

    The defaults are far above what a policy needs and low enough that no file can make loading
    hang or exhaust memory. Pass other limits to :func:`~fairalloc.load_policy` or
    :func:`~fairalloc.parse_policy` (``limits=PolicyLimits(max_bytes=...)``).

    Attributes:
        max_bytes: Size of the file (of the text in UTF-8), in bytes (``FA180``).
        max_depth: Nesting of mappings and lists; the document itself is level 1 (``FA181``).
        max_alias_values: How many values YAML aliases may add, counting every value inside an
            aliased mapping or list each time the alias is used (``FA182``).
        max_string_length: Characters in one text value or key (``FA184``).
        max_number_length: Characters in one number as written (``FA185``); at most 4300,
            the most digits Python converts.
    """

    max_bytes: int = 64 * 1024 * 1024
    max_depth: int = 64
    max_alias_values: int = 10_000
    max_string_length: int = 100_000
    max_number_length: int = 100


DEFAULT_LIMITS = PolicyLimits()
#: The most digits Python turns into an integer (``sys.get_int_max_str_digits()``'s default).
_PYTHON_MAX_DIGITS = 4300

#: Characters no policy text may hold: controls other than tab and line ends, surrogates and
#: the non-characters U+FFFE/U+FFFF (the characters YAML itself refuses, applied to all formats).
_BAD_TEXT = re.compile("[^\x09\x0a\x0d\x20-\x7e\x85\xa0-\ud7ff\ue000-\ufffd\U00010000-\U0010ffff]")
#: Characters no text value may hold, even written as an escape: controls other than tab and
#: line ends, and surrogates (which no file encoding can carry).
_BAD_VALUE = re.compile("[\x00-\x08\x0b\x0c\x0e-\x1f\x7f-\x9f\ud800-\udfff\ufffe\uffff]")


def _line_col(text: str, index: int) -> tuple[int, int]:
    """1-based line and column of ``text[index]``."""
    line = text.count("\n", 0, index) + 1
    return line, index - (text.rfind("\n", 0, index) + 1) + 1


def _issue(
    code: str, message: str, span: SourceSpan, hint: str = "", text: str = ""
) -> PolicyError:
    return PolicyError([PolicyIssue(code, message, span, text, hint)])


def _char_name(ch: str) -> str:
    return f"U+{ord(ch):04X}" + (f" ({unicodedata.name(ch)})" if unicodedata.name(ch, "") else "")


# -- reading --------------------------------------------------------------------------------


@contextlib.contextmanager
def paused_gc() -> Iterator[None]:
    """Pause Python's cyclic garbage collector while a policy is read and checked.

    A large file makes millions of objects, none of them garbage; each pass of the collector
    would walk them all again, and loading would grow faster than the file.
    """
    if not gc.isenabled():
        yield
        return
    gc.disable()
    try:
        yield
    finally:
        gc.enable()


def read_policy(
    path: str | os.PathLike[str],
    *,
    format: Format | None = None,
    limits: PolicyLimits | None = None,
) -> M.Policy:
    """Read and structurally validate the policy file at ``path``.

    The format follows the file's suffix (``.yaml``/``.yml``, ``.json``, ``.toml``) unless given.

    Raises:
        PolicyError: listing every structural problem, each with file, line and column.
        OSError: if the file cannot be read.
    """
    lim = limits or DEFAULT_LIMITS
    p = Path(path)
    fmt = format or _format_of(p)
    size = p.stat().st_size
    if size > lim.max_bytes:
        raise _too_big(str(path), size, lim)
    with p.open("rb") as f:
        # Read one byte more than allowed: a file that grew since stat() is still caught.
        data = f.read(lim.max_bytes + 1)
    if len(data) > lim.max_bytes:
        raise _too_big(str(path), len(data), lim)
    try:
        text = data.decode("utf-8-sig")
    except UnicodeDecodeError as e:
        bom = 3 if data.startswith(b"\xef\xbb\xbf") else 0
        good = data[bom : e.start].decode("utf-8")
        line, col = _line_col(good, len(good))
        raise _issue(
            "FA104",
            f"the file is not UTF-8 text (byte {e.start}: 0x{data[e.start]:02x})",
            SourceSpan(str(path), line, col),
            hint="save the policy as UTF-8",
        ) from None
    return parse_policy(text, format=fmt, filename=str(path), limits=lim)


def _too_big(filename: str, size: int, lim: PolicyLimits) -> PolicyError:
    return _issue(
        "FA180",
        f"the policy is {size:,} bytes; the limit is {lim.max_bytes:,}",
        SourceSpan(filename),
        hint="pass limits=PolicyLimits(max_bytes=...) to load a larger policy",
    )


def _format_of(p: Path) -> Format:
    suffix = p.suffix.lower()
    if suffix in (".yaml", ".yml"):
        return "yaml"
    if suffix == ".json":
        return "json"
    if suffix == ".toml":
        return "toml"
    raise PolicyError(
        [
            PolicyIssue(
                "FA100",
                f"cannot tell the format of `{p.name}`",
                SourceSpan(str(p)),
                hint="name the file .yaml, .yml, .json or .toml, or pass format=",
            )
        ]
    )


def parse_policy(
    text: str,
    *,
    format: Format = "yaml",
    filename: str = "<string>",
    limits: PolicyLimits | None = None,
) -> M.Policy:
    """Parse policy text and validate its structure, keeping source locations.

    Raises:
        PolicyError: listing every structural problem found.
    """
    lim = limits or DEFAULT_LIMITS
    # Four bytes at most per character: only long texts need encoding to be measured.
    if len(text) * 4 > lim.max_bytes:
        size = len(text.encode("utf-8", "surrogatepass"))
        if size > lim.max_bytes:
            raise _too_big(filename, size, lim)
    text = text.removeprefix("\ufeff")
    bad = _BAD_TEXT.search(text)
    if bad is not None:
        line, col = _line_col(text, bad.start())
        ch = bad.group()
        surrogate = "\ud800" <= ch <= "\udfff"
        raise _issue(
            "FA188" if surrogate else "FA187",
            f"character {_char_name(ch)} is not allowed in a policy file",
            SourceSpan(filename, line, col),
            hint="a lone surrogate is no character: save the text as valid UTF-8"
            if surrogate
            else "remove it; write control characters in text as escapes only where allowed",
        )
    smap = SourceMap(filename, text)
    if format == "toml":
        data = _parse_toml(text, filename, smap, lim)
    elif format == "json":
        data = _JsonReader(text, filename, smap, lim).read()
    elif format == "yaml":
        data = _parse_yaml(text, filename, smap, lim)
    else:
        raise _issue(
            "FA100",
            f"unknown format {format!r}",
            SourceSpan(filename),
            hint="format= is yaml, json or toml",
        )
    return build_policy(data, smap)


def build_policy(data: Any, smap: SourceMap) -> M.Policy:
    """Validate plain data as a policy, mapping pydantic's errors to located issues."""
    if not isinstance(data, Mapping):
        raise PolicyError(
            [
                PolicyIssue(
                    "FA103",
                    "a policy must be a mapping of sections (policy, attributes, ...)",
                    smap.span(()),
                    hint="start with `fairalloc: 1` and a `policy:` section",
                )
            ]
        )
    try:
        policy = M.Policy.model_validate(data)
    except ValidationError as e:
        raise PolicyError(_issues_from_pydantic(e, data, smap)) from None
    policy._origin = smap
    return policy


# -- building documents: one composer for YAML and JSON ---------------------------------------

_NO_KEY: Any = object()


class _Frame:
    """A mapping or list being built, with what its values need to know."""

    __slots__ = ("anchor", "container", "height", "key", "key_at", "keys", "path", "size", "start")

    def __init__(self, container: Any, path: PathKey, start: tuple[int, int, int]) -> None:
        self.container = container
        self.path = path
        self.start = start  # line, column (1-based) and index of its first character
        self.key: Any = _NO_KEY  # a mapping's key waiting for its value
        self.key_at: tuple[int, int, str] = (0, 0, "")  # where that key is, and its text
        self.keys: dict[Any, tuple[int, int, str]] = {}  # where each key is, as written
        self.anchor: str | None = None
        self.size = 1  # values in all, aliases expanded
        self.height = 1  # nesting below and including this one


class _Composer:
    """Builds plain data from a stream of values, recording where each value stands.

    Iterative: a stack of open mappings and lists, so no nesting the file controls reaches
    Python's recursion limit. Duplicate keys are judged on the values the keys denote (YAML's
    ``true``, ``True`` and ``yes`` are one key), and every text, number and nesting level is
    held to the limits.
    """

    def __init__(self, text: str, filename: str, smap: SourceMap, limits: PolicyLimits) -> None:
        self.text = text
        self.filename = filename
        self.smap = smap
        self.limits = limits
        self.stack: list[_Frame] = []
        self.root: Any = _NO_KEY
        self.duplicates: list[PolicyIssue] = []

    def span(self, line: int, column: int, path: PathKey = ()) -> SourceSpan:
        return SourceSpan(self.filename, line, column, dotted(path))

    def fail(
        self, code: str, message: str, at: tuple[int, int], hint: str = "", text: str = ""
    ) -> PolicyError:
        path = self.stack[-1].path if self.stack else ()
        return _issue(code, message, self.span(at[0], at[1], path), hint, text)

    def open(self, container: Any, at: tuple[int, int, int]) -> _Frame:
        if len(self.stack) >= self.limits.max_depth:
            raise self.fail(
                "FA181",
                f"the document is nested deeper than {self.limits.max_depth} levels",
                at[:2],
                hint="flatten the structure; a policy needs far fewer levels",
            )
        frame = _Frame(container, self.value_path(), at)
        self.stack.append(frame)
        return frame

    def value_path(self) -> PathKey:
        """The path of the next value (a key of a mapping has its mapping's path)."""
        if not self.stack:
            return ()
        top = self.stack[-1]
        if isinstance(top.container, list):
            return (*top.path, str(len(top.container)))
        if top.key is _NO_KEY:
            return top.path
        return (*top.path, top.key_at[2])

    def close(self, end: int) -> _Frame:
        frame = self.stack.pop()
        line, col, start = frame.start
        self.add(
            frame.container,
            (line, col),
            _Loc(line, col, None, start, end),
            frame.size,
            frame.height,
            is_container=True,
        )
        return frame

    def add(
        self,
        value: Any,
        at: tuple[int, int],
        loc: _Loc,
        size: int = 1,
        height: int = 0,
        *,
        is_container: bool = False,
        key_text: str = "",
    ) -> None:
        """Place ``value`` in the open mapping or list (or at the root)."""
        if not self.stack:
            self.root = value
            self.smap.locs[()] = loc
            return
        top = self.stack[-1]
        if isinstance(top.container, list):
            self.smap.locs[(*top.path, str(len(top.container)))] = loc
            top.container.append(value)
        elif top.key is _NO_KEY:
            if is_container:
                raise self.fail(
                    "FA190",
                    "a key must be a single value, not a mapping or list",
                    at,
                    hint="write the key as text",
                )
            top.key = value
            top.key_at = (at[0], at[1], key_text or str(value))
            return
        else:
            key, (kline, kcol, ktext) = top.key, top.key_at
            top.key = _NO_KEY
            try:
                first = top.keys.get(key)
            except TypeError:  # pragma: no cover - keys are scalars, all hashable
                first = None
            if first is not None:
                fline, fcol, ftext = first
                same = "" if ftext == ktext else f" (the same key as `{ftext}`)"
                self.duplicates.append(
                    PolicyIssue(
                        "FA102",
                        f"key `{ktext}`{same} appears twice: first on line {fline}, column"
                        f" {fcol}, again on line {kline}, column {kcol}",
                        self.span(kline, kcol, (*top.path, ktext)),
                        hint="a later key would silently replace the earlier one; keep one",
                    )
                )
                return
            top.keys[key] = (kline, kcol, ktext)
            self.smap.locs[(*top.path, ktext)] = loc
            top.container[key] = value
        top.size += size
        top.height = max(top.height, height + 1)

    def string(self, value: str, at: tuple[int, int]) -> str:
        if len(value) > self.limits.max_string_length:
            raise self.fail(
                "FA184",
                f"a text of {len(value):,} characters; the limit is"
                f" {self.limits.max_string_length:,}",
                at,
                hint="shorten it, or pass limits=PolicyLimits(max_string_length=...)",
            )
        bad = _BAD_VALUE.search(value)
        if bad is not None:
            ch = bad.group()
            surrogate = "\ud800" <= ch <= "\udfff"
            raise self.fail(
                "FA188" if surrogate else "FA187",
                f"a text holds character {_char_name(ch)}"
                + (", half of a surrogate pair, which no file can encode" if surrogate else ""),
                at,
                hint="remove it"
                if not surrogate
                else "write the character itself, or both halves of its escape (\\ud83d\\ude00)",
            )
        return value

    def number_text(self, text: str, at: tuple[int, int]) -> None:
        if len(text) > min(self.limits.max_number_length, _PYTHON_MAX_DIGITS):
            raise self.fail(
                "FA185",
                f"a number of {len(text):,} characters; the limit is"
                f" {min(self.limits.max_number_length, _PYTHON_MAX_DIGITS)}",
                at,
                hint="policy numbers are float64: 17 significant digits are all that count",
            )

    def finite(self, value: float, at: tuple[int, int], written: str) -> float:
        if value != value or value in (math.inf, -math.inf):
            raise self.fail(
                "FA186",
                f"`{written}` is not a finite number"
                + (" (too large for float64)" if value == value and _looks_finite(written) else ""),
                at,
                hint="NaN and infinities are refused in every policy number: leave the bound"
                " out for no bound, or give the number itself",
            )
        return value

    def finish(self) -> Any:
        if self.duplicates:
            raise PolicyError(self.duplicates)
        return self.root


def _looks_finite(written: str) -> bool:
    return not any(w in written.lower() for w in ("nan", "inf"))


# -- YAML -------------------------------------------------------------------------------------

_TAG = "tag:yaml.org,2002:"
_SCALAR_TAGS = {f"{_TAG}{t}" for t in ("str", "int", "float", "bool", "null", "timestamp")}


class _YamlConstructor(yaml.constructor.SafeConstructor):
    """PyYAML's safe constructors of scalars, used one value at a time."""


def _yaml_parser(text: str, *, c: bool) -> Any:
    if c:
        return yaml.cyaml.CParser(text)  # type: ignore[attr-defined]
    return yaml.SafeLoader(text)


#: Whether the libyaml parser is used (set to False to use PyYAML's pure-Python parser).
USE_LIBYAML = bool(getattr(yaml, "__with_libyaml__", False))


def _parse_yaml(text: str, filename: str, smap: SourceMap, limits: PolicyLimits) -> Any:
    # libyaml reads tabs inside lines and byte-order marks inside the text differently from
    # PyYAML's parser (it accepts `a: x<TAB>y`, which PyYAML refuses): such texts, rare in
    # policies, go to PyYAML's parser alone, so that a file reads the same either way.
    if USE_LIBYAML and "\t" not in text and "\ufeff" not in text:
        try:
            return _YamlComposer(text, filename, smap, limits, c=True).read()
        except yaml.YAMLError:
            # libyaml words and places some syntax errors differently; PyYAML's own parser
            # states the error, so that it reads the same with or without libyaml.
            smap.locs.clear()
    try:
        return _YamlComposer(text, filename, smap, limits, c=False).read()
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise _issue(
            "FA101",
            f"YAML syntax: {e.problem or e.context}",
            SourceSpan(filename, line, col),
            hint=_yaml_hint(str(e.problem or "")),
        ) from None
    except yaml.YAMLError as e:  # pragma: no cover - the text was checked for what Reader refuses
        raise _issue("FA101", f"YAML: {e}", SourceSpan(filename)) from None


def _yaml_hint(problem: str) -> str:
    if "tab" in problem or "\\t" in problem:
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in problem:
        return "quote a value that contains `: ` (for example an expression)"
    return ""


class _Anchor:
    __slots__ = ("height", "open", "size", "value")

    def __init__(self) -> None:
        self.value: Any = None
        self.size = 1
        self.height = 0
        self.open = True


class _YamlComposer(_Composer):
    def __init__(
        self, text: str, filename: str, smap: SourceMap, limits: PolicyLimits, *, c: bool
    ) -> None:
        super().__init__(text, filename, smap, limits)
        self.c = c
        self.resolver = yaml.resolver.Resolver()
        self.constructor = _YamlConstructor()
        self.anchors: dict[str, _Anchor] = {}
        self.aliased = 0

    def read(self) -> Any:
        parser = _yaml_parser(self.text, c=self.c)
        try:
            return self.compose(parser)
        finally:
            if not self.c:
                parser.dispose()

    def compose(self, parser: Any) -> Any:
        ev = yaml.events
        documents = 0
        while True:
            e = parser.get_event()
            kind = type(e)
            m = e.start_mark
            at = (m.line + 1, m.column + 1)
            if kind is ev.ScalarEvent:
                value = self.scalar(e, at)
                style = e.style or None
                loc = _Loc(at[0], at[1], style, m.index, e.end_mark.index)
                self.add(value, at, loc, key_text=e.value)
                if e.anchor is not None:
                    self.anchor_scalar(e.anchor, value)
            elif kind is ev.MappingStartEvent or kind is ev.SequenceStartEvent:
                is_map = kind is ev.MappingStartEvent
                self.collection_tag(e.tag, at, is_map=is_map)
                frame = self.open({} if is_map else [], (at[0], at[1], m.index))
                if e.anchor is not None:
                    frame.anchor = e.anchor
                    self.anchors[e.anchor] = _Anchor()
            elif kind is ev.MappingEndEvent or kind is ev.SequenceEndEvent:
                frame = self.close(e.end_mark.index)
                if frame.anchor is not None:
                    a = self.anchors[frame.anchor]
                    a.value, a.size, a.height, a.open = (
                        frame.container,
                        frame.size,
                        frame.height,
                        False,
                    )
            elif kind is ev.AliasEvent:
                self.alias(e.anchor, at, _Loc(at[0], at[1], None, m.index, e.end_mark.index))
            elif kind is ev.DocumentStartEvent:
                documents += 1
                if documents > 1:
                    raise _issue(
                        "FA101",
                        "YAML syntax: a policy file holds one document; found another",
                        SourceSpan(self.filename, at[0], at[1]),
                        hint="remove the `---` line and what follows, or split the file",
                    )
            elif kind is ev.StreamEndEvent:
                break
        if self.root is _NO_KEY:
            raise _issue("FA101", "the file is empty", SourceSpan(self.filename, 1, 1))
        return self.finish()

    def anchor_scalar(self, name: str, value: Any) -> None:
        a = _Anchor()
        a.value, a.size, a.height, a.open = value, 1, 0, False
        self.anchors[name] = a

    def alias(self, name: str, at: tuple[int, int], loc: _Loc) -> None:
        a = self.anchors.get(name)
        if a is None:
            raise self.fail(
                "FA101",
                f"YAML syntax: found undefined alias `*{name}`",
                at,
                hint=f"define the anchor `&{name}` before using it",
            )
        if a.open:
            raise self.fail(
                "FA183",
                f"alias `*{name}` is used inside the value it names, which would never end",
                at,
                hint="an alias may only repeat a value that is complete before it",
            )
        self.aliased += a.size
        if self.aliased > self.limits.max_alias_values:
            raise self.fail(
                "FA182",
                f"aliases expand to more than {self.limits.max_alias_values:,} values"
                f" (`*{name}` alone adds {a.size:,})",
                at,
                hint="write the values out, or pass limits=PolicyLimits(max_alias_values=...)",
            )
        if len(self.stack) + a.height > self.limits.max_depth:
            raise self.fail(
                "FA181",
                f"alias `*{name}` nests the document deeper than {self.limits.max_depth} levels",
                at,
            )
        self.add(a.value, at, loc, a.size, a.height, is_container=a.height > 0)

    def collection_tag(self, tag: str | None, at: tuple[int, int], *, is_map: bool) -> None:
        if tag is None or tag == "!" or tag == f"{_TAG}{'map' if is_map else 'seq'}":
            return
        raise self.fail(
            "FA189",
            f"the tag `{tag}` is not supported",
            at,
            hint="policy files use plain mappings and lists, without tags",
        )

    def scalar(self, e: Any, at: tuple[int, int]) -> Any:
        """The value of a scalar event."""
        text: str = e.value
        tag = e.tag
        if tag is None and e.implicit[0] and len(text) <= 64:
            # The two plain forms most values take, resolved as PyYAML's resolver would.
            if _PLAIN_INT.fullmatch(text):
                return int(text)
            if _PLAIN_WORD.fullmatch(text) and text not in _YAML_WORDS:
                return text
        if tag is None or tag == "!":
            tag = (
                self.resolver.resolve(yaml.ScalarNode, text, e.implicit)  # type: ignore[no-untyped-call]
                if e.implicit[0]
                else f"{_TAG}str"
            )
        if tag == f"{_TAG}str":
            return self.string(text, at)
        if tag not in _SCALAR_TAGS:
            hint = (
                "write the keys out: merge keys `<<` are not supported"
                if tag.endswith(":merge")
                else "remove the tag; plain numbers, dates, true/false and text need none"
            )
            raise self.fail("FA189", f"the tag `{tag}` is not supported", at, hint=hint, text=text)
        if len(text) > self.limits.max_string_length:
            self.string(text, at)
        if tag in (f"{_TAG}int", f"{_TAG}float"):
            self.number_text(text, at)
        node = yaml.ScalarNode(tag, text, e.start_mark, e.end_mark)
        try:
            value = self.constructor.construct_object(node)
        except (
            ValueError,
            TypeError,
            KeyError,
            AttributeError,
            OverflowError,
            yaml.YAMLError,
        ) as exc:
            kind = tag.removeprefix(_TAG)
            detail = str(exc).split("\n", 1)[0] if isinstance(exc, ValueError) else ""
            raise self.fail(
                "FA189",
                f"`{text}` is not a valid {_KIND_NAMES.get(kind, kind)}"
                + (f" ({detail})" if detail and len(detail) < 80 else ""),
                at,
                hint="give a real date, YYYY-MM-DD, or quote the value to keep it as text"
                if kind == "timestamp"
                else "give a valid value, or quote it to keep it as text",
                text=_short(text),
            ) from None
        finally:
            self.constructor.constructed_objects.clear()
        if isinstance(value, float):
            self.finite(value, at, text)
        return value


_PLAIN_INT = re.compile(r"[-+]?(?:0|[1-9][0-9]*)")
_PLAIN_WORD = re.compile(r"[A-Za-z_][A-Za-z0-9_\-]*")
#: The plain words PyYAML reads as true/false or null.
_YAML_WORDS = frozenset(
    w
    for base in ("yes", "no", "true", "false", "on", "off", "null")
    for w in (base, base.capitalize(), base.upper())
)
_KIND_NAMES = {"timestamp": "date", "int": "whole number", "float": "number", "bool": "true/false"}


# -- JSON -------------------------------------------------------------------------------------

_JSON_TOKEN = re.compile(
    r"""[ \t\n\r]*(?:
      (?P<k>"[^"\\\x00-\x1f]*"[ \t]*:)
    | (?P<s>")
    | (?P<n>-?(?:0|[1-9][0-9]*)(?:\.[0-9]+)?(?:[eE][-+]?[0-9]+)?)
    | (?P<p>[{}\[\]:,])
    | (?P<w>true|false|null|NaN|-?Infinity)
    | (?P<end>\Z)
    )""",
    re.VERBOSE,
)


def _scanstring(text: str, pos: int, *, strict: bool) -> tuple[str, int]:
    """A JSON string's value and the index after it (``pos`` is after its opening quote)."""
    out: tuple[str, int] = json.decoder.scanstring(text, pos, strict)  # type: ignore[attr-defined]
    return out


_JSON_WORDS: dict[str, Any] = {"true": True, "false": False, "null": None}


class _JsonReader(_Composer):
    """An iterative JSON reader that keeps positions (the standard library's keeps none)."""

    def read(self) -> Any:
        text = self.text
        pos = 0
        line, line_start = 1, 0
        # What may come next: a value, a key, `:`, or `,`/end of the open mapping or list.
        want = "value"
        while True:
            m = _JSON_TOKEN.match(text, pos)
            if m is None:
                start = pos + len(text[pos:]) - len(text[pos:].lstrip(" \t\n\r"))
                line, line_start = self.advance_lines(pos, start, line, line_start)
                raise self.syntax(f"unexpected character {text[start]!r}", start, line, line_start)
            kind = m.lastgroup
            start = m.start(kind or "end")
            if start != pos:
                line, line_start = self.advance_lines(pos, start, line, line_start)
            at = (line, start - line_start + 1)
            pos = m.end()
            if kind == "k":
                # A key in plain double quotes and its colon, the commonest token by far.
                if want not in ("key", "first-key"):
                    raise self.syntax("unexpected `:`", m.end() - 1, line, line_start)
                key = self.string(text[start + 1 : text.rindex('"', start, pos)], at)
                self.add(key, at, _Loc(at[0], at[1], '"', start, pos), key_text=key)
                want = "value"
                continue
            if kind == "end":
                if want == "done":
                    break
                raise self.syntax("the text ends too early", start, line, line_start)
            tok = m.group(kind or 0)
            if want == "done":
                raise self.syntax("extra text after the document", start, line, line_start)
            if want == "colon":
                if tok != ":":
                    raise self.syntax("expected `:`", start, line, line_start)
                want = "value"
                continue
            if want == "comma":
                top = self.stack[-1]
                closer = "}" if isinstance(top.container, dict) else "]"
                if tok == ",":
                    want = "key" if closer == "}" else "value"
                elif tok == closer:
                    self.close(pos)
                    want = "comma" if self.stack else "done"
                else:
                    raise self.syntax(f"expected `,` or `{closer}`", start, line, line_start)
                continue
            # want is "value", "key" or "first" (a key or the end of an empty mapping/list)
            if tok in ("}", "]") and want.startswith("first"):
                top = self.stack[-1]
                if tok != ("}" if isinstance(top.container, dict) else "]"):
                    raise self.syntax(f"unexpected `{tok}`", start, line, line_start)
                self.close(pos)
                want = "comma" if self.stack else "done"
                continue
            is_key = want in ("key", "first-key")
            if is_key and kind != "s":
                raise self.syntax("expected a key in double quotes", start, line, line_start)
            if kind == "p":
                if tok not in "{[":
                    raise self.syntax(f"unexpected `{tok}`", start, line, line_start)
                self.open({} if tok == "{" else [], (at[0], at[1], start))
                want = "first-key" if tok == "{" else "first-value"
                continue
            value: Any
            if kind == "s":
                try:
                    value, pos = _scanstring(text, pos, strict=True)
                except json.JSONDecodeError as e:
                    line, line_start = self.advance_lines(start, e.pos, line, line_start)
                    raise self.syntax(e.msg, e.pos, line, line_start) from None
                self.string(value, at)
            elif kind == "n":
                self.number_text(tok, at)
                value = float(tok) if any(c in tok for c in ".eE") else int(tok)
                if isinstance(value, float):
                    self.finite(value, at, tok)
            else:
                value = _JSON_WORDS.get(tok, _NO_KEY)
                if value is _NO_KEY:
                    self.finite(float(tok), at, tok)
            loc = _Loc(at[0], at[1], '"' if kind == "s" else None, start, pos)
            self.add(value, at, loc, key_text=value if is_key else "")
            want = "colon" if is_key else ("comma" if self.stack else "done")
        if self.root is _NO_KEY:  # pragma: no cover - an empty text ends too early
            raise self.syntax("the file is empty", 0, 1, 0)
        return self.finish()

    def advance_lines(self, pos: int, upto: int, line: int, line_start: int) -> tuple[int, int]:
        n = self.text.count("\n", pos, upto)
        if n:
            return line + n, self.text.rfind("\n", pos, upto) + 1
        return line, line_start

    def syntax(self, message: str, index: int, line: int, line_start: int) -> PolicyError:
        return _issue(
            "FA101",
            f"JSON syntax: {message}",
            SourceSpan(self.filename, line, index - line_start + 1),
        )


# -- TOML -------------------------------------------------------------------------------------

# The tokens that matter for nesting: strings and comments (skipped), brackets, digit runs and
# line ends (a table header starts a line outside any bracket).
_TOML_SCAN = re.compile(
    r"""(?P<s>\"\"\"(?:[^\\]|\\.)*?\"\"\"|'''.*?'''|"(?:[^"\\\n]|\\.)*"|'[^'\n]*')
      | (?P<c>\#[^\n]*)
      | (?P<o>[\[{])
      | (?P<x>[\]}])
      | (?P<d>[0-9_]{%d,})
      | (?P<nl>\n)""",
    re.VERBOSE | re.DOTALL,
)


def _parse_toml(text: str, filename: str, smap: SourceMap, limits: PolicyLimits) -> Any:
    _toml_prescan(text, filename, limits)
    smap.locs[()] = _Loc(1, 1, None, 0, len(text))
    smap.locs.update(_toml_locations(text))
    try:
        data = tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        # tomllib says "(at end of document)" for what ends too early: that is the last line.
        line, col = (int(m.group(1)), int(m.group(2))) if m else _line_col(text, len(text))
        msg = re.sub(r"\s*\(at (line \d+, column \d+|end of document)\)", "", str(e))
        raise _issue("FA101", f"TOML syntax: {msg}", SourceSpan(filename, line, col)) from None
    except (ValueError, RecursionError) as e:  # pragma: no cover - the prescan bounds both
        raise _issue("FA101", f"TOML: {e}", SourceSpan(filename)) from None
    _check_values(data, smap, limits)
    return data


def _toml_prescan(text: str, filename: str, limits: PolicyLimits) -> None:
    """Refuse nesting and numbers the TOML reader would recurse into or choke on, located."""
    longest = min(limits.max_number_length, _PYTHON_MAX_DIGITS)
    scan = re.compile(_TOML_SCAN.pattern % (longest + 1), _TOML_SCAN.flags)
    depth = 0
    line_start = 0
    for m in scan.finditer(text):
        kind = m.lastgroup
        if kind == "nl":
            line_start = m.end()
        elif kind == "o":
            # A `[` first on its line outside any value opens a table header, not a list.
            if depth == 0 and not text[line_start : m.start()].strip():
                continue
            depth += 1
            if depth + 1 > limits.max_depth:
                line, col = _line_col(text, m.start())
                raise _issue(
                    "FA181",
                    f"the document is nested deeper than {limits.max_depth} levels",
                    SourceSpan(filename, line, col),
                    hint="flatten the structure; a policy needs far fewer levels",
                )
        elif kind == "x":
            depth = max(depth - 1, 0)
        elif kind == "d":
            line, col = _line_col(text, m.start())
            raise _issue(
                "FA185",
                f"a number of {len(m.group()):,} characters; the limit is {longest}",
                SourceSpan(filename, line, col),
                hint="policy numbers are float64: 17 significant digits are all that count",
            )


def _toml_span(smap: SourceMap, path: PathKey) -> SourceSpan:
    """Where the value at ``path`` is, or else the first value written below it."""
    span = smap.span(path)
    probe = path
    while probe and probe not in smap.locs:
        probe = probe[:-1]
    if probe or not path:
        return span
    below = next((loc for key, loc in smap.locs.items() if key[: len(path)] == path), None)
    if below is None:
        return span
    return SourceSpan(smap.file, below.line, below.column, dotted(path))


def _check_values(data: Any, smap: SourceMap, limits: PolicyLimits) -> None:
    """Hold read data to the limits, without recursion: depth, texts and numbers."""
    stack: list[tuple[Any, PathKey, int]] = [(data, (), 1)]
    while stack:
        value, path, depth = stack.pop()
        if isinstance(value, dict | list):
            if depth > limits.max_depth:
                raise _issue(
                    "FA181",
                    f"the document is nested deeper than {limits.max_depth} levels",
                    _toml_span(smap, path),
                    hint="flatten the structure; a policy needs far fewer levels",
                )
            items = value.items() if isinstance(value, dict) else enumerate(value)
            for k, v in items:
                if isinstance(k, str) and len(k) > limits.max_string_length:
                    raise _issue(
                        "FA184",
                        f"a key of {len(k):,} characters; the limit is"
                        f" {limits.max_string_length:,}",
                        _toml_span(smap, path),
                    )
                stack.append((v, (*path, str(k)), depth + 1))
        elif isinstance(value, str):
            if len(value) > limits.max_string_length:
                raise _issue(
                    "FA184",
                    f"a text of {len(value):,} characters; the limit is"
                    f" {limits.max_string_length:,}",
                    _toml_span(smap, path),
                    hint="shorten it, or pass limits=PolicyLimits(max_string_length=...)",
                )
            bad = _BAD_VALUE.search(value)
            if bad is not None:
                raise _issue(
                    "FA187",
                    f"a text holds character {_char_name(bad.group())}",
                    _toml_span(smap, path),
                    hint="remove it",
                )
        elif isinstance(value, float) and (value != value or value in (math.inf, -math.inf)):
            raise _issue(
                "FA186",
                f"`{value}` is not a finite number",
                _toml_span(smap, path),
                hint="NaN and infinities are refused in every policy number: leave the bound"
                " out for no bound, or give the number itself",
            )


_TOML_HEADER = re.compile(r"^\s*(\[\[?)\s*([^\]]+?)\s*\]\]?\s*(#.*)?$")
_TOML_PART = r"""(?:[A-Za-z0-9_\-]+|"[^"]*"|'[^']*')"""
_TOML_KEY = re.compile(rf"^\s*({_TOML_PART}(?:\s*\.\s*{_TOML_PART})*)\s*=\s*")


def _toml_keys(dotted_key: str) -> list[str]:
    return [k.strip().strip("\"'") for k in re.findall(r"\"[^\"]*\"|'[^']*'|[^.]+", dotted_key)]


def _toml_locations(text: str) -> dict[PathKey, _Loc]:
    """Where each table and key of a TOML document is written (tomllib keeps no positions).

    Covers tables, arrays of tables and ``key = value`` lines, which is where policies put
    their values; a value inside an inline table is located at its key's line.
    """
    locs: dict[PathKey, _Loc] = {}
    counts: dict[PathKey, int] = {}
    prefix: PathKey = ()
    offset = 0
    for n, line in enumerate(text.splitlines(keepends=True), 1):
        start = offset
        offset += len(line)
        header = _TOML_HEADER.match(line)
        if header and not _TOML_KEY.match(line):
            path = tuple(_toml_keys(header.group(2)))
            if header.group(1) == "[[":
                counts[path] = counts.get(path, -1) + 1
                path = (*path, str(counts[path]))
            prefix = path
            col = line.index("[") + 1
            locs.setdefault(prefix, _Loc(n, col, None, start + col - 1, start + len(line)))
            continue
        key = _TOML_KEY.match(line)
        if key:
            path = (*prefix, *_toml_keys(key.group(1)))
            vstart = key.end()
            style = line[vstart] if vstart < len(line) and line[vstart] in "\"'" else None
            locs[path] = _Loc(n, vstart + 1, style, start + vstart, start + len(line.rstrip()))
    return locs


# -- pydantic errors to issues --------------------------------------------------------------


def _known_fields() -> list[str]:
    names: set[str] = set()
    stack: list[type[BaseModel]] = [M.Policy]
    seen: set[type[BaseModel]] = set()
    while stack:
        model = stack.pop()
        if model in seen:
            continue
        seen.add(model)
        for fname, finfo in model.model_fields.items():
            names.add(finfo.alias or fname)
        for obj in vars(M).values():
            if isinstance(obj, type) and issubclass(obj, BaseModel) and obj not in seen:
                stack.append(obj)
    return sorted(names)


def _data_path(loc: tuple[int | str, ...], data: Any) -> tuple[PathKey, str]:
    """Keep the parts of a pydantic ``loc`` that exist in the data; drop union/validator tags.

    Returns the path and the last part that did not match (the unknown or missing key).
    """
    path: list[str] = []
    node = data
    leftover = ""
    for part in loc:
        if isinstance(node, Mapping) and part in node:
            node = node[part]
            path.append(str(part))
        elif isinstance(node, Mapping) and str(part) in {str(k) for k in node}:
            key = next(k for k in node if str(k) == str(part))
            node = node[key]
            path.append(str(part))
        elif isinstance(node, list) and isinstance(part, int) and 0 <= part < len(node):
            node = node[part]
            path.append(str(part))
        else:
            leftover = str(part)
    return tuple(path), leftover


def _issues_from_pydantic(err: ValidationError, data: Any, smap: SourceMap) -> list[PolicyIssue]:
    fields = _known_fields()
    issues: dict[PathKey, PolicyIssue] = {}
    alternatives: dict[PathKey, list[str]] = {}
    for e in err.errors(include_url=False):
        path, leftover = _data_path(e["loc"], data)
        typ = e["type"]
        span = smap.span(path)
        if typ == "extra_forbidden":
            key = path[-1] if path else leftover
            close = difflib.get_close_matches(key, [f for f in fields if f != key], n=1)
            if key in fields:  # a field of another section: its own name is no suggestion
                hint = f"`{key}` is a field of another section; see docs/policy-files.md"
            elif close:
                hint = f"did you mean `{close[0]}`?"
            else:
                hint = "remove it or check the spelling"
            issue = PolicyIssue("FA110", f"unknown field `{key}`", span, hint=hint)
        elif typ == "missing":
            issue = PolicyIssue(
                "FA111",
                f"missing required field `{leftover or e['loc'][-1]}`",
                span,
                hint=f"add `{leftover or e['loc'][-1]}:` under `{dotted(path) or 'the top level'}`",
            )
        else:
            msg = str(e["msg"]).removeprefix("Value error, ")
            own = re.fullmatch(r"FA\d{3}", typ) is not None  # a code of ours, from the model
            issue = PolicyIssue(
                typ if own else "FA112" if typ != "value_error" else "FA113",
                f"`{dotted(path) or 'policy'}`: {msg}",
                span,
                text=_short(e.get("input")),
                hint=_type_hint(typ, e.get("input")),
            )
        if path in issues and issue.code == "FA112" and issues[path].code == "FA112":
            alternatives.setdefault(path, [issues[path].message]).append(issue.message)
            continue
        issues.setdefault(path, issue)
    out = []
    for path, issue in issues.items():
        if path in alternatives:
            msgs = list(dict.fromkeys(m.split(": ", 1)[-1] for m in alternatives[path]))
            issue = PolicyIssue(
                issue.code,
                f"`{dotted(path)}`: no valid form; " + "; or ".join(msgs),
                issue.span,
                issue.text,
                issue.hint,
            )
        out.append(issue)
    out.sort(key=lambda i: (i.span.line, i.span.column, i.span.path))
    return out


def _short(value: Any) -> str:
    if isinstance(value, Mapping | list):
        return ""
    text = repr(value)
    return text if len(text) <= 80 else text[:77] + "..."


def _type_hint(typ: str, value: Any) -> str:
    if isinstance(value, bool) and typ.startswith("string"):
        return "YAML reads yes/no/on/off/true/false as booleans; quote the text, e.g. 'no'"
    if typ == "string_pattern_mismatch":
        return "names use letters, digits and _ (rule ids may also use -), starting with a letter"
    if typ in ("literal_error", "enum"):
        return ""
    return ""
