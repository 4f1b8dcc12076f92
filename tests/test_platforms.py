"""The install resolves on the platforms users have: each framework extra, with the pinned versions
(constraints.txt) and wheels only, for macOS on Apple silicon, Windows, Linux on aarch64 and Linux on x86-64.

uv resolves for a target platform: it evaluates every environment marker (the project's and its
dependencies') for that platform. pip's ``--platform`` picks wheels for it but evaluates markers for the
running interpreter, so torch's Linux-only CUDA dependencies would be asked of a Mac. Only the package
registry is contacted, for metadata; nothing is installed. Where the registry cannot be reached the test
skips with that reason.
"""

from __future__ import annotations

import os
import shutil
import subprocess
from pathlib import Path

import pytest

pytestmark = pytest.mark.selftest

ROOT = Path(__file__).resolve().parents[1]
# the platforms and what each needs of the resolver: numpy-quaddtype's macOS wheel is for macOS 14 and newer
PLATFORMS = {
    "macos_arm64": ("aarch64-apple-darwin", {"MACOSX_DEPLOYMENT_TARGET": "14.0"}),
    "windows_amd64": ("x86_64-pc-windows-msvc", {}),
    "linux_aarch64": ("aarch64-unknown-linux-gnu", {}),
    "linux_x86_64": ("x86_64-unknown-linux-gnu", {}),
}
# the framework extras and the package each must bring in at its pinned version
EXTRAS = {"torch": "torch", "tensorflow": "tensorflow", "keras2": "tf-keras", "jax": "jax",
          "paddle": "paddlepaddle"}
# pinned versions with no wheel for a platform (the README's "Platforms" says so): platform, extra -> package
NO_WHEEL = {("linux_aarch64", "paddle"): "paddlepaddle"}
UNREACHABLE = ("Failed to fetch", "error sending request", "dns error", "Could not connect", "timed out")


def _pinned(package: str) -> str:
    for line in (ROOT / "constraints.txt").read_text().splitlines():
        name, _, version = line.partition("==")
        if name.strip().lower() == package:
            return f"{package}=={version.strip()}"
    raise AssertionError(f"constraints.txt pins no {package}")


def _resolve(extras, platform: str) -> subprocess.CompletedProcess:
    uv = shutil.which("uv")
    if uv is None:
        pytest.skip("uv is not installed (the 'platforms' extra, in 'all'): it resolves for another platform")
    target, environment = PLATFORMS[platform]
    command = [uv, "pip", "compile", "pyproject.toml", *[arg for extra in extras for arg in ("--extra", extra)],
               "--python-platform", target, "--python-version", "3.11", "-c", "constraints.txt", "--no-build",
               "--no-header", "--no-annotate", "--quiet"]
    result = subprocess.run(command, cwd=ROOT, capture_output=True, text=True, timeout=300,
                            env={**os.environ, **environment})
    if result.returncode and any(sign in result.stderr for sign in UNREACHABLE):
        pytest.skip(f"the package registry cannot be reached: {result.stderr.strip()[:300]}")
    return result


@pytest.mark.parametrize("platform", list(PLATFORMS))
def test_the_framework_extras_resolve_together_on_each_platform(platform):
    """One resolution per platform of every framework extra it has wheels for, as a user installs them
    together; each brings its framework at the pinned version."""
    extras = [extra for extra in EXTRAS if (platform, extra) not in NO_WHEEL]
    result = _resolve(extras, platform)
    assert result.returncode == 0, f"{extras} do not resolve together on {platform}:\n{result.stderr}"
    resolved = {line.strip().lower() for line in result.stdout.splitlines()}
    for extra in extras:
        assert _pinned(EXTRAS[extra]) in resolved, f"[{extra}] on {platform} resolved without {_pinned(EXTRAS[extra])}"
    if platform in ("macos_arm64", "windows_amd64", "linux_x86_64"):
        assert _pinned("numpy-quaddtype") in resolved, f"the reference's binary128 is missing on {platform}"


# ids name the gap by number: a framework's word in an id would put this test in that framework's -k selection
@pytest.mark.parametrize("platform, extra", [pytest.param(*gap, id=f"{gap[0]}-gap{number}")
                                             for number, gap in enumerate(NO_WHEEL)])
def test_a_platform_gap_is_still_a_missing_wheel(platform, extra):
    """A gap the README names fails for that reason only; once the wheel exists the gap must go."""
    missing = NO_WHEEL[(platform, extra)]
    result = _resolve([extra], platform)
    assert result.returncode != 0, (
        f"[{extra}] now resolves on {platform}: {missing} has a wheel there; remove the gap from NO_WHEEL and "
        "from the README's Platforms")
    message = " ".join(result.stderr.split())  # uv wraps its message to the terminal's width
    assert missing in message and "no wheels with a matching platform tag" in message, (
        f"[{extra}] on {platform} fails for another reason than {missing}'s missing wheel:\n{result.stderr}")
