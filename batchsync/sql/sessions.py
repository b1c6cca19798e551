"""Sessions (names, ends, activity) and advisory locks (runner, services.recovery, sessions, calendars)."""

from __future__ import annotations

# Is the connection back (after an outage)?
PING = "SELECT 1"
# A worker names its sessions after itself (`application_name`, 63 characters at most).
SESSION_NAME_SET = "SELECT set_config('application_name', %s, false)"
# End the other sessions of this database named after the given workers; waits up to 2 s
# for each to be gone. Returns how many ended.
SESSIONS_END = (
    "SELECT count(*) FILTER (WHERE pg_terminate_backend(pid, 2000)) FROM pg_stat_activity "
    "WHERE datname = current_database() AND pid <> pg_backend_pid() "
    "AND application_name = ANY(%s)"
)
SESSIONS_ALIVE = (
    "SELECT DISTINCT application_name FROM pg_stat_activity "
    "WHERE datname = current_database() AND application_name = ANY(%s)"
)


# --- advisory locks (calendars) ------------------------------------------------------------------

# A transaction-scoped lock on a name (`batchsync.calendar:XSHG`), released at commit.
ADVISORY_XACT_LOCK = "SELECT pg_advisory_xact_lock(hashtext(%s))"
