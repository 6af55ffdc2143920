"""Reading a configuration file strictly: YAML as `yaml.safe_load` reads it, but a file that is ambiguous or
hostile is refused with one problem naming the file, the place and the fix, never a traceback.

Refused: a path that is no readable file, bytes that are not UTF-8, an empty file, a top level that is not a
mapping, a key given twice in one mapping (YAML would keep the last one silently), nesting deeper than any
configuration needs (which would exhaust Python's stack) and aliases that expand to more nodes than any
configuration has (a "billion laughs" document is tiny on disk and endless once walked).
"""

from __future__ import annotations

from collections.abc import Mapping
from pathlib import Path
from typing import Any, TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from retention.config.problems import ConfigError, Problem, entry_path

M = TypeVar("M", bound=BaseModel)

MAX_FILE_BYTES = 5_000_000
"""A configuration is a few kilobytes; anything this large is the wrong file."""

MAX_DEPTH = 50
"""Levels of nesting allowed; the deepest entry a configuration has (a column's options) is about eight."""

MAX_NODES = 200_000
"""Values a document may hold once its aliases are expanded; the shipped catalog has a few thousand."""

_YAML_FIX = "fix the YAML syntax"


class _Refused(yaml.YAMLError):
    """A document the strict loader will not build; `problem_mark` says where."""

    def __init__(self, problem: str, mark: yaml.Mark | None, fix: str) -> None:
        super().__init__(problem)
        self.problem = problem
        self.problem_mark = mark
        self.fix = fix


class StrictLoader(yaml.SafeLoader):
    """`yaml.SafeLoader` with a bound on nesting; keys and aliases are checked on the composed node tree."""

    def __init__(self, stream: str) -> None:
        super().__init__(stream)
        self._depth = 0

    def compose_node(self, parent: yaml.Node | None, index: object) -> yaml.Node | None:
        self._depth += 1
        try:
            if self._depth > MAX_DEPTH:
                raise _Refused(
                    f"nested more than {MAX_DEPTH} levels deep",
                    self.peek_event().start_mark,
                    "a configuration needs a few levels; remove the runaway brackets or indentation",
                )
            return super().compose_node(parent, index)  # type: ignore[arg-type]
        finally:
            self._depth -= 1


def _where(mark: yaml.Mark | None) -> str:
    return f"line {mark.line + 1}, column {mark.column + 1}" if mark is not None else "(file)"


def _key_text(node: yaml.Node) -> str:
    return repr(node.value) if isinstance(node, yaml.ScalarNode) else "a key that is not a single value"


def _check_tree(root: yaml.Node, file: str) -> list[Problem]:
    """Duplicate keys (with their mapping's entry path) and the expanded size, in one walk that visits each node
    once however often aliases repeat it, and without recursion however deep the document is."""
    problems: list[Problem] = []
    size: dict[int, int] = {}
    on_path: set[int] = set()
    stack: list[tuple[yaml.Node, list[object], bool]] = [(root, [], False)]
    while stack:
        node, path, done = stack.pop()
        if done:
            on_path.discard(id(node))
            children = _children(node)
            size[id(node)] = min(MAX_NODES + 1, 1 + sum(size.get(id(c), 0) for c in children))
            continue
        if id(node) in size:
            continue
        if id(node) in on_path:
            problems.append(
                Problem(
                    file,
                    _where(node.start_mark),
                    f"at {entry_path(path)}: an alias refers to a value that contains it, so it never ends",
                    "write the value out instead of the alias",
                )
            )
            return problems
        on_path.add(id(node))
        stack.append((node, path, True))
        if isinstance(node, yaml.MappingNode):
            seen: dict[object, yaml.Node] = {}
            for key_node, value_node in node.value:
                key: object = key_node.value if isinstance(key_node, yaml.ScalarNode) else None
                if isinstance(key_node, yaml.ScalarNode) and key_node.tag != "tag:yaml.org,2002:merge":
                    identity = (key_node.tag, key)
                    if identity in seen:
                        first = seen[identity].start_mark
                        problems.append(
                            Problem(
                                file,
                                f"line {key_node.start_mark.line + 1}",
                                f"duplicate key {_key_text(key_node)} in {entry_path(path)} (first given on line "
                                f"{first.line + 1}); YAML would silently keep only the last one",
                                "keep one of them: merge the two entries or remove one",
                            )
                        )
                    else:
                        seen[identity] = key_node
                stack.append((value_node, [*path, key if key is not None else "?"], False))
                stack.append((key_node, path, False))
        elif isinstance(node, yaml.SequenceNode):
            for i, item in enumerate(node.value):
                stack.append((item, [*path, i], False))
    if size.get(id(root), 0) > MAX_NODES:
        problems.append(
            Problem(
                file,
                "(file)",
                f"its aliases expand to more than {MAX_NODES:,} values (an alias bomb?)",
                "write the configuration out without nested aliases",
            )
        )
    return problems


def _children(node: yaml.Node) -> list[yaml.Node]:
    if isinstance(node, yaml.MappingNode):
        return [n for pair in node.value for n in pair]
    if isinstance(node, yaml.SequenceNode):
        return list(node.value)
    return []


