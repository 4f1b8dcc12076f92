"""The suite as data: cases x bindings x dtypes -> checks, with ids and marks.

Pure functions of the case files and the binding declarations (no pytest, no
framework import), so the generation is testable on its own and identical in
every xdist worker.

A check id reads ``<family>-<case id>-<binding id>-<dtype>-<device>`` (a
gradient check's ``...-<dtype>-gradient-<device>``), e.g.
``sparse_softmax-article2_normal_data-torch:nn.functional.cross_entropy-float32-cpu``,
the same string in ``pytest -v`` and every report. The case data (known
divergences, their quotes) matches the id without its device, ``data_id``, and
says on which devices it was measured (:mod:`conformance.devices`).
"""

from __future__ import annotations

import fnmatch
from dataclasses import dataclass
from functools import lru_cache
from pathlib import Path

from conformance import devices as device_names, divergences as divergence_data, versions as measured_on
from conformance.bindings import AS_CALLED, Binding, load_bindings, selection_words
from conformance.cases import CASES_DIR, Case, CaseError, load_all
from conformance.published import check_published



@dataclass(frozen=True, eq=False)
class Check:
    """One test item: a case computed by a binding in a dtype."""

    id: str
    case: Case
    binding: Binding
    dtype: str
    kind: str  # 'value', 'behaviour' or 'gradient'
    skip: str | None = None
    divergence: divergence_data.Divergence | None = None
    # why its known divergence or behaviour entry is unverified on the installed versions (conformance.versions)
    # or on this device (conformance.devices)
    unverified: str | None = None
    device: str = device_names.DEFAULT

    @property
    def data_id(self) -> str:
        """The id without its device: what the case data (divergence patterns, quotes) matches."""
        return self.id[:-len(self.device) - 1]

    @property
    def markers(self) -> tuple[str, ...]:
        names = [self.binding.framework, *self.binding.markers, self.dtype, *self.case.tags,
                 device_names.kind(self.device)]
        return tuple(dict.fromkeys(names))


@dataclass(frozen=True, eq=False)
class Suite:
    cases: tuple[Case, ...]
    bindings: dict
    checks: tuple[Check, ...]
    divergences: tuple[divergence_data.Divergence, ...]

    def stale_divergences(self):
        """(entry, patterns) for the patterns that match no check that runs: a check skipped by its binding's
        declaration never runs, while one skipped for a framework that is not installed would, with it, one
        its binding leaves out of this run by choice would, with the switch its reason names, and one on a device
        its binding does not declare would, on the device it does (a run on ``--device cuda`` alone)."""
        runs = [(check.data_id, check.kind) for check in self.checks
                if check.skip is None or check.skip in (check.binding.missing_requirement(),
                                                        check.binding.left_out(check.dtype),
                                                        check.binding.unsupported_device(check.device))]
        return divergence_data.stale(self.divergences, runs)


def check_id(case: Case, binding: Binding, dtype: str) -> str:
    return f"{case.family}-{case.id}-{binding.id}-{dtype}"


def applies(case: Case, binding: Binding) -> bool:
    """Same family, and inside the case's ``bindings`` filter if it has one
    (patterns match binding ids or framework labels; an opt-in binding must be
    matched by its id, and so must an as-called form for a behaviour case)."""
    if binding.family != case.family:
        return False
    if AS_CALLED in binding.markers and (case.expect or "behaviour" in case.tags) and not any(
            fnmatch.fnmatchcase(binding.id, pattern) for pattern in case.bindings or ()):
        # input handling is the pinned form's, already recorded for it; an
        # as-called form takes part in a behaviour case that names it
        return False
    if not case.bindings:
        return not binding.opt_in
    if any(fnmatch.fnmatchcase(binding.id, pattern) for pattern in case.bindings):
        return True
    return not binding.opt_in and any(fnmatch.fnmatchcase(binding.framework, pattern) for pattern in case.bindings)


def behaviour_for(case: Case, binding: Binding, device: str = device_names.DEFAULT):
    """The case's expected behaviour for this binding on ``device``: the first entry whose pattern matches the
    binding and whose ``devices`` the device, else the first whose pattern matches (unverified on this device:
    see ``_behaviour_unverified``)."""
    matching = [behaviour for pattern, behaviour in case.expect.items()
                if fnmatch.fnmatchcase(binding.id, pattern) or fnmatch.fnmatchcase(binding.framework, pattern)]
    measured = (behaviour for behaviour in matching
                if device_names.supports(behaviour.get("devices") or device_names.MEASURED_ON, device))
    return next(measured, matching[0] if matching else None)


def gradient_skip_reason(case: Case, binding: Binding, dtype: str, device: str = device_names.DEFAULT) -> str | None:
    if binding.gradient is None or binding.reference_gradient is None:
        return binding.notes.get("gradient", f"{binding.api} has no gradient binding")
    if binding.scale is not None and dtype == "float64":
        return (f"the reference's gradient of {binding.api} is numerical (about 1e-13 relative), "
                "too coarse to judge float64")
    return skip_reason(case, binding, dtype, device=device)


def skip_reason(case: Case, binding: Binding, dtype: str, behaviour: bool = False,
                device: str = device_names.DEFAULT) -> str | None:
    missing = binding.missing_requirement()
    if missing:
        return missing
    elsewhere = binding.unsupported_device(device)
    if elsewhere:
        return elsewhere
    if dtype not in binding.dtypes:
        return binding.notes.get(dtype, f"{binding.api} does not support {dtype} (declared in its binding)")
    left_out = binding.left_out(dtype)
    if left_out:
        return left_out
    for name, value in case.options.items():
        reason = binding.unsupported_option(name, value if not hasattr(value, "shape") else "<array>",
                                            any_value=behaviour)
        if reason:
            return reason
    return None


