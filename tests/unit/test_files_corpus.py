"""The manifest corpus is realistic: every object passes kubernetes-validate (strict) for its kind."""

from __future__ import annotations

import json
from pathlib import Path

import kubernetes_validate
import pytest
import yaml

from tests.unit.kube_helpers import CORPUS

CRD_GROUPS = ("security.istio.io/", "networking.istio.io/")  # not in the Kubernetes schemas


def _objects(path: Path) -> list[dict]:
    text = path.read_text()
    docs = [json.loads(text)] if path.suffix == ".json" else list(yaml.safe_load_all(text))
    out = []
    for d in docs:
        if not d:
            continue
        out.extend(d["items"] if d.get("kind") == "List" else [d])
    return out


CASES = [
    pytest.param(obj, id=f"{p.relative_to(CORPUS)}:{obj['kind']}/{obj['metadata']['name']}")
    for p in sorted(CORPUS.rglob("*"))
    if p.suffix in {".yaml", ".json"}
    for obj in _objects(p)
    if not str(obj.get("apiVersion", "")).startswith(CRD_GROUPS)
]


def test_corpus_is_not_empty():
    assert len(CASES) > 50


@pytest.mark.parametrize("obj", CASES)
def test_object_passes_kubernetes_validate_strict(obj):
    kubernetes_validate.validate(obj, "1.32", strict=True)
