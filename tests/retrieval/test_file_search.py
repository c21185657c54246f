"""The file_search built-in tool: numbered excerpts, citations, run-step details."""

from __future__ import annotations

from pathlib import Path

from portway.assistants.builtin import ToolInvocation
from portway.store import Database
from portway.vector_stores.wire import CreateVectorStoreRequest
from tests.openapi import assert_matches
from tests.retrieval.helpers import add_text_file, start_retrieval

REFUNDS = "Refunds are paid to the original payment method within five business days."
SHIPPING = "Shipping inside the EU is paid by the customer and takes five business days."
ELSEWHERE = "Refunds for the other team are paid in gold coins."


def invocation(tenant: str, query: object, stores: tuple[str, ...]) -> ToolInvocation:
    return ToolInvocation(
        tenant=tenant,
        run_id="run_1",
        thread_id="thread_1",
        arguments={"query": query},
        vector_store_ids=stores,
    )


async def test_results_are_numbered_cited_and_shaped_like_openai(
    database: Database, tmp_path: Path
) -> None:
    services = await start_retrieval(database, tmp_path)
    try:
        refunds = await add_text_file(services, "a", "refunds.md", REFUNDS)
        shipping = await add_text_file(services, "a", "shipping.md", SHIPPING)
        store = await services.vector_stores.create(
            "a", CreateVectorStoreRequest(file_ids=[refunds, shipping])
        )
        foreign_file = await add_text_file(services, "b", "gold.md", ELSEWHERE)
        foreign = await services.vector_stores.create(
            "b", CreateVectorStoreRequest(file_ids=[foreign_file])
        )
        await services.indexer.idle()

        tool = services.file_search
        assert tool.type == "file_search"
        outcome = await tool.invoke(
            invocation("a", "when are refunds paid?", (store["id"], foreign["id"]))
        )

        assert [c.file_id for c in outcome.citations] == [refunds, shipping]
        assert outcome.citations[0].quote == REFUNDS
        assert "[1] refunds.md" in outcome.output and REFUNDS in outcome.output
        assert "[2] shipping.md" in outcome.output
        assert outcome.output.index("[1]") < outcome.output.index("[2]")
        assert "gold" not in outcome.output  # another tenant's store is ignored
        assert outcome.created_file_ids == ()

        details = outcome.step_details
        assert_matches(
            "RunStepDetailsToolCallsFileSearchObject",
            {"id": "call_1", "type": "file_search", "file_search": details},
        )
        assert [r["file_id"] for r in details["results"]] == [refunds, shipping]
        assert details["results"][0]["file_name"] == "refunds.md"
        assert details["results"][0]["content"] == [{"type": "text", "text": REFUNDS}]
        assert details["results"][0]["score"] >= details["results"][1]["score"]
    finally:
        await services.close()


async def test_problems_come_back_as_output(database: Database, tmp_path: Path) -> None:
    services = await start_retrieval(database, tmp_path)
    try:
        tool = services.file_search
        empty = await tool.invoke(invocation("a", "   ", ("vs_x",)))
        assert "query" in empty.output and empty.citations == ()
        assert empty.step_details["results"] == []
        no_stores = await tool.invoke(invocation("a", "refunds", ()))
        assert "No files" in no_stores.output
        unknown = await tool.invoke(invocation("a", "refunds", ("vs_unknown",)))
        assert "No results" in unknown.output and unknown.citations == ()
    finally:
        await services.close()
