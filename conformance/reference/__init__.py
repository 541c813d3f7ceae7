"""Embedded reference implementation of SDDC Manager's tasks service, with switchable defects."""

from .app import DEFAULT_SEED_TASKS, ReferenceConfig, ReferenceService, create_app
from .defects import CATEGORIES, DEFECTS, Defect, validate_defect_names
from .server import PortInUse, ReferenceServer, serve_forever
from .store import CANCELLABLE, STATUSES, RequestRecord, Task, TaskStore, normalize_status

__all__ = [
    "CANCELLABLE",
    "CATEGORIES",
    "DEFAULT_SEED_TASKS",
    "DEFECTS",
    "STATUSES",
    "Defect",
    "PortInUse",
    "ReferenceConfig",
    "ReferenceServer",
    "ReferenceService",
    "RequestRecord",
    "Task",
    "TaskStore",
    "create_app",
    "normalize_status",
    "serve_forever",
    "validate_defect_names",
]
