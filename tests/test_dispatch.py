"""Dispatch: jobs go to the cluster on commit, or nowhere in the foreground; and no import cycle."""

from __future__ import annotations

import ast
import contextlib
import datetime as dt
import threading
from pathlib import Path

import pytest
from django.db import transaction
from django.utils.module_loading import import_string
from django_q.models import OrmQ

from batchsync import dispatch, services, tasks
from batchsync.models import SyncJob
from tests.conftest import PROJECT_DIR


def _request(queue: bool = False) -> services.JobRequest:
    return services.JobRequest(
        dt.date(2025, 9, 1), dt.date(2025, 9, 5), source="demo", source_options={}, parallelism=2, queue=queue
    )


def test_the_dotted_path_names_the_work_task() -> None:
    assert import_string(dispatch.WORK_TASK) is tasks.sync_job_work


@pytest.mark.django_db(transaction=True)
def test_a_foreground_start_puts_nothing_on_the_broker_and_a_handoff_reports_its_task_ids() -> None:
    with dispatch.handoff(foreground=True) as foreground:
        job = services.sync_job_create(_request())
    assert (job.status, OrmQ.objects.count(), foreground.task_ids) == ("pending", 0, [])
    services.sync_job_pause(job)  # outside the block again: the default, the cluster
    with dispatch.handoff() as handoff:
        services.sync_job_resume(job)
    assert len(handoff.task_ids) == 2 and handoff.failure is None
    assert OrmQ.objects.count() == 2


@pytest.mark.django_db(transaction=True)
def test_nothing_is_handed_on_when_the_transaction_rolls_back() -> None:
    with dispatch.handoff() as handoff, contextlib.suppress(RuntimeError), transaction.atomic():
        services.sync_job_create(_request())
        raise RuntimeError("the caller's transaction fails after the start")
    assert (handoff.task_ids, OrmQ.objects.count(), SyncJob.objects.count()) == ([], 0, 0)


@pytest.mark.django_db(transaction=True)
def test_the_foreground_holds_for_the_calling_thread_only() -> None:
    """The command's worker threads start with the default: what they finish goes to the cluster."""
    seen: list[bool] = []
    with dispatch.handoff(foreground=True):
        thread = threading.Thread(target=lambda: seen.append(dispatch.in_foreground()))
        thread.start()
        thread.join()
        assert dispatch.in_foreground()
    assert seen == [False] and not dispatch.in_foreground()


def _module_imports(path: Path, package: Path) -> set[str]:
    """The batchsync modules `path` imports, also inside functions (a late import hides a cycle)."""
    tree = ast.parse(path.read_text())
    names: set[str] = set()
    for node in ast.walk(tree):
        if isinstance(node, ast.ImportFrom) and node.module and node.level == 0:
            submodules = {f"{node.module}.{alias.name}" for alias in node.names}
            found = {name for name in submodules if _is_module(name, package)}
            names.update(found)
            if found != submodules:  # names defined in the module itself (not only its submodules)
                names.add(node.module)
        elif isinstance(node, ast.Import):
            names.update(alias.name for alias in node.names)
    # A package's __init__ importing its own submodules is not a cycle through the package.
    own = _module_name(path, package)
    return {name for name in names if name.startswith("batchsync") and _is_module(name, package)} - {own}


def _is_module(name: str, package: Path) -> bool:
    relative = package.parent / Path(*name.split("."))
    return relative.with_suffix(".py").exists() or (relative / "__init__.py").exists()


def _module_name(path: Path, package: Path) -> str:
    parts = path.relative_to(package.parent).with_suffix("").parts
    return ".".join(parts[:-1] if parts[-1] == "__init__" else parts)


def test_no_import_cycle_between_batchsync_modules() -> None:
    package = PROJECT_DIR / "batchsync"
    graph = {
        _module_name(path, package): _module_imports(path, package)
        for path in package.rglob("*.py")
        if "migrations" not in path.parts
    }
    cycles: list[list[str]] = []

    def visit(name: str, trail: list[str]) -> None:
        if name in trail:
            cycle = [*trail[trail.index(name) :], name]
            if cycle not in cycles:
                cycles.append(cycle)
            return
        for imported in sorted(graph.get(name, ())):
            visit(imported, [*trail, name])

    for name in sorted(graph):
        visit(name, [])
    assert cycles == []