def _entry_for(divergences, data_id: str, kind: str, distributions, any_match=None):
    """The known divergence of a check (by its ``data_id``): the first matching entry measured on the installed
    versions; else none on the pinned set (the entries describe other versions), and the first matching one,
    unverified, on versions nothing was measured on (conformance.versions). ``any_match``:
    divergences.any_entry's expression of the same entries, built once by the caller."""
    matching = divergence_data.matching(divergences, data_id, kind, any_match)
    verified = next((entry for entry in matching if not entry.unverified(distributions)), None)
    if verified is not None or not matching or measured_on.on_the_pinned_set(distributions):
        return verified
    return matching[0]


def _unverified(entry, distributions, device: str) -> str | None:
    if entry is None:
        return None
    return entry.unverified(distributions) or device_names.unmeasured(entry.devices, device,
                                                                      f"known divergence [{entry.id}]")


def _behaviour_unverified(case: Case, binding: Binding, distributions, device: str) -> str | None:
    """Why the case's behaviour entry for this binding is unverified on the installed versions (the entry's
    own ``versions``, else the case's: the file's defaults) or on ``device`` (its ``devices``)."""
    expected = behaviour_for(case, binding, device)
    if not expected:
        return None
    own = expected.get("versions")
    versions = measured_on.parse(own) if own else case.versions
    what = f"the behaviour entry of {case.id}"
    return (measured_on.unverified(versions, what, distributions)
            or device_names.unmeasured(expected.get("devices"), device, what))


def generate(cases, bindings: dict, divergences, devices=(device_names.DEFAULT,)) -> list[Check]:
    checks = []
    distributions_of = {binding.id: measured_on.binding_distributions(binding) for binding in bindings.values()}
    any_match = divergence_data.any_entry(divergences)
    for device in devices:
        for case in cases:
            for binding in bindings.values():
                if applies(case, binding):
                    checks.extend(_checks_of(case, binding, device, divergences, distributions_of[binding.id],
                                             any_match))
    ids = [check.id for check in checks]
    if len(set(ids)) != len(ids):
        duplicate = next(i for i in ids if ids.count(i) > 1)
        raise CaseError("cases", None, None, f"two checks share the id {duplicate!r}")
    return checks


def _checks_of(case: Case, binding: Binding, device: str, divergences, distributions, any_match) -> list[Check]:
    """The checks of one case and binding on one device: each dtype's value or behaviour check, and gradient
    check."""
    checks = []
    # a case with expectations is a behaviour case for every binding it
    # applies to; one it names no behaviour for fails, showing what it saw
    kind = "behaviour" if case.expect or "behaviour" in case.tags else "value"
    behaviour_unverified = (_behaviour_unverified(case, binding, distributions, device) if kind == "behaviour"
                            else None)
    for dtype in case.dtypes:
        data_id = check_id(case, binding, dtype)
        entry = _entry_for(divergences, data_id, kind, distributions, any_match)
        checks.append(Check(device_names.with_device(data_id, device), case, binding, dtype, kind,
                            skip_reason(case, binding, dtype, behaviour=kind == "behaviour", device=device), entry,
                            _unverified(entry, distributions, device) or behaviour_unverified, device))
        if kind == "value":
            data_id += "-gradient"
            entry = _entry_for(divergences, data_id, "gradient", distributions, any_match)
            checks.append(Check(device_names.with_device(data_id, device), case, binding, dtype, "gradient",
                                gradient_skip_reason(case, binding, dtype, device), entry,
                                _unverified(entry, distributions, device), device))
    return checks


def validate_references(cases, bindings: dict) -> None:
    """Cross-references from cases to bindings, and the published numbers
    (once per case as written, on its first grid point)."""
    published_checked = set()
    words = (*selection_words(bindings), *device_names.KINDS)
    for case in cases:
        for word in words:
            if word in case.base_id.lower():
                raise CaseError(case.file, case.base_id, "id", f"must not contain {word!r}: -k {word} would select it")
        for pattern in case.bindings or ():
            if not any(fnmatch.fnmatchcase(b.id, pattern) or fnmatch.fnmatchcase(b.framework, pattern)
                       for b in bindings.values()):
                raise CaseError(case.file, case.base_id, "bindings", f"{pattern!r} matches no binding")
        for pattern in case.expect:
            if not any(fnmatch.fnmatchcase(b.id, pattern) or fnmatch.fnmatchcase(b.framework, pattern)
                       for b in bindings.values()):
                raise CaseError(case.file, case.base_id, f"expect.{pattern}", "matches no binding")
        if case.base_id not in published_checked:
            published_checked.add(case.base_id)
            check_published(case, bindings)


def build(cases_dir: str | Path = CASES_DIR, extra_modules: tuple[str, ...] = (),
          devices: tuple[str, ...] = (device_names.DEFAULT,)) -> Suite:
    """Loads everything once per process (each xdist worker builds the same), whichever way the case
    directory is spelled; its checks on each of ``devices``."""
    return _build(str(Path(cases_dir).resolve()), tuple(extra_modules),
                  tuple(dict.fromkeys(map(device_names.validate, devices))))


# the shipped suite stays cached while self-tests build suites of their own small case directories
@lru_cache(maxsize=32)
def _build(cases_dir: str, extra_modules: tuple[str, ...], devices: tuple[str, ...]) -> Suite:
    directory = Path(cases_dir)
    bindings = load_bindings(extra_modules)
    cases = load_all(directory)
    validate_references(cases, bindings)
    divergences = divergence_data.load(directory)
    checks = generate(cases, bindings, divergences, devices)
    return Suite(tuple(cases), bindings, tuple(checks), tuple(divergences))
