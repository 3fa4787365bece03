"""One generation of a local endpoint: a detached model server on 127.0.0.1.

``python -m rl_provider.backends.local.endpoint HOME ENDPOINT GENERATION [--detach]``. It unpacks
the model artifact and its code, loads the handler (``model_fn``), binds a free loopback port and
serves. Once its own ``GET /ping`` answers it takes over the endpoint in one transaction and then
stops the generation it replaced (blue/green: the old server drains its in-flight requests).
A ``model_fn`` that raises ends the process and records the error as the FailureReason.
"""

from __future__ import annotations

import logging
import os
import shutil
import signal
import sys
import threading
import time
import traceback
from pathlib import Path, PurePosixPath

from rl_provider.backends.local import files, transfer
from rl_provider.backends.local.common import alive, enter_detached_process, signal_server
from rl_provider.backends.local.endpoint_state import EndpointRecord, Server
from rl_provider.backends.local.store import ENDPOINT as ENDPOINT  # re-exported (tests, tools)
from rl_provider.backends.local.store import ENDPOINT_CONFIG, MODEL, LocalStore
from rl_provider.core.packaging import safe_extract
from rl_provider.exceptions import BackendError

# Where a SageMaker serving container unpacks model.tar.gz. A SAGEMAKER_SUBMIT_DIRECTORY under it
# means the code travels inside the artifact (how SDK v2 repacks PyTorch models).
MODEL_DIR_IN_CONTAINER = "/opt/ml/model"

# How often a serving model server checks that its endpoint record still names it, and how long
# it then gives in-flight requests before it exits regardless.
WATCH_SECONDS = 1.0
WATCH_EXIT_SECONDS = 10.0

log = logging.getLogger(__name__)


def endpoint_dir(home: Path, name: str, generation: int) -> Path:
    return home / "endpoints" / name / str(generation)


def _record_failure(store: LocalStore, name: str, generation: int, reason: str) -> None:
    store.change_endpoint(
        name, lambda record: record.pending_failed(generation, reason, time.time())
    )


def _take_over(store: LocalStore, name: str, generation: int, port: int) -> list[Server] | None:
    """Become the endpoint's active server: the server it replaced ([]: none), None if no
    longer wanted (deleted, superseded by a newer update)."""
    replaced: list[Server] = []

    def promote(record: EndpointRecord) -> EndpointRecord | None:
        replaced[:] = [record.active] if record.active else []
        return record.promoted(generation, port, time.time())

    return None if store.change_endpoint(name, promote) is None else replaced


def _prepare(store: LocalStore, name: str, generation: int) -> tuple[Path, Path | None, str | None]:
    record = store.endpoint(name)
    pending = None if record is None else record.pending
    if pending is None or pending.generation != generation:
        raise LookupError(f"endpoint {name} generation {generation} is no longer wanted")
    config = store.get(ENDPOINT_CONFIG, pending.config)
    if config is None:
        raise LookupError(f"endpoint config {pending.config} was deleted")
    model = store.get(MODEL, config["ProductionVariants"][0]["ModelName"])
    if model is None:
        raise LookupError(f"model {config['ProductionVariants'][0]['ModelName']} was deleted")
    container = model["PrimaryContainer"]
    environment = {str(k): str(v) for k, v in container.get("Environment", {}).items()}
    os.environ.update(environment)
    # One intra-op thread (torch reads OMP_NUM_THREADS when it loads): a small policy's forward
    # pass is fastest so, and the server shares the cores with its clients. The model's
    # Environment can say otherwise.
    os.environ.setdefault("OMP_NUM_THREADS", "1")
    root = endpoint_dir(store.home, name, generation)
    model_dir, code_dir = root / "model", root / "code"
    for stale in (model_dir, code_dir):  # an endpoint of the same name that was deleted
        shutil.rmtree(stale, ignore_errors=True)
    model_dir.mkdir(parents=True)
    if container.get("ModelDataUrl"):
        with transfer.local_copy(container["ModelDataUrl"], root / "download") as archive:
            safe_extract(archive, model_dir)
    files.make_private(model_dir)
    submit = environment.get("SAGEMAKER_SUBMIT_DIRECTORY")
    program = environment.get("SAGEMAKER_PROGRAM")
    if not submit:
        return model_dir, None, program
    inside = PurePosixPath(submit)
    if inside.is_relative_to(MODEL_DIR_IN_CONTAINER):
        return model_dir, model_dir / inside.relative_to(MODEL_DIR_IN_CONTAINER), program
    with transfer.local_copy(submit, root / "download") as archive:
        safe_extract(archive, code_dir)
    files.make_private(code_dir)
    return model_dir, code_dir, program


def _still_wanted(store: LocalStore, name: str, generation: int, db: tuple[int, int]) -> bool:
    """Whether this server's home, database and endpoint record still name it."""
    try:
        stat = os.stat(store.path)
    except OSError:
        return False  # the home was deleted
    if (stat.st_dev, stat.st_ino) != db:
        return False  # deleted and made again: its records are not ours
    try:
        record = store.endpoint(name)
    except BackendError:
        return True  # unreadable for now (a full disk): keep serving, ask again
    return record is not None and record.serves(generation)


def _watch_record(store: LocalStore, name: str, generation: int) -> None:
    """Exit when the endpoint record (or the whole home) is gone: a server whose home was
    deleted (``rm -rf .airflow``) used to serve forever, with nothing left to stop it."""
    stat = os.stat(store.path)
    db = (stat.st_dev, stat.st_ino)
    while _still_wanted(store, name, generation, db):
        time.sleep(WATCH_SECONDS)
    log.warning("Endpoint %s generation %s is no longer recorded: exiting", name, generation)
    os.kill(os.getpid(), signal.SIGTERM)  # the server's graceful stop: in-flight requests end
    time.sleep(WATCH_EXIT_SECONDS)
    os._exit(0)


def run(home: Path, name: str, generation: int) -> int:
    logging.basicConfig(
        level=logging.INFO, format="%(asctime)s %(levelname)s %(name)s: %(message)s"
    )
    store = LocalStore(home)
    try:
        model_dir, code_dir, program = _prepare(store, name, generation)
        from rl_provider.serving.handler import InferenceHandler

        handler = InferenceHandler.load(model_dir, code_dir, program)
    except Exception as err:  # whatever model_fn raised is the endpoint's FailureReason
        traceback.print_exc()
        _record_failure(store, name, generation, f"{type(err).__name__}: {err}")
        return 1
    from rl_provider.serving.server import bind_loopback, serve

    sock = bind_loopback()
    port = int(sock.getsockname()[1])
    log.info(
        "Endpoint %s generation %s loaded %s; serving on 127.0.0.1:%s",
        name,
        generation,
        handler.source,
        port,
    )

    def on_ready() -> bool:
        replaced = _take_over(store, name, generation, port)
        if replaced is None:
            return False
        for old in replaced:
            if alive(old):
                signal_server(old, signal.SIGTERM)
        log.info("In service (replaced pid %s)", (replaced[0].pid if replaced else None) or "none")
        threading.Thread(target=_watch_record, args=(store, name, generation), daemon=True).start()
        return True

    serve(handler, sock, on_ready=on_ready)
    return 0


def main(argv: list[str] | None = None) -> int:
    args = list(sys.argv[1:] if argv is None else argv)
    home, name, generation = (a for a in args if a != "--detach")
    server_log = endpoint_dir(Path(home), name, int(generation)) / "server.log"
    enter_detached_process("--detach" in args, server_log)
    return run(Path(home), name, int(generation))


if __name__ == "__main__":
    sys.exit(main())
