"""Case files: load (safe YAML only), validate (JSON Schema, then meaning), expand.

Every error names the file, the case and the field::

    cases/published.yaml: case 'article2_rows': field 'inputs.logits': not a number: 'x'

A case with a ``grid`` expands into one case per point of the product of its
option lists, ids ``<id>@<tokens>`` (``grid_ce@weight+ignore_index-100+ls0.1+mean``).
"""

from __future__ import annotations

import itertools
import json
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path
from typing import Any, Mapping

import jsonschema
import numpy as np
import yaml

from conformance import arrays, options as vocabulary
from conformance.bindings import prediction_name
from conformance.locations import ROOT

CASES_DIR = ROOT / "cases"
SCHEMA_PATH = CASES_DIR / "schema.json"
DEFAULT_DTYPES = ("float16", "bfloat16", "float32", "float64")
# Words that -k selects by: a case id holding one would leak into that selection. The
# dtypes are the cases' own vocabulary; the framework labels and markers come from the
# loaded bindings (conformance.suite.validate_references checks them).
RESERVED_WORDS = DEFAULT_DTYPES
DIVERGENCES_FILE = "divergences.yaml"


class CaseError(ValueError):
    """A case file that cannot be used; the message names file, case and field."""

    def __init__(self, file: str, case: str | None, field_path: str | None, message: str):
        self.file, self.case, self.field, self.detail = file, case, field_path, message
        where = [file]
        if case:
            where.append(f"case {case!r}")
        if field_path:
            where.append(f"field {field_path!r}")
        super().__init__(": ".join(where + [message]))


@dataclass(frozen=True, eq=False)
class Case:
    """One case after grid expansion. ``inputs`` are float64 / int64 arrays as
    written; the harness rounds them to each dtype under test."""

    id: str
    base_id: str
    family: str
    file: str
    inputs: Mapping[str, np.ndarray]
    options: Mapping[str, Any]
    dtypes: tuple[str, ...]
    tags: tuple[str, ...] = ()
    bindings: tuple[str, ...] | None = None
    description: str = ""
    source: str = ""
    published: tuple[Mapping[str, Any], ...] = ()
    wrong_answers: tuple[Mapping[str, Any], ...] = ()
    tolerance_k: Mapping[str, float] = field(default_factory=dict)
    tolerance_reason: str = ""
    expect: Mapping[str, Mapping[str, Any]] = field(default_factory=dict)
    input_dtypes: Mapping[str, str] = field(default_factory=dict)
    python_inputs: tuple[str, ...] = ()
    # the versions its behaviour entries were measured on (conformance.versions): (distribution, specifier)
    versions: tuple[tuple[str, str], ...] = ()

    @property
    def prediction_name(self) -> str:
        return prediction_name(self.family)

    def summary(self) -> str:
        """'logits (3, 3) in [0.1, 0.9]; labels (3,) int in [0, 2]' for messages."""
        parts = []
        for name, value in self.inputs.items():
            parts.append(f"{name} {describe_array(value)}")
        return "; ".join(parts)


def describe_array(value) -> str:
    array = np.asarray(value)
    text = f"{tuple(array.shape)} {array.dtype.name}"
    if array.size == 0:
        return text + " (empty)"
    if array.size <= 12:
        return text + " " + np.array2string(array.reshape(-1), precision=9, separator=", ", max_line_width=200)
    with np.errstate(invalid="ignore"):
        finite = array[np.isfinite(array)] if array.dtype.kind == "f" else array
        span = f" in [{finite.min():.6g}, {finite.max():.6g}]" if finite.size else ""
    specials = ""
    if array.dtype.kind == "f":
        n_nan, n_inf = int(np.isnan(array).sum()), int(np.isinf(array).sum())
        specials = "".join([f", {n_nan} NaN" if n_nan else "", f", {n_inf} inf" if n_inf else ""])
    return text + span + specials


@lru_cache(maxsize=1)
def schema() -> dict:
    return json.loads(SCHEMA_PATH.read_text())


def _field_path(path) -> str:
    """'inputs.logits' from a jsonschema path below one case."""
    text = ""
    for part in path:
        text += f"[{part}]" if isinstance(part, int) else (f".{part}" if text else str(part))
    return text


