"""Load a site YAML into a validated, frozen :class:`SiteConfig`, or fail naming file:line:key.

The YAML is read with ruamel.yaml (which keeps line numbers), validated by pydantic with the
cross-field checks deferred, then cross-checked here so every problem carries its key path.
"""

from __future__ import annotations

from pathlib import Path
from typing import Any, TypeVar

from pydantic import BaseModel, ValidationError
from ruamel.yaml import YAML
from ruamel.yaml.comments import CommentedMap, CommentedSeq
from ruamel.yaml.error import MarkedYAMLError, YAMLError
from ruamel.yaml.nodes import MappingNode, Node, ScalarNode, SequenceNode
from ruamel.yaml.tokens import (
    BlockEndToken,
    BlockMappingStartToken,
    BlockSequenceStartToken,
    FlowMappingEndToken,
    FlowMappingStartToken,
    FlowSequenceEndToken,
    FlowSequenceStartToken,
)

from gridctl.config.checks import cross_check
from gridctl.config.devices import DeviceProfile
from gridctl.config.errors import ConfigError, ConfigIssue, format_key_path
from gridctl.config.site import SiteConfig

#: Key of a site file naming the folder of device profiles, relative to the site file.
PROFILES_DIR_KEY = "device_profiles_dir"
DEFAULT_PROFILES_DIR = "devices"
#: Deepest nesting of collections a YAML input may have. Real site files nest less than 10
#: levels; ruamel's recursive parser would overflow the stack at a few hundred.
MAX_NESTING_DEPTH = 64

ModelT = TypeVar("ModelT", bound=BaseModel)

_OPENING = (BlockMappingStartToken, BlockSequenceStartToken, FlowMappingStartToken,
            FlowSequenceStartToken)
_CLOSING = (BlockEndToken, FlowMappingEndToken, FlowSequenceEndToken)


def read_yaml(path: Path) -> Any:
    """Parse ``path`` keeping line numbers; raise ConfigError for a missing file or bad YAML."""
    try:
        text = path.read_text(encoding="utf-8")
    except FileNotFoundError:
        raise ConfigError([ConfigIssue(path, 0, "", "file not found")]) from None
    except (OSError, UnicodeDecodeError) as exc:
        raise ConfigError([ConfigIssue(path, 0, "", f"cannot read file: {exc}")]) from None
    try:
        too_deep_line = _line_too_deep(text)
        tree = None if too_deep_line else YAML(typ="rt").load(text)
    except MarkedYAMLError as exc:
        mark = exc.problem_mark or exc.context_mark
        line = mark.line + 1 if mark is not None else 0
        problem = (exc.problem or exc.context or "YAML syntax error").strip()
        raise ConfigError([ConfigIssue(path, line, "", f"YAML syntax error: {problem}")]) from None
    except YAMLError as exc:
        raise ConfigError([ConfigIssue(path, 0, "", f"YAML error: {exc}")]) from None
    except (RecursionError, MemoryError) as exc:
        issue = ConfigIssue(path, 0, "", f"YAML too complex to load ({type(exc).__name__})")
        raise ConfigError([issue]) from None
    except Exception as exc:  # noqa: BLE001 - ruamel's constructors raise ValueError, TypeError...
        line = _line_of_bad_scalar(text)
        raise ConfigError([ConfigIssue(path, line, "", f"YAML value error: {exc}")]) from None
    if too_deep_line:
        message = f"YAML nesting deeper than {MAX_NESTING_DEPTH} levels"
        raise ConfigError([ConfigIssue(path, too_deep_line, "", message)])
    return tree


def _line_too_deep(text: str) -> int:
    """1-based line where collections nest deeper than MAX_NESTING_DEPTH; 0 if they never do.

    Scanning tokens is iterative in ruamel (parsing and composing are recursive), so this is
    safe on any input; a scanner error propagates as the usual syntax error.
    """
    depth = 0
    for token in YAML(typ="rt").scan(text):
        if isinstance(token, _OPENING):
            depth += 1
            if depth > MAX_NESTING_DEPTH:
                return token.start_mark.line + 1
        elif isinstance(token, _CLOSING):
            depth -= 1
    return 0


def _line_of_bad_scalar(text: str) -> int:
    """1-based line of the first scalar ruamel cannot construct (``2025-13-45``, ``!!int x``)."""
    try:
        yaml = YAML(typ="rt")
        root = yaml.compose(text)
        constructor = yaml.constructor
    except Exception:  # noqa: BLE001 - only a line number is wanted; 0 says unknown
        return 0
    pending: list[Node] = [root] if root is not None else []
    seen: set[int] = set()
    while pending:
        node = pending.pop()
        if id(node) in seen:
            continue
        seen.add(id(node))
        if isinstance(node, ScalarNode):
            try:
                constructor.construct_object(node, deep=True)
            except Exception:  # noqa: BLE001 - this is the scalar that failed
                return node.start_mark.line + 1
        elif isinstance(node, SequenceNode):
            pending.extend(reversed(node.value))
        elif isinstance(node, MappingNode):
            pending.extend(n for pair in reversed(node.value) for n in reversed(pair))
    return 0


