"""A small kustomize for the tests (PyPI has no kustomize): builds a
kustomization's resources the way ``kubectl kustomize`` does for the features
deploy/k8s uses, and refuses any other feature rather than ignore it.

Supported: ``resources`` (files and folders with a kustomization), ``namespace``,
``labels`` (metadata labels only), ``images`` (newName/newTag), and ``patches``
given by ``path`` (strategic merge patches that name their target by kind and
name; lists of named items merge by name)."""

from __future__ import annotations

import copy
from pathlib import Path
from typing import Any

import yaml

SUPPORTED = {"apiVersion", "kind", "resources", "namespace", "labels", "images", "patches"}
CLUSTER_SCOPED = {"Namespace", "ClusterRole", "ClusterRoleBinding", "PersistentVolume", "StorageClass"}


class KustomizeError(ValueError):
    """The kustomization uses something this loader does not do, or is wrong."""


def key(doc: dict[str, Any]) -> tuple[str, str]:
    return doc["kind"], doc["metadata"]["name"]


def _documents(path: Path) -> list[dict[str, Any]]:
    return [d for d in yaml.safe_load_all(path.read_text()) if d]


def strategic_merge(base: Any, patch: Any) -> Any:
    """``patch`` merged onto ``base``: maps recursively, lists of named items by name."""
    if isinstance(base, dict) and isinstance(patch, dict):
        merged = dict(base)
        for k, v in patch.items():
            merged[k] = strategic_merge(base[k], v) if k in base else copy.deepcopy(v)
        return merged
    if (
        isinstance(base, list)
        and isinstance(patch, list)
        and all(isinstance(i, dict) and "name" in i for i in [*base, *patch])
    ):
        by_name = {item["name"]: item for item in base}
        for item in patch:
            by_name[item["name"]] = strategic_merge(by_name[item["name"]], item) if item["name"] in by_name else item
        return list(by_name.values())
    return copy.deepcopy(patch)


def _containers(doc: dict[str, Any]) -> list[dict[str, Any]]:
    pod = doc.get("spec", {}).get("template", {}).get("spec", {})
    return [*pod.get("containers", []), *pod.get("initContainers", [])]


def build(folder: Path) -> list[dict[str, Any]]:
    """The resources ``folder``'s kustomization.yaml produces."""
    kustomization = yaml.safe_load((folder / "kustomization.yaml").read_text())
    unknown = set(kustomization) - SUPPORTED
    if unknown:
        raise KustomizeError(f"{folder}: unsupported kustomization fields {sorted(unknown)}")
    docs: list[dict[str, Any]] = []
    for resource in kustomization.get("resources", []):
        path = (folder / resource).resolve()
        docs += build(path) if path.is_dir() else _documents(path)
    seen = [key(d) for d in docs]
    duplicates = {k for k in seen if seen.count(k) > 1}
    if duplicates:
        raise KustomizeError(f"{folder}: resources defined twice: {sorted(duplicates)}")

    for patch_ref in kustomization.get("patches", []):
        if set(patch_ref) != {"path"}:
            raise KustomizeError(f"{folder}: only patches by path are supported, got {patch_ref}")
        for patch in _documents(folder / patch_ref["path"]):
            index = next((i for i, d in enumerate(docs) if key(d) == key(patch)), None)
            if index is None:
                raise KustomizeError(f"{folder}: patch {patch_ref['path']} targets missing {key(patch)}")
            docs[index] = strategic_merge(docs[index], patch)

    for label in kustomization.get("labels", []):
        if set(label) - {"pairs"}:
            raise KustomizeError(f"{folder}: only label pairs are supported, got {label}")
        for doc in docs:
            doc["metadata"].setdefault("labels", {}).update(label["pairs"])

    for image in kustomization.get("images", []):
        if set(image) - {"name", "newName", "newTag"}:
            raise KustomizeError(f"{folder}: unsupported image fields in {image}")
        matched = False
        for doc in docs:
            for container in _containers(doc):
                name, _, _tag = container["image"].partition(":")
                if name == image["name"]:
                    matched = True
                    container["image"] = f"{image.get('newName', name)}:{image.get('newTag', _tag)}"
        if not matched:
            raise KustomizeError(f"{folder}: image {image['name']} is used by no container")

    namespace = kustomization.get("namespace")
    if namespace:
        for doc in docs:
            if doc["kind"] not in CLUSTER_SCOPED:
                doc["metadata"]["namespace"] = namespace
    return docs
