"""Tests of the security desk console (a package, so its conftest has its own name)."""
