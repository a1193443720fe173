"""Running a batch: discovery, resume, a fault-tolerant process pool or a Dask cluster, the tables.

Output folder layout::

    OUT/batch_config.json           salt, plan options, software version (read back by --resume)
    OUT/levels.csv, levels.parquet  one row per study and level (see pvp_plan.batch.tables)
    OUT/studies.csv                 one row per study: status, message, timings, provenance
    OUT/studies/<study_id>/         result.json (commit marker), plan.json, label map, ...

Every study's ``result.json`` is written atomically when the study finishes, and the tables are rebuilt from
the results periodically and at the end, so an interrupted batch loses nothing that had finished and
``--resume`` computes only what is missing.
"""

from __future__ import annotations

import contextlib
import importlib
import json
import logging
import multiprocessing
import os
import secrets
import signal
import threading
import time
from collections import deque
from collections.abc import Callable
from concurrent.futures import FIRST_COMPLETED, ProcessPoolExecutor, wait
from concurrent.futures.process import BrokenProcessPool
from dataclasses import dataclass, field
from pathlib import Path

from pvp_plan import __version__
from pvp_plan.batch.discover import Study, discover
from pvp_plan.batch.tables import write_tables
from pvp_plan.batch.task import (
    CRASH_MESSAGE,
    DEFAULT_COMPUTE,
    StudyTask,
    limit_threads,
    read_result,
    redact,
    resolve_callable,
    run_study,
    write_result,
)
from pvp_plan.errors import InputError
from pvp_plan.io.atomic import atomic_write_text

logger = logging.getLogger(__name__)

CONFIG_NAME = "batch_config.json"
CONFIG_FORMAT = "pvp-plan batch 1"


class BatchError(InputError):
    """The output folder or the batch options cannot be used (existing batch without --resume, mismatch...)."""


@dataclass(frozen=True)
class BatchOptions:
    """How to run a batch.

    Attributes
    ----------
    plan_options : dict
        Keyword arguments of ``pvp_plan.pipeline.PlanOptions`` (plain values), the same for every study.
    workers : int
        Parallel studies (process pool size, or LocalCluster workers with ``dask_local``).
    scheduler : str or None
        Address of a running Dask scheduler; input and output paths must be visible to its workers.
    dask_local : bool
        Start a Dask ``LocalCluster`` (loopback only) with ``workers`` single-threaded workers.
    dask_processes : bool
        LocalCluster workers as processes (True) or threads of this process (False, for tests).
    resume : bool
        Continue the batch in the output folder: finished studies are kept, not recomputed.
    retry_failed : bool
        With ``resume``, compute again the studies that failed (skipped ones stay skipped).
    keep_identifiers : bool
        Write input paths, series UIDs and unredacted messages (off by default).
    salt : str or None
        Salt of the study IDs; default: the one stored in the output folder, or a new random one.
    max_memory_gb : float or None
        Per-worker address-space limit (process pool, Linux); a study over it fails with "out of memory".
    table_interval_s : float
        Rebuild the tables at most this often while the batch runs (and always at the end).
    compute : str
        ``"module:function"`` of the compute step (tests and benchmarks inject their own).
    exclude : tuple of str
        Shell patterns of files / folders of a tree not to read (e.g. ``"*seg*"``, ``"reference"``).
    """

    plan_options: dict = field(default_factory=dict)
    workers: int = 1
    scheduler: str | None = None
    dask_local: bool = False
    dask_processes: bool = True
    resume: bool = False
    retry_failed: bool = False
    keep_identifiers: bool = False
    salt: str | None = None
    max_memory_gb: float | None = None
    table_interval_s: float = 30.0
    compute: str = DEFAULT_COMPUTE
    exclude: tuple[str, ...] = ()

    def __post_init__(self) -> None:
        if self.workers < 1:
            raise BatchError(f"--workers must be at least 1, got {self.workers}")
        if self.scheduler and self.dask_local:
            raise BatchError("give either --scheduler ADDRESS or --dask, not both")
        if self.max_memory_gb is not None and self.max_memory_gb <= 0:
            raise BatchError(f"--max-memory-gb must be positive, got {self.max_memory_gb}")


@dataclass
class BatchSummary:
    """What a batch did: counts, wall time and the tables written."""

    n_studies: int = 0
    n_ok: int = 0
    n_failed: int = 0
    n_skipped: int = 0
    n_reused: int = 0
    n_computed: int = 0
    wall_seconds: float = 0.0
    backend: str = ""
    tables: dict[str, Path] = field(default_factory=dict)
    interrupted: bool = False


class BatchProgress:
    """Callbacks the runner calls (the CLI draws a progress bar with them); the default does nothing."""

    def start(self, total: int, finished: dict[str, int], backend: str) -> None:
        """``total`` studies; ``finished`` counts by status those already done (resume) or skipped by discovery."""

    def study_done(self, result: dict) -> None:
        """One study finished (ok or failed)."""


