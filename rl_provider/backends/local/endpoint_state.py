"""A local endpoint's state: one typed record and its transitions, each written once.

Two kinds of process change an endpoint: the backend (create, update, delete, reaping servers
that died) and the endpoint's model servers (one per generation: it takes over once its own
``/ping`` answers, or records why it failed). Each change is one transition below, applied to the
record read and written back in one transaction (``LocalStore.change_endpoint``). A transition
that no longer applies (the server was superseded, the endpoint is being deleted) returns None
and nothing is written. ``_MOVES`` is every status change the local backend makes (docs/DESIGN.md
"Local endpoint state").

Pure: no I/O, no processes. The record is stored as JSON with the keys it has always had
(``EndpointName``, ``EndpointStatus``, ..., ``generation``, ``active``, ``pending``).
"""

from __future__ import annotations

from collections.abc import Mapping
from dataclasses import dataclass, replace
from typing import Any

from rl_provider.core.enums import EndpointStatus
from rl_provider.core.lifecycle import require_updatable

# FailureReason holds at most 1024 characters (SageMaker API): room for "Update failed: ".
_MAX_REASON = 900

_CREATING = EndpointStatus.CREATING
_IN_SERVICE = EndpointStatus.IN_SERVICE
_UPDATING = EndpointStatus.UPDATING
_FAILED = EndpointStatus.FAILED
_DELETING = EndpointStatus.DELETING
# Where each status may go; staying is always allowed (a pid recorded, an old server gone while
# its successor starts). A failed update goes Updating -> InService on the old config.
_MOVES: Mapping[EndpointStatus, frozenset[EndpointStatus]] = {
    _CREATING: frozenset({_IN_SERVICE, _FAILED, _DELETING}),
    _IN_SERVICE: frozenset({_UPDATING, _FAILED, _DELETING}),
    _UPDATING: frozenset({_IN_SERVICE, _FAILED, _DELETING}),
    _FAILED: frozenset({_DELETING}),
    _DELETING: frozenset(),
}


@dataclass(frozen=True, slots=True, kw_only=True)
class Server:
    """One generation's model server: the config it serves; its process and port once known."""

    generation: int
    config: str
    pid: int | None = None
    started: float | None = None  # the process's start time: a reused pid is not it
    port: int | None = None

    @classmethod
    def from_body(cls, body: Mapping[str, Any] | None) -> Server | None:
        if not body:
            return None
        return cls(
            generation=int(body["generation"]),
            config=str(body["config"]),
            pid=body.get("pid"),
            started=body.get("started"),
            port=body.get("port"),
        )

    def to_body(self) -> dict[str, Any]:
        body = {"generation": self.generation, "config": self.config}
        known = {"pid": self.pid, "started": self.started, "port": self.port}
        return body | {key: value for key, value in known.items() if value is not None}


