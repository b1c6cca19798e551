"""Every raw SQL statement of batchsync, in this package alone; table names come from the models.

Raw SQL earns its place only where the ORM cannot say it or costs too much per day: the
claim (SKIP LOCKED, one round trip, run twice per day), the fence (FOR KEY SHARE, which the
ORM's `select_for_update` cannot ask for), the progress refresh (one statement after every
day), COPY (`loader`), advisory locks, session names and ends, and the activity views. The
rest of batchsync uses the ORM.

A package by concern; every statement is re-exported here, so callers name it `sql.X`.
"""

from __future__ import annotations

from batchsync.sql.adjusted import ADJ_FACTOR_COLUMNS as ADJ_FACTOR_COLUMNS
from batchsync.sql.adjusted import ADJ_FACTOR_LATEST as ADJ_FACTOR_LATEST
from batchsync.sql.adjusted import ADJ_FACTORS_DELETE_DAY as ADJ_FACTORS_DELETE_DAY
from batchsync.sql.adjusted import ADJUSTED_BARS as ADJUSTED_BARS
from batchsync.sql.adjusted import adj_factors_copy as adj_factors_copy
from batchsync.sql.checks import DATA_CHECK_CONDITIONS as DATA_CHECK_CONDITIONS
from batchsync.sql.checks import DATA_CHECK_DAY_RULES as DATA_CHECK_DAY_RULES
from batchsync.sql.checks import DATA_CHECKS as DATA_CHECKS
from batchsync.sql.checks import DATA_CHECKS_PREVIOUS_DAY as DATA_CHECKS_PREVIOUS_DAY
from batchsync.sql.checks import DATA_CHECKS_SUSPECTS as DATA_CHECKS_SUSPECTS
from batchsync.sql.checks import LOADED_DAY_NEIGHBOURS_DUE as LOADED_DAY_NEIGHBOURS_DUE
from batchsync.sql.jobs import CLAIM_DAY as CLAIM_DAY
from batchsync.sql.jobs import CLAIM_LOCK_JOB as CLAIM_LOCK_JOB
from batchsync.sql.jobs import COMMIT_WITHOUT_FLUSH as COMMIT_WITHOUT_FLUSH
from batchsync.sql.jobs import DAY_FENCE as DAY_FENCE
from batchsync.sql.jobs import FRESH_STATS as FRESH_STATS
from batchsync.sql.jobs import LOCK_WAITS as LOCK_WAITS
from batchsync.sql.jobs import PROGRESS_REFRESH as PROGRESS_REFRESH
from batchsync.sql.load import BARS_DELETE_DAY as BARS_DELETE_DAY
from batchsync.sql.load import SOURCE_STOP_LOCK as SOURCE_STOP_LOCK
from batchsync.sql.load import TUSHARE_CALL_SLOT_TAKE as TUSHARE_CALL_SLOT_TAKE
from batchsync.sql.load import bars_copy as bars_copy
from batchsync.sql.push import EVENTS_CHANNEL as EVENTS_CHANNEL
from batchsync.sql.push import EVENTS_LISTEN as EVENTS_LISTEN
from batchsync.sql.push import JOB_EVENT_NOTIFY as JOB_EVENT_NOTIFY
from batchsync.sql.push import JOB_EVENT_PAYLOAD as JOB_EVENT_PAYLOAD
from batchsync.sql.sessions import ADVISORY_XACT_LOCK as ADVISORY_XACT_LOCK
from batchsync.sql.sessions import PING as PING
from batchsync.sql.sessions import SESSION_NAME_SET as SESSION_NAME_SET
from batchsync.sql.sessions import SESSIONS_ALIVE as SESSIONS_ALIVE
from batchsync.sql.sessions import SESSIONS_END as SESSIONS_END
from batchsync.sql.tables import ADJ_FACTOR_TABLE as ADJ_FACTOR_TABLE
from batchsync.sql.tables import BAR_TABLE as BAR_TABLE
from batchsync.sql.tables import DAY_TABLE as DAY_TABLE
from batchsync.sql.tables import JOB_TABLE as JOB_TABLE
from batchsync.sql.tables import LOADED_DAY_TABLE as LOADED_DAY_TABLE
from batchsync.sql.tables import SESSION_TABLE as SESSION_TABLE
from batchsync.sql.upstream import upstream_columns_probe as upstream_columns_probe
from batchsync.sql.upstream import upstream_copy_out as upstream_copy_out
from batchsync.sql.upstream import upstream_table_day as upstream_table_day
from batchsync.sql.verify import BAR_DAYS as BAR_DAYS
from batchsync.sql.verify import CHECKSUM_COLUMNS as CHECKSUM_COLUMNS
from batchsync.sql.verify import DAY_CHECKSUM as DAY_CHECKSUM
from batchsync.sql.verify import DAYS_VERIFY as DAYS_VERIFY
from batchsync.sql.verify import LOADED_DAY_RECORD as LOADED_DAY_RECORD
from batchsync.sql.verify import SHADOW_DAY_CHECKSUM as SHADOW_DAY_CHECKSUM
from batchsync.sql.verify import SHADOW_TABLES as SHADOW_TABLES
from batchsync.sql.verify import VERIFY_JIT_OFF as VERIFY_JIT_OFF
from batchsync.sql.verify import bar_value_at_scale as bar_value_at_scale