def run_batch(input_path: str | Path, out_dir: str | Path, options: BatchOptions,
              progress: BatchProgress | None = None) -> BatchSummary:
    """Run (or resume) a batch over a folder tree or manifest CSV; see the module docstring for the outputs.

    A failing study never stops the batch. On KeyboardInterrupt the tables are written from the finished
    studies and the interrupt is re-raised (``summary`` then lives in the exception's ``batch_summary``).
    """
    started = time.perf_counter()
    progress = progress or BatchProgress()
    out_dir = Path(out_dir).absolute()
    if not Path(input_path).exists():
        raise InputError(f"{input_path}: no such file or folder; give a folder of studies or a manifest CSV")
    out_dir.mkdir(parents=True, exist_ok=True)
    with _exclusive(out_dir):
        return _run_locked(input_path, out_dir, options, progress, started)


@contextlib.contextmanager
def _exclusive(out_dir: Path):
    """Hold an advisory lock on the output folder: two batches never write the same folder at once.

    The lock dies with the process (kill, power cut), so it never blocks a later ``--resume``.
    """
    try:
        import fcntl
    except ImportError:  # not POSIX: no lock
        yield
        return
    with open(out_dir / ".batch.lock", "w") as fh:
        try:
            fcntl.flock(fh, fcntl.LOCK_EX | fcntl.LOCK_NB)
        except OSError:
            raise BatchError(f"{out_dir}: another pvp-plan batch is running in this folder; wait for it or "
                             "choose another --out") from None
        try:
            yield
        finally:
            fcntl.flock(fh, fcntl.LOCK_UN)


def _run_locked(input_path, out_dir: Path, options: BatchOptions, progress: BatchProgress,
                started: float) -> BatchSummary:
    config = prepare_output(out_dir, options)
    studies = discover(input_path, salt=config["salt"], exclude=(out_dir,), exclude_globs=tuple(options.exclude))
    if not (out_dir / CONFIG_NAME).exists():  # a new batch: recorded once its input has been read
        atomic_write_text(out_dir / CONFIG_NAME, json.dumps(config, indent=1, sort_keys=True))
    results: dict[str, dict] = {}
    pending: list[Study] = []
    summary = BatchSummary(n_studies=len(studies))
    for study in studies:
        previous = read_result(_study_dir(out_dir, study)) if options.resume else None
        if previous is not None and not (options.retry_failed and previous.get("status") == "failed"
                                         and study.status is None):
            results[study.study_id] = previous
            summary.n_reused += 1
        elif study.status is not None:  # decided by discovery: skipped or unreadable
            results[study.study_id] = _decided_result(out_dir, study, options)
        else:
            pending.append(study)
    tasks = [_task(out_dir, s, options) for s in pending]
    summary.backend = _backend_name(options)
    statuses = [r.get("status", "failed") for r in results.values()]
    progress.start(len(studies), {s: statuses.count(s) for s in ("ok", "failed", "skipped")}, summary.backend)
    last_tables = [time.monotonic()]

    def on_result(result: dict) -> None:
        results[result["study_id"]] = result
        summary.n_computed += 1
        progress.study_done(result)
        if time.monotonic() - last_tables[0] >= options.table_interval_s:
            write_tables(out_dir, list(results.values()), keep_identifiers=options.keep_identifiers)
            last_tables[0] = time.monotonic()

    try:
        if tasks:
            if options.scheduler or options.dask_local:
                _run_dask(tasks, options, on_result)
            else:
                _run_process_pool(tasks, options, on_result)
    except KeyboardInterrupt as exc:
        summary.interrupted = True
        _finish(summary, out_dir, results, options, started)
        exc.batch_summary = summary  # type: ignore[attr-defined]
        raise
    return _finish(summary, out_dir, results, options, started)


def _finish(summary: BatchSummary, out_dir: Path, results: dict[str, dict], options: BatchOptions,
            started: float) -> BatchSummary:
    summary.tables = write_tables(out_dir, list(results.values()), keep_identifiers=options.keep_identifiers)
    statuses = [r.get("status") for r in results.values()]
    summary.n_ok, summary.n_failed, summary.n_skipped = (statuses.count(s) for s in ("ok", "failed", "skipped"))
    summary.wall_seconds = time.perf_counter() - started
    return summary


