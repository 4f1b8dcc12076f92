"""Known divergences as data: id patterns, reason, source, strictness.

``cases/divergences.yaml`` lists the places where a framework departs from its
documented behaviour (or from the exact value, beyond the tolerance model).
Each becomes a strict xfail on the checks whose id it matches, so a fix
upstream shows as an XPASS and fails the run until the entry is removed. A
pattern that matches no check that runs (one skipped for its binding's
declaration, such as a metric's gradient, does not run) is stale: reported at
the end of a whole-suite run, and a self-test fails on any in the shipped file.
"""

from __future__ import annotations

import fnmatch
import re
from dataclasses import dataclass, field
from functools import lru_cache
from pathlib import Path

import jsonschema

from conformance.cases import CASES_DIR, DIVERGENCES_FILE, CaseError, _read_yaml, parse_versions, schema
from conformance import versions as measured_on
from conformance.regions import REGIONS

# a figure as a reason writes it: digits with an exponent, or inf, -inf and nan (a loss that overflowed)
QUOTED_NUMBER = "^(-?[0-9.]+(e[-+]?[0-9]+)?|-?inf|nan)$"
SCHEMA = {
    "type": "object",
    "additionalProperties": False,
    "required": ["divergences"],
    "properties": {
        "divergences": {
            "type": "array",
            "items": {
                "type": "object",
                "additionalProperties": False,
                "required": ["id", "match", "reason", "source", "versions"],
                "properties": {
                    "id": {"type": "string", "pattern": "^[a-z][a-z0-9_]*$"},
                    "match": {"type": "array", "minItems": 1, "items": {"type": "string", "minLength": 3}},
                    "reason": {"type": "string", "minLength": 20},
                    "source": {"type": "string", "minLength": 5},
                    "strict": {"type": "boolean", "default": True},
                    "kind": {"enum": ["semantics", "precision", "special-values", "dtype", "behaviour"]},
                    "checks": {"enum": ["value", "gradient", "both"], "default": "value"},
                    "region": {"enum": sorted(REGIONS)},  # one vocabulary: conformance.regions
                    "region_bindings": {"type": "array", "items": {"type": "string"}},
                    # the versions it was measured on: a specifier per distribution ({torch: "==2.13.0"})
                    "versions": schema()["$defs"]["versions"],  # one vocabulary with the case files
                    # the devices it was measured on (conformance.devices; default cpu): elsewhere it is unverified
                    "devices": schema()["$defs"]["devices"],
                    # figures the reason quotes, recomputed on the pinned versions by tests/test_divergence_quotes.py
                    "quotes": {"type": "array", "items": {
                        "type": "object", "additionalProperties": False, "required": ["check", "got"],
                        "properties": {
                            "check": {"type": "string"},  # a check id the entry matches: case, binding, dtype
                            "index": {"type": "array", "items": {"type": "integer"}},  # default: the first element
                            "got": {"type": "string", "pattern": QUOTED_NUMBER},  # as the reason writes it
                            "exact": {"type": "string", "pattern": QUOTED_NUMBER},
                        }}},
                },
            },
        }
    },
}


@dataclass(frozen=True)
class Divergence:
    id: str
    match: tuple[str, ...]
    reason: str
    source: str
    strict: bool = True
    kind: str = "semantics"
    checks: str = "value"  # which checks of a matching id: value, gradient or both
    region: str | None = None  # conformance.regions: where property tests hold it to a weaker bound or leave it out
    region_bindings: tuple[str, ...] = ()
    quotes: tuple[dict, ...] = field(default=(), compare=False)  # {check, got, exact?, index?}: tests/test_divergence_quotes.py
    versions: tuple[tuple[str, str], ...] = ()  # (distribution, specifier): where it was measured
    devices: tuple[str, ...] = ()  # the devices it was measured on (patterns; empty: conformance.devices.MEASURED_ON)

    def unverified(self, distributions=None) -> str | None:
        """Why this entry is unverified on the installed versions of ``distributions`` (a check's binding's),
        or None: see conformance.versions."""
        return measured_on.unverified(self.versions, f"known divergence [{self.id}]", distributions)

    def matches(self, check_id: str, check_kind: str | None = None) -> bool:
        if check_kind is not None and self.checks != "both":
            wanted = "gradient" if self.checks == "gradient" else ("value", "behaviour")
            if check_kind not in wanted:
                return False
        return _matcher(self.match)(check_id) is not None

    def region_applies(self, binding_id: str) -> bool:
        """Whether this entry's property region covers the binding's property tests."""
        return bool(self.region) and any(fnmatch.fnmatchcase(binding_id, pattern) for pattern in self.region_bindings)

    def xfail_reason(self) -> str:
        return f"[{self.id}] {self.reason} (source: {self.source})"


