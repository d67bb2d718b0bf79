"""Headless operation: a run queue in the store's database, its scheduler and the ``labctl serve`` daemon."""

from labctl.queue.db import ENDED, STATES, WAITING, Entry, QueueDB, QueueError
from labctl.queue.entries import plan
from labctl.queue.schedule import due, waiting_for

__all__ = ["ENDED", "STATES", "WAITING", "Entry", "QueueDB", "QueueError", "due", "plan", "waiting_for"]
