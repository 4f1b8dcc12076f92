"""Devices: where a check's framework computes (``pytest --device NAME``, repeatable; default ``cpu``).

A device is named as torch names one: ``cpu``, ``cuda``, ``cuda:1``, and for
JAX's extra host devices ``cpu:1``. The device is a dimension of the suite:
every check id ends with it (``sparse_softmax-<case>-<binding>-float32-cpu``,
``...-float32-gradient-cuda``), so ``-k cuda`` selects a device's checks, the
baseline keys on it, and every report carries it; its type (``cpu``, ``cuda``)
is a marker. The reference never moves: the inputs go to the device, the
framework computes there, and the result and gradients come back to NumPy.

A binding declares the devices it computes on (``Binding.devices``, fnmatch
patterns, default ``("cpu",)``: its adapter places nothing); a check on any
other device skips with that reason, and one on a device its framework cannot
find on this machine (``cuda`` without a GPU) skips when it runs. An adapter
that places its inputs also confirms that the result came back from the named
device (:class:`Misplaced` otherwise), so a device run proves where it ran.

The case data is measured on a device: a known divergence or a behaviour entry
names the devices it was measured on (``devices``, default ``[cpu]``); on
another device it is unverified, as on other versions (:mod:`conformance.versions`):
the check runs and is reported whichever way it ends, without failing the run.
"""

from __future__ import annotations

import fnmatch
import re

DEFAULT = "cpu"
# the devices case data was measured on where it names none
MEASURED_ON = ("cpu",)
# the device types -k selects by: refused in case ids, as framework labels are
KINDS = ("cpu", "cuda")
NAME = re.compile(r"^[a-z]+(:[0-9]+)?$")


class DeviceError(ValueError):
    """A device name that is not ``type`` or ``type:index``."""


class Misplaced(RuntimeError):
    """A framework returned its result from another device than the check named: the data did not move."""


class Unavailable(RuntimeError):
    """The framework finds no such device on this machine (a skip, with this message as its reason)."""


def validate(name: str) -> str:
    if not NAME.match(name):
        raise DeviceError(f"--device {name!r}: a device is named 'type' or 'type:index' (cpu, cuda, cuda:1)")
    return name


def kind(name: str) -> str:
    """The device's type: ``cuda`` for ``cuda:1``; its marker."""
    return name.split(":", 1)[0]


def index(name: str) -> int:
    """The device's index among its type's devices: 1 for ``cuda:1``, 0 for ``cuda``."""
    return int(name.split(":", 1)[1]) if ":" in name else 0


def supports(patterns, name: str) -> bool:
    """Whether ``name`` is among the devices ``patterns`` declare (fnmatch, as binding ids are matched)."""
    return any(fnmatch.fnmatchcase(name, pattern) for pattern in patterns)


def with_device(data_id: str, device: str) -> str:
    """A check's id: the id the case data matches (family, case, binding, dtype, kind), then the device."""
    return f"{data_id}-{device}"


def unmeasured(measured_on, device: str, what: str) -> str | None:
    """Why ``what``, measured on the devices ``measured_on`` (patterns; empty: :data:`MEASURED_ON`), is
    unverified on ``device``, or None."""
    patterns = tuple(measured_on or MEASURED_ON)
    if supports(patterns, device):
        return None
    return f"{what} was measured on {', '.join(patterns)}, not on {device}"
