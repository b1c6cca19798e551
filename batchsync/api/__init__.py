"""The REST API of batchsync: the seed's endpoints plus job control and history (DRF)."""
