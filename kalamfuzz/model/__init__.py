"""The pure reference model of what KalamDB promises.

No I/O, no clock reads, deterministic: time comes in as client-measured request windows, and
server-assigned values (``_seq``, job ids) are learned from observations. Start with
:class:`Model`; operations are in :mod:`kalamfuzz.model.ops`, predictions and outcomes in
:mod:`kalamfuzz.model.outcomes`.
"""

from kalamfuzz.model.catalog import (
    AccessLevel,
    Column,
    Role,
    Storage,
    Table,
    TableId,
    TableType,
    User,
)
from kalamfuzz.model.jobs import JobStatus
from kalamfuzz.model.ops import (
    AlterAddColumn,
    AlterDropColumn,
    CreateNamespace,
    CreateStorage,
    CreateTable,
    CreateUser,
    Delete,
    DropTable,
    Flush,
    Insert,
    JobFinished,
    Join,
    Operation,
    Restart,
    Select,
    SetStorageWritable,
    Subscribe,
    Unsubscribe,
    Update,
)
from kalamfuzz.model.outcomes import (
    ContractItem,
    Failed,
    FlushSkipped,
    FlushStarted,
    JobEnds,
    Ok,
    OneOf,
    Outcome,
    Prediction,
    Rejected,
    Subscribed,
    Succeeded,
    Unknown,
)
from kalamfuzz.model.results import ExpectedRow, QueryResult
from kalamfuzz.model.rows import Window
from kalamfuzz.model.state import ModelState
from kalamfuzz.model.uncertain import Model
from kalamfuzz.model.values import ColType, ModelError

__all__ = [
    "AccessLevel",
    "AlterAddColumn",
    "AlterDropColumn",
    "ColType",
    "Column",
    "ContractItem",
    "CreateNamespace",
    "CreateStorage",
    "CreateTable",
    "CreateUser",
    "Delete",
    "DropTable",
    "ExpectedRow",
    "Failed",
    "Flush",
    "FlushSkipped",
    "FlushStarted",
    "Insert",
    "JobEnds",
    "JobFinished",
    "JobStatus",
    "Join",
    "Model",
    "ModelError",
    "ModelState",
    "Ok",
    "OneOf",
    "Operation",
    "Outcome",
    "Prediction",
    "QueryResult",
    "Rejected",
    "Restart",
    "Role",
    "Select",
    "SetStorageWritable",
    "Storage",
    "Subscribe",
    "Subscribed",
    "Succeeded",
    "Table",
    "TableId",
    "TableType",
    "Unknown",
    "Unsubscribe",
    "Update",
    "User",
    "Window",
]
