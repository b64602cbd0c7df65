"""The config loader under hostile input: only ConfigError ever escapes, with key paths."""

from __future__ import annotations

import tomllib
from pathlib import Path

from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from gateway.config.schema import load_config, validate_config
from gateway.core.errors import ConfigError

ROOT = Path(__file__).resolve().parents[2]
EXAMPLE = tomllib.loads((ROOT / "examples" / "site.toml").read_text(encoding="utf-8"))

scalars = st.one_of(st.none(), st.booleans(), st.integers(-2**70, 2**70), st.floats(allow_nan=True),
                    st.text(max_size=30), st.binary(max_size=10).map(lambda b: b.hex()))
values = st.recursive(scalars, lambda inner: st.one_of(
    st.lists(inner, max_size=4), st.dictionaries(st.text(max_size=12), inner, max_size=4)),
    max_leaves=12)


def mutate(doc: object, path: list[str | int], value: object) -> object:
    if not path:
        return value
    head, rest = path[0], path[1:]
    if isinstance(doc, dict) and isinstance(head, str):
        out = dict(doc)
        out[head] = mutate(doc.get(head), rest, value)
        return out
    if isinstance(doc, list) and isinstance(head, int) and doc:
        out_list = list(doc)
        out_list[head % len(doc)] = mutate(doc[head % len(doc)], rest, value)
        return out_list
    return value


keys = st.sampled_from(["site", "wards", "devices", "mqtt", "storage", "policy", "escalation",
                        "serial", "modem", "console", "messages", "health", "bogus"])
subkeys = st.one_of(st.integers(0, 5), st.sampled_from(
    ["id", "name", "pin", "ward", "url", "node", "rules", "http", "sms", "users", "listen",
     "password_file", "mode", "after_s", "numbers", "sms", "key_file", "port"]))


@settings(max_examples=400, deadline=None, suppress_health_check=[HealthCheck.too_slow])
@given(keys, st.lists(subkeys, max_size=3), values)
def test_mutated_example_never_raises_anything_but_config_error(
    key: str, rest: list[str | int], value: object
) -> None:
    doc = mutate(EXAMPLE, [key, *rest], value)
    assert isinstance(doc, dict)
    try:
        validate_config(doc, base_dir=ROOT / "examples")
    except ConfigError as exc:
        assert exc.errors and all(isinstance(p, str) and r for p, r in exc.errors)


@settings(max_examples=200, deadline=None)
@given(st.binary(max_size=400))
def test_random_file_bytes_are_one_clear_error(tmp_path_factory, data: bytes) -> None:  # type: ignore[no-untyped-def]
    path = tmp_path_factory.mktemp("cfg") / "site.toml"
    path.write_bytes(data)
    try:
        load_config(path)
    except ConfigError as exc:
        assert exc.lines()
