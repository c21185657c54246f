"""Validate response bodies against OpenAI's published OpenAPI spec.

The spec mixes OpenAPI 3.1 with 3.0's ``nullable``; it is translated to plain JSON
Schema once and cached next to the test run, so later runs skip the YAML parse.
"""

from __future__ import annotations

import functools
import hashlib
import json
import os
from pathlib import Path
from typing import Any

import jsonschema
import yaml
from referencing import Registry, Resource
from referencing.jsonschema import DRAFT202012

ROOT = Path(__file__).resolve().parents[1]
SPEC_PATH = Path(
    os.environ.get("PORTWAY_OPENAPI_SPEC", ROOT.parent / "shared/reference/openai-openapi.yaml")
)
_URI = "urn:openai-openapi"


def _translate(node: Any) -> Any:
    """OpenAPI 3.0 ``nullable: true`` → JSON Schema's ``null`` alternative."""
    if isinstance(node, list):
        return [_translate(item) for item in node]
    if not isinstance(node, dict):
        return node
    out = {key: _translate(value) for key, value in node.items() if key != "nullable"}
    if node.get("nullable") is True:
        return {"anyOf": [out, {"type": "null"}]}
    return out


@functools.cache
def spec() -> dict[str, Any]:
    if not SPEC_PATH.exists():
        raise FileNotFoundError(f"OpenAI's OpenAPI spec is missing at {SPEC_PATH}")
    raw = SPEC_PATH.read_bytes()
    digest = hashlib.sha256(raw).hexdigest()[:16]
    cache = ROOT / ".pytest_cache" / f"openapi-{digest}.json"
    if cache.exists():
        return json.loads(cache.read_bytes())  # type: ignore[no-any-return]
    loaded = _translate(yaml.load(raw, Loader=getattr(yaml, "CSafeLoader", yaml.SafeLoader)))
    cache.parent.mkdir(parents=True, exist_ok=True)
    cache.write_text(json.dumps(loaded, default=str))
    loaded = json.loads(cache.read_bytes())
    return loaded  # type: ignore[no-any-return]


@functools.cache
def _registry() -> Registry:
    return Registry().with_resource(_URI, Resource.from_contents(spec(), DRAFT202012))


@functools.cache
def _validator(name: str) -> jsonschema.Draft202012Validator:
    if name not in spec()["components"]["schemas"]:
        raise KeyError(f"no schema {name!r} in the OpenAI spec")
    return jsonschema.Draft202012Validator(
        {"$ref": f"{_URI}#/components/schemas/{name}"}, registry=_registry()
    )


def assert_matches(name: str, instance: Any) -> None:
    """Fail with every schema violation of ``instance`` against ``components.schemas[name]``."""
    errors = sorted(_validator(name).iter_errors(instance), key=lambda e: list(e.path))
    if errors:
        details = "\n".join(f"  at {list(e.path)}: {e.message}" for e in errors[:10])
        raise AssertionError(f"response does not match OpenAI schema {name}:\n{details}")