def prepare_output(out_dir: Path, options: BatchOptions) -> dict:
    """The batch configuration: read back and checked on resume, new otherwise (written once discovery succeeded).

    A new batch needs a folder without results; a resumed one the same plan options and salt.
    """
    config_path = out_dir / CONFIG_NAME
    wanted = {
        "format": CONFIG_FORMAT,
        "plan_options": _jsonable(options.plan_options),
        "keep_identifiers": options.keep_identifiers,
        "compute": options.compute,
    }
    if config_path.exists():
        if not options.resume:
            raise BatchError(f"{out_dir} already holds a batch; add --resume to continue it, or choose a new --out")
        config = json.loads(config_path.read_text(encoding="utf-8"))
        for key, value in wanted.items():
            if config.get(key) != value:
                raise BatchError(f"{out_dir}: {key} differ from the batch being resumed ({config.get(key)!r} there, "
                                 f"{value!r} now); resume with the same options or choose a new --out")
        if options.salt is not None and options.salt != config["salt"]:
            raise BatchError(f"{out_dir}: --salt differs from the salt of the batch being resumed; omit --salt")
        return config
    if out_dir.exists() and (out_dir / "studies").exists():
        raise BatchError(f"{out_dir} holds study results but no {CONFIG_NAME}; choose a new --out")
    return {**wanted, "salt": options.salt or secrets.token_hex(16), "software_version": __version__}


def _jsonable(value):
    return json.loads(json.dumps(value, sort_keys=True, default=str))


def _study_dir(out_dir: Path, study: Study) -> Path:
    return out_dir / "studies" / study.study_id


def _task(out_dir: Path, study: Study, options: BatchOptions) -> StudyTask:
    return StudyTask(
        study_id=study.study_id, path=study.path, study_dir=str(_study_dir(out_dir, study)),
        series_uid=study.series_uid, anchor=study.anchor, segmentation=study.segmentation,
        options=dict(options.plan_options),
        compute=options.compute, keep_identifiers=options.keep_identifiers, redact=study.identifiers,
    )


def _decided_result(out_dir: Path, study: Study, options: BatchOptions) -> dict:
    """Result of a study that discovery already skipped or failed (written like any other)."""
    message = study.message if options.keep_identifiers else redact(study.message, study.identifiers)
    result = {"study_id": study.study_id, "status": study.status, "message": message, "levels": [], "n_levels": 0,
              "software_version": __version__, "seconds": None, "compute_seconds": None}
    if options.keep_identifiers:
        result.update(input_path=study.path, series_uid=study.series_uid)
    write_result(_study_dir(out_dir, study), result)
    return result


def _crash_result(task: StudyTask, message: str = CRASH_MESSAGE) -> dict:
    """Result of a study whose worker died; written by the coordinating process."""
    result = {"study_id": task.study_id, "status": "failed", "message": message, "levels": [], "n_levels": 0,
              "software_version": __version__, "seconds": None, "compute_seconds": None}
    if task.keep_identifiers:
        result.update(input_path=task.path, series_uid=task.series_uid)
    write_result(Path(task.study_dir), result)
    return result


def _backend_name(options: BatchOptions) -> str:
    if options.scheduler:
        return "dask scheduler"
    if options.dask_local:
        return f"dask LocalCluster, {options.workers} worker(s)"
    return f"process pool, {options.workers} worker(s)"


# --------------------------------------------------------------------------------------------- process pool


