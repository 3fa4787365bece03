"""Frozen dataclasses that read and write SageMaker API dicts, their key mapping written once.

``rl_provider.core.jobs`` declares SageMaker's descriptions with ``ApiValue``; the rules here hold
for every one of them:

- ``from_api(data)`` reads a boto3 response, or the output of ``to_api()`` after a trip through
  JSON (an Airflow XCom). Key names are SageMaker's, exactly.
- Datetimes are accepted as ``datetime`` objects (botocore gives tz-aware ones; a naive one is
  taken as UTC), ISO-8601 strings, or epoch seconds (SageMaker's raw JSON protocol). They are
  stored as tz-aware UTC ``datetime`` and emitted by ``to_api()`` as ``isoformat()`` strings, so
  ``json.dumps(x.to_api())`` always works and ``from_api(x.to_api()) == x``.
- ``to_api()`` emits a key only when it has a value: ``None`` and empty collections are left
  out, as SageMaker leaves out unset optional members. An absent (or null) key reads back as the
  field's default, so the round trip holds. ``False`` and ``0`` are values and always emitted.
- Keys a class does not model are kept in ``extra`` (nested datetimes turned into ISO strings)
  and emitted back by ``to_api()``; boto3's ``ResponseMetadata`` (about the HTTP call, not the
  resource) is dropped.
- Status fields are ``StrEnum``s listing every value SageMaker documents; an unknown status
  raises ``BackendError`` naming it rather than guessing its meaning.
- A missing required key raises ``BackendError`` naming it.

However an object is built (``from_api`` or the constructor), its fields are normalized the same
way: datetimes to UTC, status strings to enum members, mappings to JSON-safe ``dict`` copies,
sequences to tuples, empty optional mappings to ``None``.

The mapping is declared once, by the dataclass fields (docs/DESIGN.md, "Declarative API keys"):
a field's key is its name in CamelCase (``training_job_arn`` -> ``TrainingJobArn``), it is
required when it has no default, and its type says how the value is read and written
(``datetime``, a status enum, a nested ``ApiValue``, a tuple of them, a tuple of mappings,
``int``/``float``/``bool``; anything else is kept as given). ``field(metadata=within(key))``
flattens a one-key object. ``ApiValue`` builds the table from the fields on first use.
"""

from __future__ import annotations

import types
from collections.abc import Callable, Mapping, Sequence
from dataclasses import MISSING, Field, dataclass, fields
from datetime import UTC, datetime
from enum import StrEnum
from functools import partial
from typing import (
    TYPE_CHECKING,
    Any,
    ClassVar,
    Self,
    TypeVar,
    Union,
    cast,
    get_args,
    get_origin,
    get_type_hints,
)

from rl_provider.exceptions import BackendError

if TYPE_CHECKING:
    from _typeshed import DataclassInstance

__all__ = ["ApiValue", "within"]

_E = TypeVar("_E", bound=StrEnum)

# boto3 adds this to every response; it describes the HTTP call, not the resource.
_DROPPED_KEYS = frozenset({"ResponseMetadata"})
_WITHIN = "rl_provider.within"


def within(inner: str) -> dict[str, str]:
    """Field metadata: the value is the ``inner`` key of the field's object in the response
    (``ModelArtifacts: {S3ModelArtifacts: uri}`` is read as ``model_artifacts: uri``)."""
    return {_WITHIN: inner}


def _as_utc(value: datetime) -> datetime:
    """A tz-aware UTC datetime; a naive one is taken as UTC (SageMaker's clock)."""
    if value.tzinfo is None:
        return value.replace(tzinfo=UTC)
    return value.astimezone(UTC)


def _parse_datetime(value: object, key: str) -> datetime:
    if isinstance(value, datetime):
        return _as_utc(value)
    try:
        if isinstance(value, str):
            return _as_utc(datetime.fromisoformat(value))
        if isinstance(value, int | float) and not isinstance(value, bool):
            return datetime.fromtimestamp(value, UTC)
    except (ValueError, OverflowError, OSError):
        pass
    raise BackendError(
        f"{key} must be a datetime, an ISO-8601 string or epoch seconds, got {value!r}."
    )


