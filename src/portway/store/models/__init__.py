"""Every table of Portway; importing this package registers them all on ``Base.metadata``.

Add a module here per area (one concept each) and import it below.
"""

from portway.store.models.assistants import (
    AssistantRow,
    MessageRow,
    RunRow,
    RunStepRow,
    ThreadRow,
)
from portway.store.models.audit import AuditCheckpointRow, AuditHeadRow, AuditRecordRow
from portway.store.models.batches import BatchLineRow, BatchRow
from portway.store.models.budgets import BudgetLeaseRow, BudgetRow
from portway.store.models.context import ContextSummaryRow, ContextTurnRow
from portway.store.models.files import (
    ChunkRow,
    FileBatchRow,
    FileRow,
    VectorStoreFileRow,
    VectorStoreRow,
)
from portway.store.models.guardrails import PseudonymMapRow
from portway.store.models.keys import VirtualKeyRow
from portway.store.models.privacy import ContentOwnerRow, TeamPolicyRow
from portway.store.models.request_log import RequestLogRow
from portway.store.models.responses import (
    ConversationRow,
    ItemRow,
    ResponseEventRow,
    ResponseRow,
)
from portway.store.models.sketches import SketchRow, SketchVersionRow
from portway.store.models.usage import UsageBucketRow, UsageDailyRow, UsageRow

__all__ = [
    "AssistantRow",
    "AuditCheckpointRow",
    "AuditHeadRow",
    "AuditRecordRow",
    "BatchLineRow",
    "BatchRow",
    "BudgetLeaseRow",
    "BudgetRow",
    "ChunkRow",
    "ContentOwnerRow",
    "ContextSummaryRow",
    "ContextTurnRow",
    "ConversationRow",
    "FileBatchRow",
    "FileRow",
    "ItemRow",
    "MessageRow",
    "PseudonymMapRow",
    "RequestLogRow",
    "ResponseEventRow",
    "ResponseRow",
    "RunRow",
    "RunStepRow",
    "SketchRow",
    "SketchVersionRow",
    "TeamPolicyRow",
    "ThreadRow",
    "UsageBucketRow",
    "UsageDailyRow",
    "UsageRow",
    "VectorStoreFileRow",
    "VectorStoreRow",
    "VirtualKeyRow",
]
