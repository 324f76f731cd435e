"""Errors the sim answers with: the HTTP status, KalamDB error code and message of the facts."""

from __future__ import annotations


class SqlError(Exception):
    """A statement failed. `safe` marks messages KalamDB shows to non-admin callers unredacted."""

    def __init__(self, code: str, message: str, status: int = 400, safe: bool = False) -> None:
        super().__init__(message)
        self.code = code
        self.message = message
        self.status = status
        self.safe = safe


def invalid_sql(message: str) -> SqlError:
    return SqlError("INVALID_SQL", message, 400)


def exec_error(message: str, safe: bool = False) -> SqlError:
    return SqlError("SQL_EXECUTION_ERROR", message, 400, safe=safe)


def denied(message: str) -> SqlError:
    return SqlError("PERMISSION_DENIED", message, 403, safe=True)


# Generic texts non-admin callers see instead of the real message (sql_response.rs::public_message).
REDACTED = {
    "BATCH_PARSE_ERROR": "Failed to parse SQL batch",
    "SQL_EXECUTION_ERROR": "SQL statement failed",
    "INVALID_SQL": "SQL statement is invalid or not allowed",
    "TABLE_NOT_FOUND": "Requested table is not available",
    "INTERNAL_ERROR": "SQL request failed",
}
