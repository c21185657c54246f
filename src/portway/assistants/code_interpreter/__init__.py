"""The code_interpreter built-in tool and its sandbox (see README.md in this package)."""

from portway.assistants.code_interpreter.tool import CodeInterpreterTool

__all__ = ["CodeInterpreterTool"]