def _line_of(tree: Any, loc: tuple[str | int, ...]) -> tuple[int, tuple[str | int, ...]]:
    """1-based line of ``loc`` in ``tree`` and the loc with union tags dropped."""
    node, line, kept = tree, 1, []
    for part in loc:
        if isinstance(node, CommentedMap) and part in node:
            pos = node.lc.key(part)
            line, node = pos[0] + 1, node[part]
            kept.append(part)
        elif isinstance(node, CommentedSeq) and isinstance(part, int) and 0 <= part < len(node):
            pos = node.lc.item(part)
            line, node = pos[0] + 1, node[part]
            kept.append(part)
        elif isinstance(node, CommentedMap) and str(part) in {str(v) for v in node.values()
                                                              if isinstance(v, str | int)}:
            continue  # a discriminated-union tag such as 'battery' or '2'
        elif isinstance(part, str) and part.startswith(("function-", "list[", "dict[")):
            continue
        else:
            kept.append(part)
            node = None
    return line, tuple(kept)


_TEMPLATES = {
    "missing": "required key missing",
    "extra_forbidden": "unknown key",
    "greater_than": "must be > {gt}",
    "greater_than_equal": "must be >= {ge}",
    "less_than": "must be < {lt}",
    "less_than_equal": "must be <= {le}",
    "finite_number": "must be a finite number (not .inf, .nan or beyond float range like 1e999)",
}


def _message(error: dict[str, Any]) -> str:
    if error["type"] == "string_pattern_mismatch" and "a-z0-9_." in str(error.get("ctx", {})):
        return "must be a lower-case identifier (a-z, 0-9, '-', '_', '.'; at most 64)"
    if error["type"] == "too_short" and error.get("ctx", {}).get("min_length") == 1:
        return "must not be empty"
    template = _TEMPLATES.get(error["type"])
    if template is not None:
        return template.format(**error.get("ctx", {}))
    message = str(error["msg"])
    for prefix in ("Value error, ", "Assertion failed, "):
        message = message.removeprefix(prefix)
    return message


def _issues_from_validation(path: Path, tree: Any, exc: ValidationError) -> list[ConfigIssue]:
    issues = []
    for error in exc.errors(include_url=False):
        line, loc = _line_of(tree, tuple(error["loc"]))
        issues.append(ConfigIssue(path, line, format_key_path(loc), _message(error)))
    return _dedupe(issues)


def _dedupe(issues: list[ConfigIssue]) -> list[ConfigIssue]:
    seen, unique = set(), []
    for issue in issues:
        key = (issue.line, issue.key_path, issue.message)
        if key not in seen:
            seen.add(key)
            unique.append(issue)
    return unique


def issue_at(path: Path, tree: Any, loc: tuple[str | int, ...], message: str) -> ConfigIssue:
    """A :class:`ConfigIssue` for key path ``loc`` of a file read by :func:`read_yaml`, with its line."""
    line, kept = _line_of(tree, loc)
    return ConfigIssue(path, line, format_key_path(kept), message)


def load_model(path: Path, model: type[ModelT]) -> tuple[ModelT, Any]:
    """Read a YAML mapping and validate it as ``model``; raise ConfigError naming file:line:key.

    Returns the model and the YAML tree (for :func:`issue_at` in later cross-checks).
    """
    tree = read_yaml(path)
    if not isinstance(tree, CommentedMap):
        raise ConfigError([ConfigIssue(path, 1, "", "the file must be a YAML mapping")])
    try:
        return model.model_validate(dict(tree)), tree
    except ValidationError as exc:
        raise ConfigError(_issues_from_validation(path, tree, exc)) from None


def load_profiles(folder: Path) -> dict[str, DeviceProfile]:
    """Every ``*.yaml`` device profile in ``folder``, keyed by id."""
    if not folder.is_dir():
        raise ConfigError([ConfigIssue(folder, 0, "", "device profile folder not found")])
    profiles: dict[str, DeviceProfile] = {}
    issues: list[ConfigIssue] = []
    for file in sorted(folder.glob("*.yaml")):
        tree = read_yaml(file)
        try:
            profile = DeviceProfile.model_validate(tree)
        except ValidationError as exc:
            issues.extend(_issues_from_validation(file, tree, exc))
            continue
        if profile.id in profiles:
            issues.append(ConfigIssue(file, 1, "id", f"duplicate device profile id '{profile.id}'"))
        profiles[profile.id] = profile
    if issues:
        raise ConfigError(issues)
    return profiles


def _with_profiles(path: Path, tree: CommentedMap) -> dict[str, Any]:
    data = dict(tree)
    folder_name = data.get(PROFILES_DIR_KEY, DEFAULT_PROFILES_DIR)
    folder = (path.parent / str(folder_name)).resolve()
    if not folder.is_dir() and PROFILES_DIR_KEY not in tree:
        return data  # no profile folder beside the file: inline profiles only
    shared = {k: v.model_dump(mode="json") for k, v in load_profiles(folder).items()}
    inline = dict(data.get("device_profiles") or {})
    data["device_profiles"] = {**shared, **inline}
    return data


def load_site(path: str | Path) -> SiteConfig:
    """Load and validate a site file; raise :class:`ConfigError` listing every problem."""
    path = Path(path)
    tree = read_yaml(path)
    if not isinstance(tree, CommentedMap):
        raise ConfigError([ConfigIssue(path, 1, "", "a site file must be a YAML mapping")])
    data = _with_profiles(path, tree)
    try:
        site = SiteConfig.model_validate(data, context={"defer_cross_checks": True})
    except ValidationError as exc:
        raise ConfigError(_issues_from_validation(path, tree, exc)) from None
    problems = cross_check(site)
    if problems:
        issues = []
        for loc, message in problems:
            line, kept = _line_of(tree, loc)
            issues.append(ConfigIssue(path, line, format_key_path(kept), message))
        raise ConfigError(_dedupe(issues))
    return SiteConfig.model_validate(data)
