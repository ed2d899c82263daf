"""Offline manifests: documents, Lists, JSON, directories, and bad input named by file and document."""

from __future__ import annotations

import io
from pathlib import Path

from tests.unit.kube_helpers import BAD, CORPUS
from ztmon.sources import files


def _read(text: str, name: str = "m.yaml") -> files.FilesResult:
    return files.read_texts([(name, text)])


POD = """apiVersion: v1
kind: Pod
metadata: {name: %s, namespace: ns}
spec:
  containers: [{name: c, image: example/c:1}]
"""


def test_split_documents_keeps_start_lines():
    docs = list(files.split_documents("a: 1\n---\nb: 2\n--- # comment\n\nc: 3\n...\n"))
    assert [(line, text.strip()) for line, text in docs] == [(1, "a: 1"), (3, "b: 2"), (5, "c: 3")]


def test_multi_document_file_reads_every_object():
    r = _read("\n---\n".join(POD % n for n in ("a", "b", "c")))
    assert r.documents == 3
    assert sorted(w.name for w in r.part.kube.workloads) == ["a", "b", "c"]
    assert r.problems == ()


def test_empty_documents_and_comments_are_skipped():
    r = _read("---\n# Source: chart/templates/empty.yaml\n---\n" + POD % "a" + "---\n")
    assert r.documents == 1
    assert r.problems == ()


def test_list_items_are_objects():
    text = "apiVersion: v1\nkind: List\nitems:\n" + "".join(
        "  - " + (POD % n).replace("\n", "\n    ").rstrip() + "\n" for n in ("a", "b")
    )
    r = _read(text)
    assert sorted(w.name for w in r.part.kube.workloads) == ["a", "b"]


def test_broken_document_is_named_and_the_rest_is_read():
    r = files.load([BAD / "mixed.yaml"])
    names = sorted(w.name for w in r.part.kube.workloads)
    assert names == ["after", "before", "nulls"]
    by_doc = {p.document: p for p in r.problems}
    assert by_doc[2].message.startswith("invalid YAML")
    assert by_doc[2].line >= 11
    assert "spec.containers: expected a list, got str" in by_doc[3].message
    assert "Pod bad/wrong-type" in by_doc[3].message
    assert "expected a Kubernetes object, got str" in by_doc[4].message
    assert by_doc[5].message == "object without kind"
    assert str(by_doc[3]).startswith(f"{BAD / 'mixed.yaml'}:")


def test_unknown_kinds_are_counted_not_reported():
    r = files.load([BAD / "mixed.yaml"])
    assert dict(r.unknown_kinds) == {"Widget": 1}


def test_null_fields_take_api_defaults():
    r = files.load([BAD / "mixed.yaml"])
    (c,) = [c for c in r.part.containers if c.workload_name == "nulls"]
    assert (c.env, c.ports, c.user, c.privileged) == ((), (), "", False)


def test_truncated_json_is_a_problem_with_its_line():
    r = files.load([BAD / "truncated.json"])
    (p,) = r.problems
    assert p.message.startswith("invalid JSON")
    assert (p.document, p.line) == (1, 1)
    assert r.documents == 0


def test_json_object_and_json_list():
    r = files.load([CORPUS / "workloads" / "deployment.json", CORPUS / "workloads" / "list.json"])
    assert sorted(w.name for w in r.part.kube.workloads) == ["json-app", "json-pod"]
    assert [sa.name for sa in r.part.kube.service_accounts] == ["json-sa"]


def test_directories_are_read_recursively_yaml_and_json_only(tmp_path: Path):
    (tmp_path / "sub").mkdir()
    (tmp_path / "sub" / "a.yml").write_text(POD % "a")
    (tmp_path / "b.json").write_text('{"apiVersion": "v1", "kind": "Namespace", "metadata": {"name": "x"}}')
    (tmp_path / "notes.txt").write_text("kind: Pod")
    r = files.load([tmp_path])
    assert r.files == 2
    assert [w.name for w in r.part.kube.workloads] == ["a"]
    assert [n.name for n in r.part.kube.namespaces] == ["x"]


def test_missing_path_is_a_problem_not_a_crash(tmp_path: Path):
    r = files.load([tmp_path / "nope.yaml"])
    assert [p.message for p in r.problems] == ["no such file or directory"]


def test_stdin_is_read_for_dash():
    r = files.load([Path("-")], stdin=io.StringIO(POD % "piped"))
    assert [w.name for w in r.part.kube.workloads] == ["piped"]


def test_non_utf8_file_is_a_problem(tmp_path: Path):
    f = tmp_path / "bin.yaml"
    f.write_bytes(b"\xff\xfe\x00kind")
    r = files.load([f])
    assert r.problems[0].message.startswith("not UTF-8")


def test_origin_is_file_and_first_content_line():
    r = files.load([CORPUS / "workloads" / "insecure.yaml"])
    (w,) = r.part.kube.workloads
    assert w.origin == f"{CORPUS / 'workloads' / 'insecure.yaml'}:2"


def test_every_kind_is_observed_offline():
    r = _read(POD % "a")
    assert r.part.kube.offline
    assert r.part.kube.saw("NetworkPolicy", "Pod", "ClusterRole")


def test_yaml_timestamps_unquoted_are_understood():
    r = _read(
        "apiVersion: v1\nkind: Secret\nmetadata:\n  name: s\n  namespace: n\n"
        "  creationTimestamp: 2024-01-01T00:00:00Z\ntype: Opaque\n"
    )
    (s,) = r.part.kube.secrets
    assert s.created is not None
    assert s.created.year == 2024
