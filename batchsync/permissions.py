"""The model permissions on sync jobs that pages, API and operations check (no DRF import here)."""

VIEW_JOBS = "batchsync.view_syncjob"
ADD_JOBS = "batchsync.add_syncjob"
CHANGE_JOBS = "batchsync.change_syncjob"
