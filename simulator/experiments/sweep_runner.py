"""Running a sweep: its runs as tasks on an executor, each outcome written as it arrives.

A :class:`~simulator.experiments.sweep.SweepPlan` (:mod:`simulator.experiments.sweep`) lists the runs. Here:

* :func:`run_task` runs one of them in any process — a local worker, a Dask worker or the
  calling process — from plain, picklable data, and never raises for a failing run;
* :class:`SweepDir` owns the output directory: ``sweep.json`` (the plan), ``runs.jsonl``
  (one JSON object per finished run) and ``summary.csv`` (one row per run), each line
  appended with one write and an fsync while the sweep runs, both rewritten in plan order
  when it ends (so every file a sweep writes is the same, byte for byte, whatever the job
  count or executor), and reads ``runs.jsonl`` back to resume;
* :func:`run_sweep` submits the pending runs to a :class:`concurrent.futures.Executor` —
  :func:`local_executor` (processes, or the calling process for one job) or
  :func:`dask_executor` (``Client.get_executor()``): one code path — and hands each outcome
  to the directory as it completes; Ctrl-C and a dead worker stop it with the finished runs
  kept.
"""

import contextlib
import csv
import io
import json
import multiprocessing
import os
import select
import signal
import threading
import time
from concurrent.futures import (
    FIRST_COMPLETED,
    Executor,
    Future,
    ProcessPoolExecutor,
    wait,
)
from dataclasses import dataclass

from ..outputs.report import format_table
from ..utils.errors import InputError
from ..utils.files import append_whole, check_output_dir, write_text_atomic
from . import runner
from .scenario import scenario_from_data
from .sweep import short_value

__all__ = ["SweepDir", "SweepOutcome", "METRICS", "FAULT_METRICS", "metric_columns", "run_task",
           "run_sweep", "local_executor", "dask_executor", "format_sweep_table"]

METRICS = ("time_to_accuracy_s", "steps_to_accuracy", "final_test_accuracy",
           "simulated_time_s", "steps", "epochs", "compute_time_s", "comm_time_s", "wait_time_s")
"""Record fields of summary.csv's first metric columns (a dot reads one level down); then
come ``overlapped_comm_time_s`` when some run overlaps (DDP), ``comm_bytes.<tier>`` and
``comm_time_by_tier_s.<tier>`` for every tier of the sweep's topologies, ``syncs.<level>`` for
every level and ``syncs.global``, and ``status_reason`` (see :func:`metric_columns`)."""
NO_ERROR = "-"
"""summary.csv's ``error`` cell for a run that did not fail (text, so the column reads as
text in pandas and spreadsheets even when no run failed)."""
FAULT_METRICS = ("faults.policy", "faults.goodput_steps_per_s", "faults.failures",
                 "faults.restarts", "faults.redone_steps", "faults.failure_wait_s",
                 "faults.down_time_s", "faults.checkpoint_time_s", "faults.lost_gpu_s",
                 "faults.mean_workers", "faults.min_workers")
"""summary.csv's columns of what faults did, when a sweep's scenario has a faults section
(docs/faults.md), before ``status_reason``."""


def metric_columns(tiers=("intra_block", "inter_block"), levels=("block",), overlap=False,
                   faults=False):
    """summary.csv's metric columns for topologies with these tiers and levels (and with
    ``overlapped_comm_time_s`` if some run overlaps its gradient all-reduces, and the
    :data:`FAULT_METRICS` when `faults`).

    Examples
    --------
    >>> metric_columns()[-7:]
    ('comm_bytes.intra_block', 'comm_bytes.inter_block', 'comm_time_by_tier_s.intra_block', 'comm_time_by_tier_s.inter_block', 'syncs.block', 'syncs.global', 'status_reason')
    """
    return (METRICS + (("overlapped_comm_time_s",) if overlap else ())
            + tuple(f"comm_bytes.{t}" for t in tiers)
            + tuple(f"comm_time_by_tier_s.{t}" for t in tiers)
            + tuple(f"syncs.{level}" for level in levels) + ("syncs.global",)
            + (FAULT_METRICS if faults else ()) + ("status_reason",))