# libyaml's parser where PyYAML was built with it (the wheels are): the same documents, several times faster
_YAML_LOADER = getattr(yaml, "CSafeLoader", yaml.SafeLoader)


def _read_yaml(path: Path, label: str) -> Any:
    try:
        return yaml.load(path.read_text(), Loader=_YAML_LOADER)
    except yaml.YAMLError as error:
        mark = getattr(error, "problem_mark", None)
        where = f"line {mark.line + 1}, column {mark.column + 1}: " if mark else ""
        raise CaseError(label, None, None, f"YAML syntax error: {where}{getattr(error, 'problem', error)}") from None


def _schema_check(document: Any, label: str) -> None:
    validator = jsonschema.Draft202012Validator(schema())
    errors = sorted(validator.iter_errors(document), key=lambda e: list(e.absolute_path))
    if not errors:
        return
    error = min(errors, key=lambda e: -len(e.absolute_path))
    path = list(error.absolute_path)
    case_name = None
    if len(path) >= 2 and path[0] == "cases" and isinstance(path[1], int):
        cases = document.get("cases") or []
        entry = cases[path[1]] if path[1] < len(cases) else None
        case_name = entry.get("id") if isinstance(entry, dict) and isinstance(entry.get("id"), str) else f"#{path[1]}"
        path = path[2:]
    message = error.message
    if error.validator in ("oneOf", "anyOf") and error.context:
        message = "; or ".join(sorted({sub.message for sub in error.context}))[:400]
    raise CaseError(label, case_name, _field_path(path) or None, message)


def _build(label, case_id, field_path, spec) -> np.ndarray:
    try:
        return arrays.build(spec)
    except (arrays.ArraySpecError, KeyError, TypeError, ValueError) as error:
        raise CaseError(label, case_id, field_path, str(error)) from None


def _option_value(label, case_id, field_path, name, value):
    """Arrays in array-valued options; plain values otherwise."""
    kind = vocabulary.VOCABULARY[name][0]
    if value is None or value == vocabulary.DEFAULT:
        return value
    if kind == "array" or (kind == "float_or_array" and isinstance(value, (list, dict))):
        return _build(label, case_id, field_path, value)
    return value


def _check_id(label, case_id) -> None:
    lowered = case_id.lower()
    for word in RESERVED_WORDS:
        if word in lowered:
            raise CaseError(label, case_id, "id", f"must not contain {word!r}: -k {word} would select it")


def _check_representable(label, case_id, inputs, dtypes) -> None:
    """A finite input that overflows a listed dtype would silently become inf. Only a dtype whose largest
    finite value the input's largest magnitude exceeds can overflow (a value within half a unit of it rounds
    down to it), so the input is rounded only to those."""
    from conformance.dtypes import FORMATS, round_to

    for name, value in inputs.items():
        if value.dtype.kind != "f" or not value.size:
            continue
        finite = np.isfinite(value)
        largest = float(np.max(np.abs(value), where=finite, initial=0.0))
        for dtype in dtypes:
            if largest <= FORMATS[dtype].max:
                continue
            with np.errstate(over="ignore"):
                rounded = round_to(value, dtype).astype(np.float64)
            if np.any(finite & ~np.isfinite(rounded)):
                raise CaseError(label, case_id, f"inputs.{name}",
                                f"overflows {dtype}; list the dtypes that hold it in 'dtypes'")


def parse_versions(label: str, case_id: str, raw) -> tuple[tuple[str, str], ...]:
    """A ``versions:`` mapping (conformance.versions) as (distribution, specifier) pairs; a malformed
    specifier is a case-file error naming the file, the case or entry, and the field."""
    from conformance import versions

    try:
        return versions.parse(raw)
    except ValueError as error:
        field_name, message = str(error).split(": ", 1)
        raise CaseError(label, case_id, field_name, message) from None


