"""The framework versions a known divergence or a behaviour entry was measured on, and whether the installed
ones are among them.

Each entry of ``cases/divergences.yaml`` states, per distribution, a version specifier (``torch:
"==2.13.0"``); the behaviour entries of a case file state theirs in the file's ``defaults`` (``versions:``),
a case or one expectation may state its own. Within those versions a known divergence is a strict xfail and
a behaviour entry is held exactly, as measured. Outside them (a user's other TensorFlow, say) the check still
runs, as a non-strict xfail labelled "unverified on this version": a failure is reported as xfailed, a pass
as xpassed, neither fails the run nor passes silently, and the parity report lists every such check with
the reason. Only the distributions of the check's own binding count: a torch check is not unverified for a
TensorFlow version.

Several entries may name one check for different versions (one measured on the pinned set, one on an older
Keras, say): the one measured on the installed versions applies. Where none is, and the installed versions
are the pinned set's (the shipped baseline's), the check is held to the reference as any other (the entries
describe other versions); on versions no entry and no baseline describes, the first entry is unverified.
"""

from __future__ import annotations

import importlib.metadata
from functools import lru_cache

from packaging.specifiers import InvalidSpecifier, SpecifierSet

# how a check outside its entry's versions is labelled (its xfail reason starts so)
LABEL = "unverified on this version"


@lru_cache(maxsize=None)
def installed(distribution: str) -> str | None:
    try:
        return importlib.metadata.version(distribution)
    except importlib.metadata.PackageNotFoundError:
        return None


def parse(raw) -> tuple[tuple[str, str], ...]:
    """A ``versions:`` mapping as (distribution, specifier) pairs. Raises ValueError naming the field of a
    malformed specifier."""
    pairs = []
    for distribution, specifier in (raw or {}).items():
        try:
            SpecifierSet(specifier)
        except InvalidSpecifier as error:
            raise ValueError(f"versions.{distribution}: not a version specifier ({error})") from None
        pairs.append((distribution, specifier))
    return tuple(pairs)


def unverified(versions, what: str, distributions=None) -> str | None:
    """Why ``what``, measured on ``versions``, is unverified on the installed versions (one of the
    ``distributions``, all where None, is installed outside its specifier), or None. A distribution that
    is not installed leaves its checks skipped, not unverified."""
    for distribution, specifier in versions:
        if distributions is not None and distribution not in distributions:
            continue
        version = installed(distribution)
        if version is not None and not SpecifierSet(specifier).contains(version, prereleases=True):
            return f"{what} was measured on {distribution}{specifier}; {distribution} {version} is installed"
    return None


@lru_cache(maxsize=None)
def _pinned_set() -> dict[str, str]:
    """The package versions of the shipped baseline: the pinned set the suite was measured on."""
    from conformance.baseline import load_environment
    from conformance.locations import BASELINE

    return load_environment(BASELINE).get("packages", {})


def on_the_pinned_set(distributions) -> bool:
    """Whether every one of ``distributions`` is installed at the version of the shipped baseline's run."""
    pinned = _pinned_set()
    return bool(distributions) and all(installed(name) is not None and installed(name) == pinned.get(name)
                                       for name in distributions)


def binding_distributions(binding) -> tuple[str, ...]:
    """The installed distributions whose versions a binding's results depend on."""
    from conformance.bindings import distributions

    return tuple(name for module in binding.version_modules() for name in distributions(module))
