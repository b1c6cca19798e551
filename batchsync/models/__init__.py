"""Persistent state of batchsync: jobs, their days, their errors, and the bars they load.

A package by concern (`jobs`, `days`, `bars`); every name is re-exported here, so
`from batchsync.models import X` is the one way in, and importing it registers every model.
"""

from __future__ import annotations

# Re-exported, and so registered with the app when it loads its models.
from batchsync.adj_models import AdjFactor as AdjFactor
from batchsync.adj_models import PriceAdjustment as PriceAdjustment
from batchsync.alert_models import Alert as Alert
from batchsync.alert_models import AlertDelivery as AlertDelivery
from batchsync.check_models import CheckSeverity as CheckSeverity
from batchsync.check_models import DayFinding as DayFinding
from batchsync.event_models import SyncJobEvent as SyncJobEvent
from batchsync.event_models import SyncJobEventKind as SyncJobEventKind
from batchsync.models.bars import DailyBar as DailyBar
from batchsync.models.bars import LoadedDay as LoadedDay
from batchsync.models.bars import TradingCalendar as TradingCalendar
from batchsync.models.bars import TradingSession as TradingSession
from batchsync.models.days import VIEW_TRACEBACK as VIEW_TRACEBACK
from batchsync.models.days import SkipReason as SkipReason
from batchsync.models.days import SyncDay as SyncDay
from batchsync.models.days import SyncDayQuerySet as SyncDayQuerySet
from batchsync.models.days import SyncDayStatus as SyncDayStatus
from batchsync.models.days import SyncError as SyncError
from batchsync.models.days import SyncLock as SyncLock
from batchsync.models.jobs import ACTIVE_STATUSES as ACTIVE_STATUSES
from batchsync.models.jobs import FINISHED_STATUSES as FINISHED_STATUSES
from batchsync.models.jobs import WORKING_STATUSES as WORKING_STATUSES
from batchsync.models.jobs import Reprocess as Reprocess
from batchsync.models.jobs import SyncJob as SyncJob
from batchsync.models.jobs import SyncJobKind as SyncJobKind
from batchsync.models.jobs import SyncJobQuerySet as SyncJobQuerySet
from batchsync.models.jobs import SyncJobStatus as SyncJobStatus
from batchsync.models.jobs import VerifyMode as VerifyMode
from batchsync.schedule_models import ScheduleOutcome as ScheduleOutcome
from batchsync.schedule_models import SyncSchedule as SyncSchedule