# --------------------------------------------------------------------------- one run
def run_task(task):
    """Run one task of :meth:`SweepPlan.task`; return ``{id, status, error, record}``.

    Runs in a worker (a local process, a Dask worker, or the calling process with
    ``--jobs 1``): it builds the point's Scenario from plain data, runs the one variant with
    BLAS limited to one thread (only its first ``task["stop_after"]`` steps if given), and
    never raises for a failing run: ``status`` is the
    record's (``"ok"``, ``"diverged"`` or ``"not_learning"``), or ``"failed"`` with the
    exception's first line in ``error``.
    """
    from threadpoolctl import threadpool_limits

    try:
        scenario = scenario_from_data(task["data"], file=task["file"],
                                      base_dir=task["base_dir"], name=task["name"])
        [variant] = [v for v in scenario.variants if v.label == task["variant"]]
        with threadpool_limits(limits=1):
            record = runner.run_variant(scenario, variant, stop_after=task.get("stop_after"))
        json.dumps(record, allow_nan=False)            # fails here, not in the writer
    except Exception as err:  # noqa: BLE001 -- a failed run is a result, not a crash
        text = str(err).strip().splitlines()
        return {"id": task["id"], "status": "failed", "record": None,
                "error": f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")}
    return {"id": task["id"], "status": record.get("status") or "ok", "error": None,
            "record": record}


# --------------------------------------------------------------------------- the directory
class SweepDir:
    """A sweep's output directory: ``sweep.json``, ``runs.jsonl`` and ``summary.csv``.

    ``runs.jsonl`` gets one JSON object per finished run; ``summary.csv`` one row per run.
    Each line is appended with one ``os.write``, then ``fsync``, so a sweep killed at any
    moment leaves complete lines, except perhaps a torn last line of ``runs.jsonl``, which
    :meth:`open` with ``resume=True`` cuts off; a write that fails (a full disk) is undone
    (the file is cut back to its last complete line) and raised as InputError. While the
    sweep runs, lines are in order of completion; :meth:`finish` rewrites both files in plan
    order (runs no longer in the plan last, by id), as does a resume for ``summary.csv``.
    """

    def __init__(self, path, plan, finished, stale):
        self.path, self.plan = str(path), plan
        self.finished = finished            # run id -> runs.jsonl entry, plan runs only
        self.stale = stale                  # entries of runs.jsonl not in this plan
        self._order = {run.id: i for i, run in enumerate(plan.runs)}
        self._jsonl = self._csv = None

    @classmethod
    def open(cls, path, plan, *, resume=False):
        """Check or create the directory, write sweep.json; with `resume`, read runs.jsonl.

        Raises InputError (field ``--output``) for a non-empty directory without `resume`.
        """
        path = str(path)
        cls.check(path, resume=resume)
        try:
            os.makedirs(path, exist_ok=True)
        except OSError as err:
            raise InputError(f"cannot create the directory: {err.strerror}", file=path,
                             field="--output", fix="check the path and its permissions, or "
                                                   "give another directory") from None
        entries = _read_jsonl(os.path.join(path, "runs.jsonl")) if resume else []
        known = {run.id for run in plan.runs}
        finished = {e["id"]: e for e in entries if e["id"] in known}
        stale = [e for e in entries if e["id"] not in known]
        directory = cls(path, plan, finished, stale)
        write_text_atomic(directory.file("sweep.json"),
                          json.dumps(plan.document(), indent=1, sort_keys=True) + "\n", fsync=True)
        directory.rewrite_summary()
        try:
            directory._jsonl = os.open(directory.file("runs.jsonl"),
                                       os.O_WRONLY | os.O_APPEND | os.O_CREAT, 0o644)
            directory._csv = os.open(directory.file("summary.csv"), os.O_WRONLY | os.O_APPEND)
        except OSError as err:
            directory.close()
            raise _write_failed(err, directory.file("runs.jsonl")) from None
        return directory

    @staticmethod
    def check(path, *, resume=False):
        """Raise InputError (field ``--output``) unless `path` can take a sweep's files."""
        check_output_dir(path, resume=resume, field="--output", what="a sweep")

    def file(self, name):
        return os.path.join(self.path, name)

    def pending(self):
        """The plan's runs not finished yet, in plan order."""
        return [run for run in self.plan.runs if run.id not in self.finished]

    def entry(self, run, outcome):
        """The runs.jsonl entry of `run` from :func:`run_task`'s `outcome`."""
        point = self.plan.points[run.point]
        return {"id": run.id, "point": run.point, "values": point.values,
                "variant": run.variant, "status": outcome["status"],
                "error": outcome["error"], "record": outcome["record"]}

    def append(self, entry):
        """Add a finished run to runs.jsonl and summary.csv (each one write + fsync).

        Raises InputError if a write fails; the file is then cut back to where it was.
        """
        _append(self._jsonl, json.dumps(entry, sort_keys=True, allow_nan=False) + "\n",
                self.file("runs.jsonl"))
        self.finished[entry["id"]] = entry
        _append(self._csv, _csv_text([self._row(entry)]), self.file("summary.csv"))

    def rewrite_summary(self):
        """summary.csv from the finished runs, in plan order."""
        entries = sorted(self.finished.values(), key=lambda e: self._order[e["id"]])
        write_text_atomic(self.file("summary.csv"),
                          _csv_text([self.columns()] + [self._row(e) for e in entries]), fsync=True)

    def finish(self):
        """Close the files, then rewrite runs.jsonl and summary.csv in plan order.

        runs.jsonl keeps every entry it had (runs no longer in the plan come last, by id),
        so the files of a finished sweep do not depend on which runs finished first.
        """
        self.close()
        entries = sorted(self.finished.values(), key=lambda e: self._order[e["id"]])
        entries += sorted(self.stale, key=lambda e: str(e["id"]))
        try:
            write_text_atomic(self.file("runs.jsonl"), "".join(
                json.dumps(e, sort_keys=True, allow_nan=False) + "\n" for e in entries),
                fsync=True)
            self.rewrite_summary()
        except InputError as err:              # the appended lines are all still there
            raise InputError(err.message, file=err.file,
                             fix=f"{err.fix}; the {len(self.finished)} finished runs are kept "
                                 "in runs.jsonl, and --resume puts the files in order") from None

    def columns(self):
        return (["id", "point", *self.plan.paths, "variant", "status", *self._metrics(), "error"])

    def _metrics(self):
        return metric_columns(getattr(self.plan, "tiers", ("intra_block", "inter_block")),
                              getattr(self.plan, "levels", ("block",)),
                              getattr(self.plan, "overlap", False),
                              getattr(self.plan, "faults", False))

    def _row(self, entry):
        values = entry["values"]
        cells = [entry["id"], entry["point"]]
        cells += [_cell(values[p]) if p in values else "" for p in self.plan.paths]
        cells += [entry["variant"], entry["status"]]
        for metric in self._metrics():
            value = entry["record"]
            for key in metric.split("."):
                value = value.get(key) if isinstance(value, dict) else None
            cells.append(_cell(value))
        return cells + [entry["error"] or NO_ERROR]

    def close(self):
        for fd in (self._jsonl, self._csv):
            if fd is not None:
                os.close(fd)
        self._jsonl = self._csv = None


def _cell(value):
    if value is None:
        return ""
    if isinstance(value, (dict, list)):
        return json.dumps(value, separators=(",", ":"), sort_keys=True)
    return value if isinstance(value, str) else json.dumps(value)


def _csv_text(rows):
    buffer = io.StringIO()
    csv.writer(buffer, lineterminator="\n").writerows(rows)
    return buffer.getvalue()


def _append(fd, text, file):
    append_whole(fd, text, file)


def _write_failed(err, file):
    return InputError(f"cannot write: {err.strerror or err}", file=file,
                      fix="free some space (or fix the permissions) and run the same command "
                          "with --resume: the runs that finished are kept")


def _read_jsonl(path):
    """The entries of runs.jsonl. A torn last line (no newline after it: the write of that
    run was cut short) is cut off the file; any other unreadable line is an error."""
    if not os.path.exists(path):
        return []
    with open(path, "rb") as stream:
        raw = stream.read()
    *lines, tail = raw.split(b"\n")
    if tail:
        with open(path, "r+b") as stream:
            stream.truncate(len(raw) - len(tail))
    entries = []
    for number, line in enumerate(lines, start=1):
        if not line.strip():
            continue
        try:
            entry = json.loads(line)
        except (ValueError, RecursionError):
            entry = None
        if not isinstance(entry, dict) or "id" not in entry:
            raise InputError("not a run of a sweep", file=path, line=number,
                             fix="remove the line, or use another directory")
        entries.append(entry)
    return entries


# --------------------------------------------------------------------------- running
@dataclass
class SweepOutcome:
    """What :func:`run_sweep` did."""

    ran: int = 0                   # runs finished now (any status)
    failed: int = 0                # of which failed
    lost: int = 0                  # runs whose worker died or that Dask gave up on
    lost_error: str | None = None  # the first such error, one line
    interrupted: bool = False      # KeyboardInterrupt: stopped early


def run_sweep(directory, executor, *, window=None, on_result=None):
    """Run the pending runs of `directory` on `executor`, appending each outcome.

    Parameters
    ----------
    directory : SweepDir
    executor : concurrent.futures.Executor
        :func:`local_executor`, :func:`dask_executor`, or any executor whose futures are
        :class:`concurrent.futures.Future`.
    window : int, optional
        Runs submitted at once (more are submitted as these finish); None: all.
    on_result : callable, optional
        ``on_result(entry)`` after each run is written.

    Returns
    -------
    SweepOutcome
        A run that raised is recorded as failed and the sweep goes on. A future that
        raises (a worker process died: ``BrokenProcessPool``; Dask's ``KilledWorker``) is
        counted as lost and not recorded; a broken executor stops the submissions.
        KeyboardInterrupt cancels what has not finished and returns with ``interrupted``.
    """
    plan, outcome = directory.plan, SweepOutcome()
    todo = iter(directory.pending())
    running, broken = {}, False

    def fill():
        nonlocal broken
        while not broken and (window is None or len(running) < window):
            run = next(todo, None)
            if run is None:
                return
            try:
                running[executor.submit(run_task, plan.task(run))] = run
            except Exception as err:  # noqa: BLE001 -- e.g. BrokenProcessPool
                broken = True
                _lose(outcome, err, 1 + sum(1 for _ in todo))

    try:
        fill()
        while running:
            done, _ = wait(running, return_when=FIRST_COMPLETED)
            for future in done:
                run = running.pop(future)
                try:
                    result = future.result()
                except KeyboardInterrupt:
                    raise
                except BaseException as err:  # noqa: BLE001 -- the worker, not the run
                    _lose(outcome, err, 1)
                    broken = broken or _is_broken(err)
                    continue
                entry = directory.entry(run, result)
                directory.append(entry)       # InputError if the disk is full: stop
                outcome.ran += 1
                outcome.failed += entry["status"] == "failed"
                if on_result is not None:
                    on_result(entry)
            fill()
        if broken:
            outcome.lost += sum(1 for _ in todo)
    except KeyboardInterrupt:
        outcome.interrupted = True
        _stop(executor, running)
    except BaseException:
        _stop(executor, running)
        raise
    return outcome


def _lose(outcome, err, count):
    outcome.lost += count
    if outcome.lost_error is None:
        text = str(err).strip().splitlines()
        outcome.lost_error = f"{type(err).__name__}: {text[0] if text else ''}".rstrip(": ")


def _is_broken(err):
    from concurrent.futures import BrokenExecutor

    return isinstance(err, BrokenExecutor)


def _stop(executor, running=()):
    """Stop `executor` now: cancel what is queued, kill local workers, wait for its thread.

    The executor is shut down first and its worker processes killed after, then its
    management thread is joined (again if a second Ctrl-C interrupts the join), so that no
    thread of the executor outlives the sweep (one left running at exit can race the
    interpreter's own shutdown of the executor and print a traceback).
    """
    if not isinstance(executor, ProcessPoolExecutor):
        for future in running:
            future.cancel()
        executor.shutdown(wait=False)
        return
    # A process pool cancels its queued futures itself (shutdown's cancel_futures): one
    # cancelled here could then be failed by its management thread (InvalidStateError).
    processes = list((getattr(executor, "_processes", None) or {}).values())
    executor.shutdown(wait=False, cancel_futures=True)
    for process in processes:        # ProcessPoolExecutor has no public way before 3.14
        with contextlib.suppress(OSError, ValueError, AttributeError):
            process.kill()
    _uninterrupted(lambda: executor.shutdown(wait=True))


def _uninterrupted(call):
    """``call()``, repeated if KeyboardInterrupt cuts it short; then the interrupt is raised."""
    interrupted = False
    while True:
        try:
            call()
            break
        except KeyboardInterrupt:
            interrupted = True
    if interrupted:
        raise KeyboardInterrupt


class _InlineExecutor(Executor):
    """Runs each call in the calling process at ``submit`` (``--jobs 1``)."""

    def submit(self, fn, /, *args, **kwargs):
        future = Future()
        try:
            future.set_result(fn(*args, **kwargs))
        except Exception as err:  # noqa: BLE001 -- KeyboardInterrupt propagates
            future.set_exception(err)
        return future


def _worker_init(parent_pid):
    """Worker initializer: Ctrl-C is the parent's to handle (it stops the workers), and the
    worker ends as soon as the sweep's process does, however that ends (even ``kill -9``).

    A daemon thread waits for the parent to exit (on a pidfd where the platform has one,
    else by checking once a second) and then ends the worker; with no workers left the
    forkserver and multiprocessing's resource tracker exit too, so a killed sweep leaves no
    process behind.
    """
    signal.signal(signal.SIGINT, signal.SIG_IGN)
    threading.Thread(target=_exit_with, args=(parent_pid,), name="sgdsim-parent-watch",
                     daemon=True).start()


def _exit_with(pid):
    """Block until process `pid` has exited, then end this process at once."""
    try:
        fd = os.pidfd_open(pid)
    except (AttributeError, OSError):
        fd = None
    if fd is not None:
        select.select([fd], [], [])                # readable once the process has exited
    else:
        while True:
            time.sleep(1.0)
            try:
                os.kill(pid, 0)
            except ProcessLookupError:
                break
            except OSError:
                pass
    os._exit(1)


@contextlib.contextmanager
def local_executor(jobs):
    """An executor of `jobs` local processes; ``jobs=1`` runs in this process.

    Processes start with the ``forkserver`` method where the platform has it (Linux,
    macOS), else ``spawn``: never ``fork``, which would copy a parent that already runs
    threads (tqdm's monitor, BLAS pools) with their locks in whatever state they were.
    Each worker ends when this process does (:func:`_worker_init`).
    """
    if jobs == 1:
        yield _InlineExecutor()
        return
    method = "forkserver" if "forkserver" in multiprocessing.get_all_start_methods() \
        else "spawn"
    executor = ProcessPoolExecutor(jobs, mp_context=multiprocessing.get_context(method),
                                   initializer=_worker_init, initargs=(os.getpid(),))
    try:
        yield executor
    finally:
        _uninterrupted(lambda: executor.shutdown(wait=True, cancel_futures=True))


@contextlib.contextmanager
def dask_executor(address):
    """``(executor, threads)``: a Dask cluster's executor and its workers' thread count.

    Raises InputError (field ``--scheduler``) when the scheduler cannot be reached.
    """
    from distributed import Client

    try:
        client = Client(address, timeout="10s")
    except (OSError, TimeoutError, ValueError) as err:
        raise InputError(f"cannot reach a Dask scheduler at {address!r} ({err})",
                         field="--scheduler",
                         fix="start one with 'dask scheduler' and workers with 'dask worker "
                             "tcp://HOST:8786', then pass its address") from None
    try:
        yield client.get_executor(), sum(client.nthreads().values())
    finally:
        client.close()


# --------------------------------------------------------------------------- the table
def format_sweep_table(plan, entries):
    """:func:`simulator.outputs.report.format_table` of the runs with records, swept values first.

    `entries` are runs.jsonl entries; rows follow plan order.
    """
    order = {run.id: i for i, run in enumerate(plan.runs)}
    shown = sorted((e for e in entries if e["record"] is not None), key=lambda e: order[e["id"]])
    if not shown:
        return "(no finished runs)"
    table = format_table([e["record"] for e in shown]).split("\n")
    columns = [[path] + [short_value(e["values"][path], 24) if path in e["values"] else "-"
                         for e in shown] for path in plan.paths]
    widths = [max(len(str(cell)) for cell in column) for column in columns]
    lines = []
    rows = len(shown) + 2                          # header, rule, one row per run
    for row, line in enumerate(table[:rows]):
        cells = ["-" * w if row == 1 else str(column[row if row == 0 else row - 1]).rjust(w)
                 for column, w in zip(columns, widths)]
        lines.append("  ".join(cells + [line]))
    return "\n".join(lines + table[rows:])          # then why runs failed to learn