def _expand(label: str, raw: dict, defaults: dict) -> list[Case]:
    case_id = raw["id"]
    _check_id(label, case_id)
    family = raw["family"]
    inputs = {}
    for name, spec in raw["inputs"].items():
        inputs[name] = _build(label, case_id, f"inputs.{name}", spec)
    wanted = prediction_name(family)
    if wanted not in inputs:
        raise CaseError(label, case_id, f"inputs.{wanted}", f"family {family!r} needs {wanted!r}")
    extra = set(inputs) - {wanted, "labels"}
    if extra:
        raise CaseError(label, case_id, f"inputs.{sorted(extra)[0]}", f"family {family!r} takes {wanted!r} and 'labels'")
    fixed = {name: _option_value(label, case_id, f"options.{name}", name, value)
             for name, value in (raw.get("options") or {}).items()}
    grid = raw.get("grid") or {}
    overlap = set(fixed) & set(grid)
    if overlap:
        raise CaseError(label, case_id, f"grid.{sorted(overlap)[0]}", "set both in 'options' and in 'grid'")
    grid_values = {name: [_option_value(label, case_id, f"grid.{name}[{i}]", name, v) for i, v in enumerate(values)]
                   for name, values in grid.items()}
    tolerance = raw.get("tolerance") or {}
    common = dict(
        base_id=case_id,
        family=family,
        file=label,
        inputs=inputs,
        dtypes=tuple(raw.get("dtypes") or defaults.get("dtypes") or DEFAULT_DTYPES),
        tags=tuple(dict.fromkeys(list(defaults.get("tags") or []) + list(raw.get("tags") or []))),
        bindings=tuple(raw.get("bindings") or defaults.get("bindings") or ()) or None,
        description=raw.get("description", ""),
        source=raw.get("source", defaults.get("source", "")),
        published=tuple(raw.get("published") or ()),
        wrong_answers=tuple(raw.get("wrong_answers") or ()),
        tolerance_k=dict(tolerance.get("k") or {}),
        tolerance_reason=tolerance.get("reason", ""),
        expect=dict(raw.get("expect") or {}),
        input_dtypes=dict(raw.get("input_dtypes") or {}),
        python_inputs=tuple(raw.get("python_inputs") or ()),
        versions=parse_versions(label, case_id, raw.get("versions") or defaults.get("versions")),
    )
    for pattern, behaviour in common["expect"].items():  # an expectation's own versions, checked here too
        parse_versions(label, case_id, behaviour.get("versions"))
    if common["expect"] and not common["versions"]:
        raise CaseError(label, case_id, "versions", "behaviour entries (expect) need the versions they were measured "
                        "on: set versions in the case or in the file's defaults")
    if not raw.get("input_dtypes"):
        _check_representable(label, case_id, inputs, common["dtypes"])
    if not grid_values:
        return [Case(id=case_id, options=fixed, **common)]
    expanded = []
    names = list(grid_values)
    token_lists = {name: vocabulary.grid_tokens(name, grid_values[name]) for name in names}
    for indices in itertools.product(*(range(len(grid_values[name])) for name in names)):
        chosen = {name: grid_values[name][i] for name, i in zip(names, indices) if grid_values[name][i] is not None}
        suffix = vocabulary.join({name: token_lists[name][i] for name, i in zip(names, indices)}) or "plain"
        expanded.append(Case(id=f"{case_id}@{suffix}", options={**fixed, **chosen}, **common))
    return expanded


def load_file(path: Path, root: Path | None = None) -> list[Case]:
    """Every case of one file, validated and expanded."""
    label = str(path.relative_to(root)) if root and path.is_relative_to(root) else str(path)
    document = _read_yaml(path, label)
    if not isinstance(document, dict):
        raise CaseError(label, None, None, "a case file is a mapping with a 'cases' list")
    _schema_check(document, label)
    defaults = document.get("defaults") or {}
    cases: list[Case] = []
    for raw in document["cases"]:
        cases.extend(_expand(label, raw, defaults))
    return cases


def case_files(directory: Path = CASES_DIR) -> list[Path]:
    return sorted(p for p in directory.glob("*.yaml") if p.name != DIVERGENCES_FILE)


def load_all(directory: Path = CASES_DIR) -> list[Case]:
    """All cases of a directory, ids unique across files."""
    root = directory.parent
    seen: dict[str, str] = {}
    cases: list[Case] = []
    for path in case_files(directory):
        for case in load_file(path, root):
            if case.id in seen:
                raise CaseError(case.file, case.base_id, "id", f"duplicate id, first defined in {seen[case.id]}")
            seen[case.id] = case.file
            cases.append(case)
    return cases


_PATTERN_CHARS = re.compile(r"[*?\[]")


def is_pattern(text: str) -> bool:
    return bool(_PATTERN_CHARS.search(text))