def _describe(data: object) -> str:
    if isinstance(data, list):
        return f"a list of {len(data)} item{'s' if len(data) != 1 else ''}"
    text = repr(data)
    return f"the single value {text[:60]}{'...' if len(text) > 60 else ''}"


def _read_text(path: Path) -> str:
    file = str(path)
    if not path.exists():
        raise ConfigError([Problem(file, "(file)", "file not found", "create it or pass the right path")])
    if path.is_dir():
        raise ConfigError([Problem(file, "(file)", "is a directory, not a file", "name the YAML file itself")])
    if not path.is_file():
        raise ConfigError([Problem(file, "(file)", "is not a regular file", "name the YAML file itself")])
    try:
        raw = path.read_bytes() if path.stat().st_size <= MAX_FILE_BYTES else None
    except OSError as exc:
        reason = exc.strerror or type(exc).__name__
        raise ConfigError([Problem(file, "(file)", f"cannot be read: {reason}", "check its permissions")]) from None
    if raw is None:
        raise ConfigError(
            [
                Problem(
                    file,
                    "(file)",
                    f"is larger than {MAX_FILE_BYTES:,} bytes, far more than a configuration",
                    "name the YAML configuration file itself",
                )
            ]
        )
    try:
        return raw.decode("utf-8").removeprefix("\ufeff")
    except UnicodeDecodeError as exc:
        line = raw[: exc.start].count(b"\n") + 1
        raise ConfigError(
            [
                Problem(
                    file,
                    f"line {line}",
                    f"is not UTF-8 text (byte 0x{raw[exc.start]:02x} at offset {exc.start})",
                    "save the file as UTF-8",
                )
            ]
        ) from None


def read_yaml(path: Path) -> object:
    """The document of a configuration file, as `yaml.safe_load` reads it; raises ConfigError otherwise.

    The result is a mapping: an empty file, a list or a single value at the top are refused here."""
    file = str(path)
    text = _read_text(path)
    loader: StrictLoader | None = None
    try:
        loader = StrictLoader(text)
        node = loader.get_single_node()
        problems = _check_tree(node, file) if node is not None else []
        if problems:
            raise ConfigError(sorted(problems, key=lambda p: (len(p.entry), p.entry)))
        data: Any = loader.construct_document(node) if node is not None else None
    except _Refused as exc:
        raise ConfigError([Problem(file, _where(exc.problem_mark), str(exc.problem), exc.fix)]) from None
    except yaml.MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        said = f"{exc.context}, {exc.problem}" if exc.context and exc.problem else (exc.problem or str(exc))
        raise ConfigError([Problem(file, _where(mark), f"not valid YAML: {said}", _YAML_FIX)]) from None
    except yaml.reader.ReaderError as exc:
        line = text[: exc.position].count("\n") + 1
        code = ord(exc.character) if isinstance(exc.character, str) else int(exc.character)
        raise ConfigError(
            [
                Problem(
                    file,
                    f"line {line}",
                    f"not valid YAML: the control character U+{code:04X} is not allowed in YAML text",
                    "remove the control character (was the file saved as binary?)",
                )
            ]
        ) from None
    except yaml.YAMLError as exc:
        raise ConfigError([Problem(file, "(file)", f"not valid YAML: {exc}", _YAML_FIX)]) from None
    except RecursionError:
        raise ConfigError(
            [Problem(file, "(file)", "nested too deeply to read", "remove the runaway brackets or indentation")]
        ) from None
    finally:
        if loader is not None:
            loader.dispose()
    if data is None:
        raise ConfigError(
            [
                Problem(
                    file,
                    "(file)",
                    "the file is empty (or only comments)",
                    "write its settings as a mapping of fields, see config/ for an example",
                )
            ]
        )
    if not isinstance(data, Mapping):
        raise ConfigError(
            [
                Problem(
                    file,
                    "(top level)",
                    f"expected a mapping of fields, but the file holds {_describe(data)}",
                    "write 'field: value' lines at the top level, see config/ for an example",
                )
            ]
        )
    return data


def validate(model: type[M], data: object, file: str) -> tuple[M | None, list[Problem]]:
    """The model built from a document, or every problem pydantic finds, each naming its entry."""
    if not isinstance(data, Mapping):
        return None, [Problem(file, "(top level)", "expected a mapping of fields", "see config/ for an example")]
    try:
        return model.model_validate(data), []
    except ValidationError as exc:
        problems = []
        for err in exc.errors():
            loc = err["loc"]
            kind = err["type"]
            if kind == "extra_forbidden":
                message, fix = f"unknown field {loc[-1]!r}", "remove it or correct its spelling (see README)"
            elif kind == "missing":
                message, fix = f"required field {loc[-1]!r} is missing", f"add '{loc[-1]}:' to this entry"
            else:
                message = err["msg"].removeprefix("Value error, ")
                fix = "" if "; " in message else "correct the value"
                if "; " in message and kind == "value_error":
                    message, fix = message.split("; ", 1)
            problems.append(Problem(file, entry_path(loc), message, fix))
        return None, problems


def parse(model: type[M], path: Path) -> tuple[M | None, list[Problem]]:
    """Read and validate one file: the model, or the problems that stopped it."""
    try:
        data = read_yaml(path)
    except ConfigError as exc:
        return None, exc.problems
    return validate(model, data, str(path))
