"""Errors the sim answers with: the HTTP status, KalamDB error code and message of the facts,
and which messages non-admin callers may read (KalamDB's error redaction)."""

from __future__ import annotations

# Generic texts non-admin callers see instead of the real message (sql_response.rs::public_message).
REDACTED = {
    "BATCH_PARSE_ERROR": "Failed to parse SQL batch",
    "SQL_EXECUTION_ERROR": "SQL statement failed",
    "INVALID_SQL": "SQL statement is invalid or not allowed",
    "TABLE_NOT_FOUND": "Requested table is not available",
    "INTERNAL_ERROR": "SQL request failed",
}
# Codes whose statement errors keep their text for everyone (classify_sql_error: preserve=true).
_ALWAYS_SHOWN = ("PERMISSION_DENIED", "INVALID_SQL")
# KalamDbError classes shown to every caller, as their Display text begins; the sim's messages
# use the same prefixes, so the class can be read back from the message.
_SHOWN_CLASSES = (
    "Already exists:",
    "Invalid operation:",
    "Invalid schema evolution:",
    "System column violation:",
    "Constraint violation:",
    "Conflict:",
    "Namespace not found:",
    "Timeout:",
    "Not implemented:",
)


def _table_discovery(lower: str) -> bool:
    """execution_paths.rs is_table_discovery_error_message."""
    return (
        ("table" in lower and "not found" in lower)
        or ("relation" in lower and "does not exist" in lower)
        or "unknown table" in lower
    )


def _safe_validation(lower: str) -> bool:
    """execution_paths.rs is_safe_validation_error_message: execution errors shown to everyone."""
    return (
        ("column" in lower and "not found" in lower)
        or ("field" in lower and "not found" in lower)
        or "no field named" in lower
        or "primary key" in lower
        or "constraint violation" in lower
        or "already exists" in lower
        or "duplicate" in lower
        or "unique constraint" in lower
        or "unique index" in lower
    )


def shown_to_everyone(message: str) -> bool:
    """Whether KalamDB keeps a statement error's message for user and service callers."""
    if message.startswith(_SHOWN_CLASSES):
        return True
    if message.startswith("Not found:"):
        return not _table_discovery(message.lower())
    if message.startswith("Table not found:"):
        return False
    # Every other failure is an ExecutionError (or worse): redacted unless it merely validates.
    return _safe_validation(message.lower())


class SqlError(Exception):
    """A statement failed.

    ``safe`` says whether non-admin callers see the message; left out, it is decided from the
    message as KalamDB decides it. ``numbered`` errors get KalamDB's "Statement k failed: "
    prefix; errors KalamDB answers before running the statement do not. ``details``: whether
    admins also get the request's SQL (not from KalamDB's error_for_privilege).
    """

    def __init__(
        self,
        code: str,
        message: str,
        status: int = 400,
        safe: bool | None = None,
        numbered: bool = True,
        details: bool = True,
    ) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.safe = shown_to_everyone(message) if safe is None else safe
        self.numbered = numbered
        self.details = details

    def public_message(self) -> str:
        """The message a user or service caller gets (admins get ``message`` and the SQL)."""
        if self.code in _ALWAYS_SHOWN or self.safe or self.code not in REDACTED:
            return self.message
        return REDACTED[self.code]


def invalid_sql(message: str) -> SqlError:
    return SqlError("INVALID_SQL", message, 400)


def exec_error(message: str, safe: bool | None = None) -> SqlError:
    return SqlError("SQL_EXECUTION_ERROR", message, 400, safe=safe)


def denied(message: str) -> SqlError:
    return SqlError("PERMISSION_DENIED", message, 403)
