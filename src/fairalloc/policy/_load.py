"""Reading policy files (YAML, JSON, TOML) into a :class:`Policy`, keeping source locations.

YAML and JSON are composed with PyYAML, whose nodes carry line and column marks; the marks are
kept in a :class:`SourceMap` keyed by the path of each value in the document, so that a
pydantic error's ``loc`` and an expression's error offset both map back to the file. TOML is
read with the standard library's ``tomllib``, which keeps no positions: a small scan of the
text's tables and ``key = value`` lines recovers them.
"""

from __future__ import annotations

import difflib
import json
import os
import re
import tomllib
from collections.abc import Iterable, Mapping
from dataclasses import dataclass, field
from pathlib import Path
from typing import Any, Literal

import yaml
from pydantic import BaseModel, ValidationError

from fairalloc.errors import PolicyError, PolicyIssue, SourceSpan
from fairalloc.policy import _model as M

__all__ = ["PathKey", "SourceMap", "dotted", "parse_policy", "read_policy"]

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


# -- reading --------------------------------------------------------------------------------


def read_policy(path: str | os.PathLike[str], *, format: Format | None = None) -> M.Policy:
    """Read and structurally validate the policy file at ``path``.

    The format follows the file's suffix (``.yaml``/``.yml``, ``.json``, ``.toml``) unless given.

    Raises:
        PolicyError: listing every structural problem, each with file, line and column.
        OSError: if the file cannot be read.
    """
    p = Path(path)
    fmt = format or _format_of(p)
    try:
        text = p.read_text(encoding="utf-8-sig")
    except UnicodeDecodeError as e:
        raise PolicyError(
            [
                PolicyIssue(
                    "FA104",
                    f"the file is not UTF-8 text (byte {e.start})",
                    SourceSpan(str(path)),
                    hint="save the policy as UTF-8",
                )
            ]
        ) from None
    return parse_policy(text, format=fmt, filename=str(path))


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


def parse_policy(text: str, *, format: Format = "yaml", filename: str = "<string>") -> M.Policy:
    """Parse policy text and validate its structure, keeping source locations.

    Raises:
        PolicyError: listing every structural problem found.
    """
    smap = SourceMap(filename, text)
    if format == "toml":
        data = _parse_toml(text, filename, smap)
    elif format == "json":
        data = _parse_json(text, filename, smap)
    else:
        data = _parse_yaml(text, filename, smap)
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


def _parse_yaml(text: str, filename: str, smap: SourceMap) -> Any:
    loader = yaml.SafeLoader(text)
    try:
        node = loader.get_single_node()
        if node is None:
            raise PolicyError(
                [PolicyIssue("FA101", "the file is empty", SourceSpan(filename, 1, 1))]
            )
        dups: list[PolicyIssue] = []
        _record(node, (), smap, dups, filename)
        if dups:
            raise PolicyError(dups)
        return loader.construct_document(node)
    except yaml.MarkedYAMLError as e:
        mark = e.problem_mark or e.context_mark
        line, col = (mark.line + 1, mark.column + 1) if mark else (0, 0)
        raise PolicyError(
            [
                PolicyIssue(
                    "FA101",
                    f"YAML syntax: {e.problem or e.context}",
                    SourceSpan(filename, line, col),
                    hint=_yaml_hint(str(e.problem or "")),
                )
            ]
        ) from None
    except yaml.YAMLError as e:  # pragma: no cover - PyYAML raises marked errors for text
        raise PolicyError([PolicyIssue("FA101", f"YAML: {e}", SourceSpan(filename))]) from None
    finally:
        loader.dispose()


def _yaml_hint(problem: str) -> str:
    if "tab" in problem or "\\t" in problem:
        return "indent with spaces, not tabs"
    if "mapping values are not allowed" in problem:
        return "quote a value that contains `: ` (for example an expression)"
    return ""


def _record(
    node: yaml.Node, path: PathKey, smap: SourceMap, dups: list[PolicyIssue], filename: str
) -> None:
    """Record the location of ``node`` and everything below it; report duplicate keys."""
    m = node.start_mark
    style = getattr(node, "style", None)
    smap.locs[path] = _Loc(m.line + 1, m.column + 1, style, m.index, node.end_mark.index)
    if isinstance(node, yaml.MappingNode):
        seen: dict[str, int] = {}
        for knode, vnode in node.value:
            key = str(knode.value)
            if key in seen:
                dups.append(
                    PolicyIssue(
                        "FA102",
                        f"key `{key}` appears twice (first on line {seen[key]})",
                        SourceSpan(
                            filename,
                            knode.start_mark.line + 1,
                            knode.start_mark.column + 1,
                            dotted((*path, key)),
                        ),
                        hint="a later key would silently replace the earlier one; keep one",
                    )
                )
                continue
            seen[key] = knode.start_mark.line + 1
            _record(vnode, (*path, key), smap, dups, filename)
    elif isinstance(node, yaml.SequenceNode):
        for i, child in enumerate(node.value):
            _record(child, (*path, str(i)), smap, dups, filename)


def _parse_json(text: str, filename: str, smap: SourceMap) -> Any:
    try:
        data = json.loads(text)
    except json.JSONDecodeError as e:
        raise PolicyError(
            [PolicyIssue("FA101", f"JSON syntax: {e.msg}", SourceSpan(filename, e.lineno, e.colno))]
        ) from None
    # JSON is YAML: compose it once more to learn where each value stands, and to catch
    # duplicate keys, which json.loads would silently resolve to the last.
    dups: list[PolicyIssue] = []
    try:
        loader = yaml.SafeLoader(text)
        try:
            node = loader.get_single_node()
            if node is not None:
                _record(node, (), smap, dups, filename)
        finally:
            loader.dispose()
    except yaml.YAMLError:
        smap.locs.clear()
    if dups:
        raise PolicyError(dups)
    return data


def _parse_toml(text: str, filename: str, smap: SourceMap) -> Any:
    smap.locs.update(_toml_locations(text))
    try:
        return tomllib.loads(text)
    except tomllib.TOMLDecodeError as e:
        m = re.search(r"\(at line (\d+), column (\d+)\)", str(e))
        line, col = (int(m.group(1)), int(m.group(2))) if m else (0, 0)
        msg = re.sub(r"\s*\(at line \d+, column \d+\)", "", str(e))
        raise PolicyError(
            [PolicyIssue("FA101", f"TOML syntax: {msg}", SourceSpan(filename, line, col))]
        ) from None


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
        if isinstance(node, Mapping) and str(part) in {str(k) for k in node}:
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
            close = difflib.get_close_matches(key, fields, n=1)
            issue = PolicyIssue(
                "FA110",
                f"unknown field `{key}`",
                span,
                hint=f"did you mean `{close[0]}`?" if close else "remove it or check the spelling",
            )
        elif typ == "missing":
            issue = PolicyIssue(
                "FA111",
                f"missing required field `{leftover or e['loc'][-1]}`",
                span,
                hint=f"add `{leftover or e['loc'][-1]}:` under `{dotted(path) or 'the top level'}`",
            )
        else:
            msg = str(e["msg"]).removeprefix("Value error, ")
            issue = PolicyIssue(
                "FA112" if typ != "value_error" else "FA113",
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