def _init_worker(max_memory_gb: float | None, parent_pid: int, log_level: int, compute: str) -> None:
    """Process-pool worker set-up: one ITK/BLAS thread, optional memory limit, leave Ctrl-C to the parent.

    The compute step and the modules it lists in its ``preload`` attribute are imported here, so their import
    time counts as start-up, not as the first study's compute.

    Library warnings (e.g. the loader's notes, which are also kept in each result's provenance) are shown
    only when the parent logs at INFO (``--verbose``), so they do not interleave with the progress bar.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    logging.basicConfig(level=log_level if log_level <= logging.INFO else logging.ERROR,
                        format="%(levelname)s worker %(process)d %(name)s: %(message)s")
    limit_threads()
    if max_memory_gb:
        import resource

        limit = int(max_memory_gb * 1024**3)
        resource.setrlimit(resource.RLIMIT_AS, (limit, limit))
    threading.Thread(target=_exit_when_orphaned, args=(parent_pid,), daemon=True).start()
    try:
        for module in getattr(resolve_callable(compute), "preload", ()):  # what the step imports lazily
            importlib.import_module(module)
    except Exception:  # reported by the first task that needs it, with its message
        logging.getLogger(__name__).debug("pre-import of %s failed", compute, exc_info=True)


def _exit_when_orphaned(parent_pid: int) -> None:
    """End this worker soon after its parent dies (killed batch), instead of waiting forever for work."""
    while os.getppid() == parent_pid:
        time.sleep(1.0)
    os._exit(3)


def _run_process_pool(tasks: list[StudyTask], options: BatchOptions, on_result: Callable[[dict], None]) -> None:
    """Run tasks on a spawn-based process pool that survives worker crashes.

    At most ``workers`` tasks are in flight. When a worker dies the pool breaks and every study in flight
    becomes a suspect; the pool is restarted and suspects are rerun one at a time, so only the study that
    really kills its worker is recorded as failed ("worker crashed (out of memory?)").
    """
    queue = deque(tasks)
    suspects: deque[StudyTask] = deque()
    context = multiprocessing.get_context("spawn")
    while queue or suspects:
        pool = ProcessPoolExecutor(max_workers=options.workers, mp_context=context, initializer=_init_worker,
                                   initargs=(options.max_memory_gb, os.getpid(),
                                             logging.getLogger().getEffectiveLevel(), options.compute))
        inflight: dict = {}
        crashed: list[StudyTask] = []
        try:
            while queue or suspects or inflight:
                _submit(pool, inflight, suspects if suspects else queue, 1 if suspects else options.workers)
                if not inflight:
                    raise BatchError("the process pool cannot start its workers (is --max-memory-gb too low?)")
                done, _ = wait(inflight, return_when=FIRST_COMPLETED)
                for future in done:
                    task = inflight.pop(future)
                    try:
                        result = future.result()
                    except BrokenProcessPool:
                        crashed.append(task)
                        continue
                    on_result(result)
                if crashed:  # the whole pool is gone: everything still in flight went down with it
                    crashed.extend(inflight.values())
                    inflight.clear()
                    break
        finally:
            _shutdown(pool)
        unexplained = [t for t in crashed if not _finished_meanwhile(t, on_result)]
        if len(unexplained) == 1:  # alone in flight: no doubt which study killed its worker
            on_result(_crash_result(unexplained[0]))
        elif unexplained:
            logger.warning("a worker crashed with %d studies in flight; rerunning them one at a time",
                           len(unexplained))
            suspects.extend(sorted(unexplained, key=lambda t: t.study_id))


def _submit(pool: ProcessPoolExecutor, inflight: dict, source: deque, limit: int) -> None:
    """Fill the pool from ``source`` up to ``limit`` tasks in flight (a broken pool leaves the task queued)."""
    while source and len(inflight) < limit:
        task = source.popleft()
        try:
            inflight[pool.submit(run_study, task)] = task
        except BrokenProcessPool:
            source.appendleft(task)
            return


def _finished_meanwhile(task: StudyTask, on_result: Callable[[dict], None]) -> bool:
    """True (and the result reported) when a task finished and wrote its result just before the pool broke."""
    result = read_result(Path(task.study_dir))
    if result is None or result.get("study_id") != task.study_id:
        return False
    on_result(result)
    return True


def _shutdown(pool: ProcessPoolExecutor) -> None:
    """Stop a pool now: cancel what has not started and end its worker processes (this pool's only)."""
    processes = list((getattr(pool, "_processes", None) or {}).values())
    pool.shutdown(wait=False, cancel_futures=True)
    for proc in processes:
        if proc.is_alive():
            proc.terminate()
    for proc in processes:
        proc.join(timeout=5)


# --------------------------------------------------------------------------------------------- dask


def _run_dask(tasks: list[StudyTask], options: BatchOptions, on_result: Callable[[dict], None]) -> None:
    """Run the same tasks on a Dask cluster (a scheduler address, or a LocalCluster on loopback)."""
    try:
        from distributed import Client, LocalCluster, as_completed
    except ImportError:
        raise BatchError("the Dask backend needs dask[distributed]: pip install 'pvp-plan[batch]'") from None
    cluster = None
    if options.scheduler:
        client = Client(options.scheduler)
    else:
        network = {"host": "127.0.0.1"} if options.dask_processes else {}  # threads talk in-process
        cluster = LocalCluster(
            n_workers=options.workers, threads_per_worker=1, processes=options.dask_processes,
            dashboard_address=None, silence_logs=logging.WARNING,
            memory_limit=f"{options.max_memory_gb}GiB" if options.max_memory_gb else "auto", **network,
            scheduler_kwargs={"dashboard_address": "127.0.0.1:0"},  # its HTTP server: loopback, any free port
        )
        client = Client(cluster)
    futures: dict = {}
    token = secrets.token_hex(4)  # keys unique to this run, even on a scheduler shared by several batches
    try:
        futures = {client.submit(run_study, t, key=f"pvp-plan-{token}-{t.study_id}", pure=False, retries=0): t
                   for t in tasks}
        for future in as_completed(list(futures)):
            task = futures.pop(future)
            try:
                result = future.result()
            except Exception as exc:  # KilledWorker and friends: the study's worker died repeatedly
                logger.warning("study %s: %s", task.study_id, type(exc).__name__)
                result = read_result(Path(task.study_dir)) or _crash_result(task)
            future.release()  # forget it, so a later worker loss never recomputes a finished study
            on_result(result)
    except KeyboardInterrupt:
        client.cancel(list(futures))
        raise
    finally:
        client.close()
        if cluster is not None:
            cluster.close()

