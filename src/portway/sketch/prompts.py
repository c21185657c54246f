"""What the sketcher asks the model: the system prompts and the user messages."""

from __future__ import annotations

from collections.abc import Sequence

import orjson

from portway.sketch.graph import KINDS, Graph, Node
from portway.sketch.validate import Problem

GRAPH_SYSTEM = (
    "You are a senior software architect. Turn the user's description of a system into an "
    "architecture graph, as JSON that follows the given schema.\n"
    "- nodes are the components. id: short snake_case, unique. kind: one of "
    + ", ".join(KINDS)
    + ". label: a short name. technology: a concrete product (PostgreSQL, Redis, Kafka, "
    "Nginx, ...). responsibility: one sentence. group: the tier it belongs to (edge, "
    "application, data, ...). scaling: one short note on how it scales. external: true "
    "only for third-party systems.\n"
    "- edges are the connections, from caller to callee, naming node ids exactly. "
    "protocol: HTTPS, gRPC, SQL, AMQP, ... mode: sync or async. data: what is carried.\n"
    "- Every node needs at least one edge unless it is external. Use {min_nodes} to "
    "{max_nodes} nodes."
)

CLARIFY_SYSTEM = (
    "You are a senior software architect. Before designing the system the user describes, "
    "ask at most 3 short questions whose answers would change the architecture most "
    "(scale, consistency, latency, integrations). Ask none if the description is clear."
)

DOC_SYSTEM = (
    "You are a senior software architect writing the design document of the architecture "
    "given as JSON. Write: a short overview; up to 3 use cases, each as the steps data "
    "takes through the components; the main failure modes of components (by node id) with "
    "their mitigations (timeouts, retries with backoff, circuit breakers, fallbacks, "
    "queues, rate limits); scaling and capacity notes; security and privacy notes; open "
    "questions. Be concrete and brief."
)

REVISE_RULES = (
    "\nYou are now revising an existing graph. If the user asks a question, answer it in "
    "'answer' and return the graph unchanged. If the user asks for a change, apply it, keep "
    "the id of every node that stays, and say in 'answer' what you changed and why."
)


def compact(graph: Graph) -> str:
    return orjson.dumps(graph.to_json()).decode()


def graph_system(max_nodes: int) -> str:
    return GRAPH_SYSTEM.format(min_nodes=min(4, max_nodes), max_nodes=max_nodes)


def request_text(description: str, questions: Sequence[str], answers: Sequence[str]) -> str:
    text = f"Describe the architecture of: {description.strip()}"
    pairs = [(q, a) for q, a in zip(questions, answers, strict=False) if a.strip()]
    if pairs:
        text += "\n\nClarifications:\n" + "\n".join(f"- {q} {a.strip()}" for q, a in pairs)
    return text


def repair_text(found: Sequence[Problem]) -> str:
    listed = "\n".join(f"- {problem.message}" for problem in found)
    return (
        "That graph has these problems:\n"
        f"{listed}\n"
        "Return the complete corrected graph. Keep the ids of the nodes that were right; "
        "make every edge name existing node ids; connect or mark external every node."
    )


def revise_text(graph: Graph, message: str, focus: Node | None) -> str:
    about = ""
    if focus is not None:
        about = (
            f"\nThe user is pointing at node '{focus.id}' ({focus.label}, {focus.kind}"
            + (f", {focus.technology}" if focus.technology else "")
            + ")."
        )
    return f"Current graph:\n{compact(graph)}\n{about}\nRequest: {message.strip()}"


def doc_text(description: str, graph: Graph) -> str:
    return f"System: {description.strip()}\n\nArchitecture:\n{compact(graph)}"
