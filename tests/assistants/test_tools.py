"""Built-in tools as functions for the model, and citations turned into annotations."""

from __future__ import annotations

from portway.assistants.tools import (
    CitedFile,
    annotations_for,
    chat_tool_choice,
    chat_tools,
    renumber_markers,
)


def test_builtin_tools_become_functions_and_functions_pass_through() -> None:
    function = {"type": "function", "function": {"name": "f", "parameters": {"type": "object"}}}
    tools = chat_tools([{"type": "file_search"}, {"type": "code_interpreter"}, function])
    assert [t["function"]["name"] for t in tools] == ["file_search", "code_interpreter", "f"]
    assert tools[0]["function"]["parameters"]["required"] == ["query"]
    assert tools[1]["function"]["parameters"]["required"] == ["code"]
    assert tools[2] == function


def test_tool_choice_names_builtin_tools_as_functions() -> None:
    assert chat_tool_choice("required") == "required"
    assert chat_tool_choice({"type": "file_search"}) == {
        "type": "function",
        "function": {"name": "file_search"},
    }
    named = {"type": "function", "function": {"name": "f"}}
    assert chat_tool_choice(named) == named


def test_markers_of_a_later_search_are_shifted() -> None:
    output = "[1] alpha\n[2] beta\n[3] not a citation of this call"
    assert renumber_markers(output, 2, 2) == "[3] alpha\n[4] beta\n[3] not a citation of this call"
    assert renumber_markers(output, 0, 2) == output


def test_annotations_point_at_markers_and_created_files() -> None:
    text = "Paris [1] and Rome [2]; see file-out1. [9] is unknown."
    citations = [CitedFile("file-a", "Paris"), CitedFile("file-b", "Rome")]
    annotations = annotations_for(text, citations, ["file-out1"])
    assert [(a["type"], text[a["start_index"] : a["end_index"]]) for a in annotations] == [
        ("file_citation", "[1]"),
        ("file_citation", "[2]"),
        ("file_path", "file-out1"),
    ]
    assert annotations[1]["file_citation"] == {"file_id": "file-b"}
    assert annotations[2]["file_path"] == {"file_id": "file-out1"}