def _json_safe(value: Any) -> Any:
    """A JSON-encodable copy: datetimes -> ISO strings, mappings -> dicts, sequences -> lists."""
    if isinstance(value, datetime):
        return _as_utc(value).isoformat()
    if isinstance(value, Mapping):
        return {str(key): _json_safe(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [_json_safe(item) for item in value]
    return value


def _parse_enum(enum_cls: type[_E], value: object) -> _E:
    if isinstance(value, enum_cls):
        return value
    if isinstance(value, str):
        for member in enum_cls:
            if member.value == value:
                return member
    known = ", ".join(member.value for member in enum_cls)
    raise BackendError(
        f"Unknown {enum_cls.__name__} {value!r}: known values are {known}. SageMaker may "
        "have added it since; upgrade rl_provider or report the value."
    )


def _is_empty(value: object) -> bool:
    return value is None or (isinstance(value, Mapping | list | tuple) and not value)


def _mapping(data: object, what: str) -> Mapping[str, Any]:
    if not isinstance(data, Mapping):
        raise BackendError(f"{what} must be a mapping of SageMaker keys, got {data!r}.")
    return data


def _require(data: Mapping[str, Any], key: str, what: str) -> Any:
    try:
        return data[key]
    except KeyError:
        raise BackendError(
            f"{what}: the response has no {key!r} (keys present: {sorted(data)})."
        ) from None


@dataclass(frozen=True, slots=True)
class _Codec:
    """How one field is read from and written to its SageMaker key."""

    name: str
    key: str
    required: bool
    # A present, non-null value -> the field's value.
    read: Callable[[Any], Any]
    # The field's value -> the response's value (before ``_json_safe``); None: as it is.
    write: Callable[[Any], Any] | None
    # A falsy value reads as absent (fields that default to an empty collection).
    falsy_is_absent: bool
    # Normalization in ``__post_init__``: the status enum, and whether an empty mapping is None.
    enum: type[StrEnum] | None
    empty_is_none: bool


def _codec(spec: Field[Any], hint: Any) -> _Codec:
    key = "".join(part.capitalize() for part in spec.name.split("_"))
    if get_origin(hint) in (Union, types.UnionType):  # ``X | None``: optional, read as X
        hint = next(arg for arg in get_args(hint) if arg is not type(None))
    item = get_args(hint)[0] if get_origin(hint) in (tuple, Sequence) else None
    read: Callable[[Any], Any] = _identity
    write: Callable[[Any], Any] | None = None
    enum = hint if isinstance(hint, type) and issubclass(hint, StrEnum) else None
    within = spec.metadata.get(_WITHIN)
    if within is not None:
        read, write = partial(_read_within, key, within), partial(_write_within, within)
    elif enum is not None:
        read, write = partial(_parse_enum, enum), _enum_value
    elif hint is datetime:
        read = partial(_parse_datetime, key=key)
    elif isinstance(hint, type) and issubclass(hint, ApiValue):
        read, write = hint.from_api, _nested_to_api
    elif isinstance(item, type) and issubclass(item, ApiValue):
        read, write = partial(_read_nested_list, item), _nested_list_to_api
    elif item is not None:
        read = partial(_read_mappings, f"{key} item")
    elif hint in (int, float, bool):
        read = hint
    return _Codec(
        name=spec.name,
        key=key,
        required=spec.default is MISSING and spec.default_factory is MISSING,
        read=read,
        write=write,
        falsy_is_absent=within is not None or spec.default == () or spec.default_factory is dict,
        enum=enum,
        empty_is_none=spec.default is None,
    )


def _identity(value: Any) -> Any:
    return value


def _read_within(key: str, inner: str, value: object) -> Any:
    return _mapping(value, key).get(inner)


def _write_within(inner: str, value: object) -> dict[str, Any] | None:
    return None if value is None else {inner: value}


def _enum_value(value: StrEnum | None) -> str | None:
    return None if value is None else value.value


def _read_nested_list(cls: type[ApiValue], values: Sequence[Any]) -> tuple[Any, ...]:
    return tuple(cls.from_api(value) for value in values)


def _read_mappings(what: str, values: Sequence[Any]) -> tuple[Mapping[str, Any], ...]:
    return tuple(_mapping(value, what) for value in values)


def _nested_to_api(value: ApiValue | None) -> dict[str, Any] | None:
    return None if value is None else value.to_api()


def _nested_list_to_api(values: Sequence[ApiValue]) -> list[dict[str, Any]]:
    return [value.to_api() for value in values]


class ApiValue:
    """``from_api``/``to_api`` and the normalization after ``__init__``, from the fields."""

    __slots__ = ()

    # Built from the dataclass fields on first use: the dataclass does not exist yet while the
    # class body runs. Every field but ``extra`` has a codec; ``_KEYS`` are their API keys.
    _CODECS: ClassVar[tuple[_Codec, ...]]
    _KEYS: ClassVar[frozenset[str]]

    extra: Mapping[str, Any]

    @classmethod
    def _codecs(cls) -> tuple[_Codec, ...]:
        codecs: tuple[_Codec, ...] | None = cls.__dict__.get("_CODECS")
        if codecs is None:
            hints = get_type_hints(cls)
            codecs = tuple(
                _codec(spec, hints[spec.name])
                for spec in fields(cast("type[DataclassInstance]", cls))
                if spec.name != "extra"
            )
            cls._KEYS = frozenset(codec.key for codec in codecs)
            cls._CODECS = codecs
        return codecs

    @classmethod
    def from_api(cls, data: Mapping[str, Any]) -> Self:
        what = cls.__name__
        data = _mapping(data, what)
        values: dict[str, Any] = {}
        for codec in cls._codecs():
            value = data.get(codec.key)
            if value is not None and (value or not codec.falsy_is_absent):
                values[codec.name] = codec.read(value)
            elif codec.required:
                # Absent: a BackendError naming the key. Null: its reader refuses it or keeps it.
                values[codec.name] = codec.read(_require(data, codec.key, what))
            # An absent or null optional key takes the field's default.
        known = cls._KEYS
        values["extra"] = {
            key: value
            for key, value in data.items()
            if key not in known and key not in _DROPPED_KEYS
        }
        return cls(**values)

    def to_api(self) -> dict[str, Any]:
        """SageMaker's dict: modelled keys that have a value, then the ``extra`` keys."""
        out: dict[str, Any] = {}
        for codec in self._codecs():
            value = getattr(self, codec.name)
            if codec.write is not None:
                value = codec.write(value)
            if not _is_empty(value):
                out[codec.key] = _json_safe(value)
        for key, value in self.extra.items():
            out.setdefault(key, _json_safe(value))
        return out

    def __post_init__(self) -> None:
        for codec in self._codecs():
            value = getattr(self, codec.name)
            if codec.enum is not None and value is not None:
                value = _parse_enum(codec.enum, value)
            elif isinstance(value, datetime):
                value = _as_utc(value)
            elif isinstance(value, Mapping):
                # An empty optional mapping is emitted as nothing and read back as None.
                value = None if codec.empty_is_none and not value else _json_safe(value)
            elif isinstance(value, list | tuple):
                value = tuple(_json_safe(v) if isinstance(v, Mapping) else v for v in value)
            object.__setattr__(self, codec.name, value)
        object.__setattr__(self, "extra", _json_safe(self.extra))