@dataclass(frozen=True, slots=True, kw_only=True)
class EndpointRecord:
    """What the local backend knows of one endpoint.

    ``active`` is the server taking requests, ``pending`` the one starting (create or update);
    ``generation`` the last generation started; ``created`` the record's creation time.
    """

    name: str
    config_name: str
    status: EndpointStatus
    failure_reason: str | None = None
    last_modified: float
    generation: int
    active: Server | None = None
    pending: Server | None = None
    created: float = 0.0

    # ------------------------------------------------------------------------ transitions
    @classmethod
    def creating(cls, name: str, config: str, now: float) -> EndpointRecord:
        """CreateEndpoint: Creating, generation 1 starting."""
        return cls(
            name=name,
            config_name=config,
            status=_CREATING,
            last_modified=now,
            generation=1,
            pending=Server(generation=1, config=config),
        )

    def updating(self, config: str, now: float) -> EndpointRecord:
        """UpdateEndpoint: the next generation starts (only from InService, SageMaker's rule)."""
        require_updatable(self.name, self.status)
        generation = self.generation + 1
        return replace(
            self,
            status=_UPDATING,
            generation=generation,
            pending=Server(generation=generation, config=config),
            last_modified=now,
        )

    def with_process(self, generation: int, pid: int, started: float) -> EndpointRecord | None:
        """The server of ``generation`` runs as ``pid`` (None: it is no longer recorded)."""
        if self.pending is not None and self.pending.generation == generation:
            return replace(self, pending=replace(self.pending, pid=pid, started=started))
        if self.active is not None and self.active.generation == generation:
            return replace(self, active=replace(self.active, pid=pid, started=started))
        return None

    def promoted(self, generation: int, port: int, now: float) -> EndpointRecord | None:
        """The starting server of ``generation`` answers on ``port``: it serves now (InService
        on its config); None if it was superseded or the endpoint is being deleted."""
        if self.pending is None or self.pending.generation != generation:
            return None
        return self._move(
            _IN_SERVICE,
            active=replace(self.pending, port=port),
            pending=None,
            config_name=self.pending.config,
            failure_reason=None,
            last_modified=now,
        )

    def pending_failed(self, generation: int, reason: str, now: float) -> EndpointRecord | None:
        """The starting server of ``generation`` failed (``model_fn`` raised, it could not start
        or it died). A failed update leaves the endpoint InService on the server it had, with the
        reason (SageMaker rule); a failed create is Failed."""
        if self.pending is None or self.pending.generation != generation:
            return None  # superseded or deleted meanwhile
        reason = reason[:_MAX_REASON]
        if self.active is not None:
            return self._move(
                _IN_SERVICE,
                pending=None,
                failure_reason=f"Update failed: {reason}",
                last_modified=now,
            )
        return self._move(_FAILED, pending=None, failure_reason=reason, last_modified=now)

    def active_exited(self, reason: str, now: float) -> EndpointRecord | None:
        """The serving server died: Failed, unless a successor is starting (it decides)."""
        if self.active is None:
            return None
        if self.pending is not None:
            return self._move(self.status, active=None, last_modified=now)
        return self._move(_FAILED, active=None, failure_reason=reason, last_modified=now)

    def deleting(self) -> EndpointRecord | None:
        """DeleteEndpoint: Deleting while its servers stop."""
        return self._move(_DELETING)

    def _move(self, status: EndpointStatus, **changes: Any) -> EndpointRecord | None:
        if status is not self.status and status not in _MOVES[self.status]:
            return None
        return replace(self, status=status, **changes)

    # ---------------------------------------------------------------------------- reading
    def servers(self) -> list[Server]:
        """The recorded servers, serving one first."""
        return [server for server in (self.active, self.pending) if server is not None]

    def serves(self, generation: int) -> bool:
        """Whether the server of ``generation`` is still recorded (serving or starting)."""
        return any(server.generation == generation for server in self.servers())

    # -------------------------------------------------------------------------- stored form
    @classmethod
    def from_body(cls, body: Mapping[str, Any]) -> EndpointRecord:
        """The record from its stored JSON (``_created``: the row's creation time)."""
        return cls(
            name=body["EndpointName"],
            config_name=body["EndpointConfigName"],
            status=EndpointStatus(body["EndpointStatus"]),
            failure_reason=body.get("FailureReason"),
            last_modified=float(body["LastModifiedTime"]),
            generation=int(body["generation"]),
            active=Server.from_body(body.get("active")),
            pending=Server.from_body(body.get("pending")),
            created=float(body.get("_created", 0.0)),
        )

    def to_body(self) -> dict[str, Any]:
        body: dict[str, Any] = {
            "EndpointName": self.name,
            "EndpointConfigName": self.config_name,
            "EndpointStatus": self.status.value,
            "LastModifiedTime": self.last_modified,
            "generation": self.generation,
            "active": self.active.to_body() if self.active else None,
            "pending": self.pending.to_body() if self.pending else None,
        }
        if self.failure_reason is not None:
            body["FailureReason"] = self.failure_reason
        return body