@lru_cache(maxsize=None)
def _matcher(patterns: tuple[str, ...]):
    """The fnmatch patterns as one compiled regular expression: matching every check
    of the suite against every pattern one by one was most of the collection's time."""
    return re.compile("|".join(fnmatch.translate(pattern) for pattern in patterns)).match


def load(directory: Path = CASES_DIR) -> list[Divergence]:
    path = directory / DIVERGENCES_FILE
    if not path.exists():
        return []
    label = str(path.relative_to(directory.parent))
    document = _read_yaml(path, label) or {"divergences": []}
    errors = list(jsonschema.Draft202012Validator(SCHEMA).iter_errors(document))
    if errors:
        error = errors[0]
        raise CaseError(label, None, ".".join(str(p) for p in error.absolute_path) or None, error.message)
    entries = [Divergence(id=raw["id"], match=tuple(raw["match"]), reason=raw["reason"].strip(),
                          source=raw["source"], strict=raw.get("strict", True), kind=raw.get("kind", "semantics"),
                          checks=raw.get("checks", "value"), region=raw.get("region"),
                          region_bindings=tuple(raw.get("region_bindings") or ()),
                          quotes=tuple(raw.get("quotes") or ()),
                          versions=parse_versions(label, raw["id"], raw.get("versions")),
                          devices=tuple(raw.get("devices") or ()))
               for raw in document["divergences"]]
    ids = [entry.id for entry in entries]
    duplicates = {i for i in ids if ids.count(i) > 1}
    if duplicates:
        raise CaseError(label, sorted(duplicates)[0], "id", "duplicate divergence id")
    return entries


def any_entry(divergences):
    """One expression of every entry's patterns: most checks match no entry, and this rules them out in one
    match instead of one per entry (that loop, for every check at collection and again for the stale
    entries, was a third of the collection's time)."""
    return _matcher(tuple(pattern for entry in divergences for pattern in entry.match))


def matching(divergences, check_id: str, check_kind: str | None = None, any_match=None) -> list[Divergence]:
    """The entries matching a check, in file order; ``any_match`` is :func:`any_entry`'s expression, where the
    caller matches many checks against the same entries."""
    if not divergences or (any_match or any_entry(divergences))(check_id) is None:
        return []
    return [entry for entry in divergences if entry.matches(check_id, check_kind)]


def first_match(divergences, check_id: str, check_kind: str | None = None) -> Divergence | None:
    return next(iter(matching(divergences, check_id, check_kind)), None)


def stale(divergences, check_ids) -> list[tuple[Divergence, tuple[str, ...]]]:
    """Each entry with its patterns that match none of ``check_ids`` (pairs (id,
    kind) of the checks that run, not the selection), for the entries that have
    any: an entry all of whose patterns are listed matches nothing at all."""
    found = []
    if divergences:
        some_entry = any_entry(divergences)
        check_ids = [(check, kind) for check, kind in check_ids if some_entry(check) is not None]
    for entry in divergences:
        # the entry's one expression first, then each pattern over the few checks it matched
        matched = [check for check, kind in check_ids if entry.matches(check, kind)]
        dead = tuple(pattern for pattern in entry.match if not any(map(_matcher((pattern,)), matched)))
        if dead:
            found.append((entry, dead))
    return found


def known_regions(divergences, binding_id: str, problem, kinds=None) -> list:
    """(entry, mask) of each known divergence whose region applies to this binding, of the entries of
    ``kinds`` only where given."""
    return [(entry, REGIONS[entry.region](problem)) for entry in divergences
            if entry.region_applies(binding_id) and (kinds is None or entry.kind in kinds)]
