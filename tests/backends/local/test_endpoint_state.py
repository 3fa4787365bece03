"""The local endpoint record's transitions, step by step (pure: no store, no processes).

The same transitions run end to end in test_serving.py (real model servers); here each rule is
checked on its own, including the races a real run hits only by chance.
"""

from __future__ import annotations

import pytest

from rl_provider.backends.local.endpoint_state import EndpointRecord, Server
from rl_provider.backends.local.store import LocalStore
from rl_provider.core.enums import EndpointStatus
from rl_provider.exceptions import ResourceBusyError, RLConfigError

IN_SERVICE = EndpointStatus.IN_SERVICE


def serving(config: str = "c1") -> EndpointRecord:
    """An endpoint created with ``config`` whose first server took over on port 8001."""
    created = EndpointRecord.creating("ep", config, now=1.0).with_process(1, pid=11, started=2.0)
    assert created is not None
    promoted = created.promoted(1, port=8001, now=3.0)
    assert promoted is not None
    return promoted


def test_create_then_take_over():
    record = EndpointRecord.creating("ep", "c1", now=1.0)
    assert (record.status, record.generation, record.active) == (EndpointStatus.CREATING, 1, None)
    assert record.pending == Server(generation=1, config="c1")
    live = serving()
    assert live.status is IN_SERVICE
    assert live.active == Server(generation=1, config="c1", pid=11, started=2.0, port=8001)
    assert (live.pending, live.failure_reason, live.last_modified) == (None, None, 3.0)


def test_a_failed_create_is_failed_with_the_reason():
    record = EndpointRecord.creating("ep", "c1", now=1.0)
    failed = record.pending_failed(1, "ValueError: bad model" + "x" * 2000, now=2.0)
    assert failed is not None
    assert failed.status is EndpointStatus.FAILED
    assert failed.pending is None
    assert failed.failure_reason is not None
    assert failed.failure_reason.startswith("ValueError: bad model")
    assert len(failed.failure_reason) == 900  # within SageMaker's 1024


def test_an_update_takes_over_with_its_config():
    updating = serving().updating("c2", now=4.0)
    assert (updating.status, updating.generation) == (EndpointStatus.UPDATING, 2)
    assert updating.pending == Server(generation=2, config="c2")
    assert updating.config_name == "c1"  # still serving the old config
    done = updating.promoted(2, port=8002, now=5.0)
    assert done is not None
    assert (done.status, done.config_name, done.pending) == (IN_SERVICE, "c2", None)
    assert done.active is not None
    assert (done.active.generation, done.active.port) == (2, 8002)


def test_a_failed_update_stays_in_service_on_the_old_config():
    updating = serving().updating("c2", now=4.0)
    kept = updating.pending_failed(2, "RuntimeError: boom", now=5.0)
    assert kept is not None
    assert (kept.status, kept.config_name, kept.pending) == (IN_SERVICE, "c1", None)
    assert kept.active == serving().active
    assert kept.failure_reason == "Update failed: RuntimeError: boom"
    # The next successful update clears the reason.
    again = kept.updating("c3", now=6.0).promoted(3, port=8003, now=7.0)
    assert again is not None
    assert (again.status, again.config_name, again.failure_reason) == (IN_SERVICE, "c3", None)


@pytest.mark.parametrize(
    ("status", "error"),
    [
        (EndpointStatus.CREATING, ResourceBusyError),
        (EndpointStatus.UPDATING, ResourceBusyError),
        (EndpointStatus.DELETING, ResourceBusyError),
        (EndpointStatus.FAILED, RLConfigError),
    ],
)
def test_only_an_in_service_endpoint_can_be_updated(status, error):
    record = EndpointRecord(
        name="ep", config_name="c1", status=status, last_modified=1.0, generation=1
    )
    with pytest.raises(error, match="only an InService endpoint can be updated"):
        record.updating("c2", now=2.0)


def test_a_superseded_or_deleted_server_changes_nothing():
    updating = serving().updating("c2", now=4.0)
    assert updating.promoted(1, port=9000, now=5.0) is None  # generation 1 is not starting
    assert updating.pending_failed(7, "late", now=5.0) is None
    assert updating.with_process(7, pid=1, started=1.0) is None
    deleting = updating.deleting()
    assert deleting is not None
    assert deleting.status is EndpointStatus.DELETING
    assert deleting.promoted(2, port=8002, now=6.0) is None  # no takeover while deleting
    assert deleting.pending_failed(2, "killed", now=6.0) is None
    assert deleting.deleting() == deleting


def test_a_dead_server_fails_the_endpoint_unless_a_successor_is_starting():
    failed = serving().active_exited("the model server exited", now=4.0)
    assert failed is not None
    assert (failed.status, failed.active, failed.failure_reason) == (
        EndpointStatus.FAILED,
        None,
        "the model server exited",
    )
    updating = serving().updating("c2", now=4.0)
    waiting = updating.active_exited("the model server exited", now=5.0)
    assert waiting is not None
    assert (waiting.status, waiting.active, waiting.failure_reason) == (
        EndpointStatus.UPDATING,
        None,
        None,
    )
    # Its successor then decides: it fails (nothing serves: Failed) or takes over.
    gone = waiting.pending_failed(2, "exited while starting", now=6.0)
    assert gone is not None
    assert (gone.status, gone.failure_reason) == (EndpointStatus.FAILED, "exited while starting")
    served = waiting.promoted(2, port=8002, now=6.0)
    assert served is not None
    assert served.status is IN_SERVICE


def test_the_stored_form_round_trips_with_the_keys_it_always_had(tmp_path):
    store = LocalStore(tmp_path / "home")
    store.insert_endpoint(EndpointRecord.creating("ep", "c1", now=1.0))
    assert store.change_endpoint("ep", lambda r: r.with_process(1, pid=11, started=2.0))
    assert store.change_endpoint("ep", lambda r: r.promoted(1, port=8001, now=3.0))
    body = store.get("endpoint", "ep")
    assert body is not None
    assert body == {
        "EndpointName": "ep",
        "EndpointConfigName": "c1",
        "EndpointStatus": "InService",
        "LastModifiedTime": 3.0,
        "generation": 1,
        "active": {"generation": 1, "config": "c1", "pid": 11, "started": 2.0, "port": 8001},
        "pending": None,
        "_created": body["_created"],
    }
    record = store.endpoint("ep")
    assert record is not None
    assert record.created == body["_created"]
    assert record == EndpointRecord.from_body(body)
    # A transition that does not apply writes nothing; a missing record is None.
    assert store.change_endpoint("ep", lambda r: r.promoted(5, port=1, now=9.0)) is None
    assert store.get("endpoint", "ep") == body
    assert store.change_endpoint("nope", lambda r: r.deleting()) is None
