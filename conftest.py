"""Registers the conformance plugin and the hypothesis profiles (see README)."""

pytest_plugins = ["conformance.plugin"]
