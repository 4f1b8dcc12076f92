"""Frameworks that cannot share a process with the others run their calls in a worker process of their own.

Two reasons make a framework need one: PaddlePaddle's ``libpaddle`` crashes the interpreter (SIGSEGV) when it is
imported after TensorFlow, and Keras 3 picks its backend once, at import, so that one process holds one backend.
An adapter module wraps its bindings with :func:`isolate`: their ``call`` and ``gradient`` (the only parts that
touch the framework) then run in a worker started with ``multiprocessing``'s *spawn* method, which imports the
adapter module again with :data:`WORKER_ENV` set (so that it builds its bindings plain) and whatever environment
the adapter asks for. References, reductions and tolerances stay in the test process. One worker serves every
binding of a module and environment for the whole run (one per xdist worker); it starts at the first call, so
collecting the suite starts none, and a worker that dies (a crash in the framework) fails the call that killed it
with its exit code and is started again for the next one.
"""

from __future__ import annotations

import dataclasses
import importlib
import multiprocessing
import os
import pickle
import threading
from typing import Any, Callable, Mapping

# set in a worker to the module it serves: that module builds its bindings plain, not proxied
WORKER_ENV = "XENT_CONFORMANCE_WORKER"
# a call that takes longer is a hung framework: the worker is stopped and the call fails
CALL_TIMEOUT_S = 600.0


class WorkerCrashed(RuntimeError):
    """The worker process died during a call (for instance a segmentation fault in the framework)."""


def serving(module: str) -> bool:
    """True inside the worker process that serves ``module``'s bindings."""
    return os.environ.get(WORKER_ENV) == module


def _serve(connection, module_name: str, environment: Mapping[str, str]) -> None:
    """The worker's loop: (binding id, part, problem) in, ("ok", value) or ("raised", exception) out."""
    os.environ.update(environment)
    os.environ[WORKER_ENV] = module_name
    bindings = {binding.id: binding for binding in importlib.import_module(module_name).BINDINGS}
    while True:
        try:
            request = connection.recv()
        except EOFError:
            return
        binding_id, part, problem = request
        try:
            reply = ("ok", getattr(bindings[binding_id], part)(problem))
        except BaseException as error:  # the test process decides what a framework's error means
            reply = ("raised", _transportable(error))
        connection.send(reply)


def _transportable(error: BaseException) -> BaseException:
    """The error itself if it survives pickling, else a stand-in of the same class name and message."""
    try:
        pickle.loads(pickle.dumps(error))
        return error
    except Exception:
        return type(type(error).__name__, (RuntimeError,), {"__module__": type(error).__module__})(str(error))


@dataclasses.dataclass
class Worker:
    module: str
    environment: Mapping[str, str]
    process: Any = None
    connection: Any = None
    lock: threading.Lock = dataclasses.field(default_factory=threading.Lock)
    starts: int = 0  # processes started for it in this run (a crash starts another)

    def _start(self) -> None:
        self.starts += 1
        context = multiprocessing.get_context("spawn")
        parent, child = context.Pipe()
        self.process = context.Process(target=_serve, args=(child, self.module, dict(self.environment)),
                                       name=f"xent-conformance worker ({self.module})", daemon=True)
        self.process.start()
        child.close()
        self.connection = parent

    def stop(self) -> None:
        if self.process is not None:
            self.process.kill()
            self.process.join(5)
        self.process = self.connection = None

    def run(self, binding_id: str, part: str, problem) -> Any:
        with self.lock:
            if self.process is None or not self.process.is_alive():
                self._start()
            try:
                self.connection.send((binding_id, part, problem))
                if not self.connection.poll(CALL_TIMEOUT_S):
                    self.stop()
                    raise WorkerCrashed(f"the {self.module} worker did not answer within {CALL_TIMEOUT_S:g} s "
                                        f"({binding_id}, {part}); it was stopped")
                status, value = self.connection.recv()
            except (EOFError, ConnectionError, BrokenPipeError):
                self.process.join(5)
                code = self.process.exitcode
                self.stop()
                raise WorkerCrashed(f"the {self.module} worker died during {binding_id} ({part}), exit code "
                                    f"{code}; it starts again for the next call") from None
        if status == "raised":
            raise value
        return value


# one worker per module and environment: a module whose bindings need two environments (Keras 3 on two
# backends, each picked at import) has two workers, each building the module's bindings in its own
_WORKERS: dict[tuple, Worker] = {}


def _worker(module: str, environment: Mapping[str, str]) -> Worker:
    key = (module, tuple(sorted(environment.items())))
    if key not in _WORKERS:
        _WORKERS[key] = Worker(module, environment)
    return _WORKERS[key]


def started_workers() -> list[tuple[str, dict]]:
    """(module, environment) of each worker that started in this process: what ``python -m benchmarks``
    counts among a run's imports."""
    return [(worker.module, dict(worker.environment)) for worker in _WORKERS.values() if worker.starts]


def _proxy(module: str, environment: Mapping[str, str], binding_id: str, part: str) -> Callable:
    def remote(problem):
        return _worker(module, environment).run(binding_id, part, problem)

    remote.__qualname__ = f"isolated[{module}].{part}"
    return remote


def isolate(bindings: list, module: str, environment: Mapping[str, str] | None = None) -> list:
    """``bindings`` with their framework parts (``call``, ``gradient``) run in ``module``'s worker process;
    inside that worker, the bindings as they are."""
    if serving(module):
        return bindings
    environment = dict(environment or {})
    return [dataclasses.replace(
        binding, call=_proxy(module, environment, binding.id, "call"),
        gradient=None if binding.gradient is None else _proxy(module, environment, binding.id, "gradient"))
        for binding in bindings]
