"""Sketch objects as the API shows them."""

from __future__ import annotations

from typing import Any

from portway.store.models.sketches import SketchRow, SketchVersionRow


def documents(version: SketchVersionRow | None) -> list[dict[str, str]]:
    if version is None:
        return []
    return [{"name": "design.md", "format": "markdown", "content": version.design}]


def version_object(version: SketchVersionRow) -> dict[str, Any]:
    return {
        "object": "sketch.version",
        "sketch_id": version.sketch_id,
        "number": version.number,
        "created_at": int(version.created_at),
        "graph": version.graph,
        "documents": documents(version),
        "message": version.message,
        "node_id": version.node_id,
        "answer": version.answer,
        "problems": version.problems,
        "repaired": version.repaired,
    }


def sketch_object(row: SketchRow, version: SketchVersionRow | None) -> dict[str, Any]:
    return {
        "id": row.id,
        "object": "sketch",
        "created_at": int(row.created_at),
        "updated_at": int(row.updated_at),
        "status": row.status,
        "stage": row.stage,
        "model": row.model,
        "description": row.description,
        "options": row.options,
        "questions": row.questions,
        "answers": row.answers,
        "version": row.version,
        "graph": version.graph if version is not None else None,
        "documents": documents(version),
        "problems": version.problems if version is not None else [],
        "repaired": version.repaired if version is not None else False,
        "last_answer": version.answer if version is not None else None,
        "error": row.error,
        "metadata": row.meta,
    }
