"""(event_type, schema_version) → payload model, upcasters, and the one validation entry point.

Every payload class of the contract is registered here when :mod:`shared.events` is imported.
:func:`parse_envelope` is the only way bytes from the bus become an :class:`Envelope`; its error,
:class:`InvalidEvent`, names the event type and schema version it could not accept.
"""

from __future__ import annotations

import json
import uuid
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

from pydantic import BaseModel, ConfigDict, Field, ValidationError, create_model

from shared.events.envelope import Envelope, EventPayload, customer_mismatch
from shared.events.personal_data import PersonalDataFound

Upcaster = Callable[[dict[str, Any]], dict[str, Any]]
P = TypeVar("P", bound=type[EventPayload])


class InvalidEvent(ValueError):
    """Bytes that are not a valid contract event. ``reason`` is a short machine-readable code."""

    def __init__(
        self,
        reason: str,
        detail: str,
        *,
        event_type: str | None = None,
        schema_version: int | None = None,
        event_id: str | None = None,
        personal_data: bool = False,
    ) -> None:
        self.reason = reason
        self.detail = detail
        #: whether (one of) the problems is text that looks like personal data: whoever keeps the refused
        #: document (a dead letter) must withhold that text
        self.personal_data = personal_data
        self.event_type = event_type
        self.schema_version = schema_version
        #: the document's event_id when it has one (for logs: which event was refused)
        self.event_id = event_id
        named = f"{event_type} v{schema_version}" if event_type and schema_version else event_type or "event"
        super().__init__(f"{named}: {reason}: {detail}")


class _Header(BaseModel):
    """The envelope without its payload: enough to find the payload model."""

    model_config = ConfigDict(extra="ignore")

    event_type: str = Field(min_length=1)
    schema_version: int = Field(ge=1, strict=True)
    data: dict[str, Any]


class EventRegistry:
    def __init__(self) -> None:
        self._models: dict[tuple[str, int], type[EventPayload]] = {}
        self._upcasters: dict[tuple[str, int], Upcaster] = {}
        #: (event_type, schema_version) → an Envelope subclass whose ``data`` is that payload model, so
        #: that envelope and payload are validated in one pass (see :meth:`_parse_fast`)
        self._typed: dict[tuple[str, int], type[Envelope]] = {}

    def register(self, model: P) -> P:
        key = (model.event_type, model.schema_version)
        existing = self._models.get(key)
        if existing is not None and existing is not model:
            raise ValueError(f"{key} is already registered to {existing.__qualname__}")
        self._models[key] = model
        return model

    def register_upcaster(self, event_type: str, from_version: int, upcaster: Upcaster) -> None:
        """Register a pure function turning ``data`` of ``from_version`` into ``from_version + 1``."""
        self._upcasters[(event_type, from_version)] = upcaster

    def model_for(self, event_type: str, schema_version: int) -> type[EventPayload]:
        try:
            return self._models[(event_type, schema_version)]
        except KeyError:
            known = sorted(v for (t, v) in self._models if t == event_type)
            if not known:
                raise InvalidEvent(
                    "unknown_event_type",
                    f"no event type {event_type!r} in the contract",
                    event_type=event_type,
                    schema_version=schema_version,
                ) from None
            raise InvalidEvent(
                "unknown_schema_version",
                f"known versions of {event_type!r}: {known}",
                event_type=event_type,
                schema_version=schema_version,
            ) from None

    def models(self) -> Iterable[type[EventPayload]]:
        return sorted(self._models.values(), key=lambda m: (m.event_type, m.schema_version))

    def latest_version(self, event_type: str) -> int:
        return max(v for (t, v) in self._models if t == event_type)

    def upcast(self, event_type: str, schema_version: int, data: dict[str, Any]) -> tuple[int, dict[str, Any]]:
        """Apply registered upcasters until no further one exists; returns (version, data)."""
        while (event_type, schema_version) in self._upcasters:
            data = self._upcasters[(event_type, schema_version)](data)
            schema_version += 1
        return schema_version, data

    def parse(self, raw: bytes | str | dict[str, Any], *, upcast: bool = False) -> Envelope:
        """Validate ``raw`` into an Envelope with a typed payload, or raise :class:`InvalidEvent`."""
        if isinstance(raw, dict):
            document: Any = raw
        else:
            if isinstance(raw, bytes | bytearray):
                # json.loads would guess UTF-16 or UTF-32 from the bytes; the contract is UTF-8 JSON.
                try:
                    raw = raw.decode("utf-8")
                except UnicodeDecodeError as exc:
                    detail = f"not UTF-8: {exc.reason} (byte {exc.start}); event values are UTF-8 JSON"
                    raise InvalidEvent("malformed_json", detail) from exc
            try:
                document = json.loads(raw)
            except json.JSONDecodeError as exc:
                raise InvalidEvent("malformed_json", str(exc)) from exc
        if type(document) is dict:
            fast = self._parse_fast(document, upcast)
            if fast is not None:
                return fast
        return self._parse_document(document, upcast)

    def _parse_fast(self, document: dict[str, Any], upcast: bool) -> Envelope | None:
        """The common case in one validation pass; None whenever the full path must decide.

        Only a document whose ``event_type`` / ``schema_version`` are exactly a registered (str, int) key
        and whose ``data`` is a JSON object qualifies, and it is validated by the same envelope fields and
        the same payload model as :meth:`_parse_document` uses, so the result is the same ``Envelope``.
        Any validation error falls back to the full path, which reports which part failed and why.
        """
        key = (document.get("event_type"), document.get("schema_version"))
        if type(key[0]) is not str or type(key[1]) is not int or type(document.get("data")) is not dict:
            return None
        if upcast and key in self._upcasters:
            return None
        typed = self._typed.get(key)  # type: ignore[arg-type]
        if typed is None:
            model = self._models.get(key)  # type: ignore[arg-type]
            if model is None:
                return None
            typed = self._typed[key] = create_model(  # type: ignore[index]
                f"_{model.__name__}V{model.schema_version}Envelope", __base__=Envelope, data=(model, ...)
            )
        try:
            parsed = typed.model_validate(document)
        except ValidationError:
            return None
        # (Not getattr: on a payload without the field, pydantic's __getattr__ costs a microsecond.)
        if parsed.data.__dict__.get("customer_id", parsed.customer_id) != parsed.customer_id:
            return None
        # An Envelope with the validated values, as ``Envelope.model_construct`` builds it (no re-validation).
        envelope = Envelope.__new__(Envelope)
        object.__setattr__(envelope, "__dict__", parsed.__dict__)
        object.__setattr__(envelope, "__pydantic_fields_set__", parsed.__pydantic_fields_set__)
        object.__setattr__(envelope, "__pydantic_extra__", None)
        object.__setattr__(envelope, "__pydantic_private__", None)
        return envelope

    def _parse_document(self, document: Any, upcast: bool) -> Envelope:
        if not isinstance(document, dict):
            raise InvalidEvent("malformed_envelope", f"expected a JSON object, got {type(document).__name__}")
        event_id = _uuid_or_none(document.get("event_id"))
        try:
            header = _Header.model_validate(document)
        except ValidationError as exc:
            raise InvalidEvent(
                "malformed_envelope",
                _errors(exc),
                event_type=_str_or_none(document.get("event_type")),
                schema_version=_int_or_none(document.get("schema_version")),
                event_id=event_id,
            ) from exc
        event_type, version, data = header.event_type, header.schema_version, header.data
        try:
            model = self.model_for(event_type, version)
            if upcast:
                version, data = self.upcast(event_type, version, data)
                model = self.model_for(event_type, version)
        except InvalidEvent as exc:
            exc.event_id = event_id
            raise
        # Payload and envelope are validated separately so that the reason says which one failed.
        try:
            payload = model.model_validate(data)
        except ValidationError as exc:
            raise InvalidEvent(
                "invalid_payload",
                _errors(exc),
                event_type=event_type,
                schema_version=version,
                event_id=event_id,
                personal_data=_holds_personal_data(exc),
            ) from exc
        try:
            envelope = Envelope.model_validate({**document, "schema_version": version, "data": payload})
        except ValidationError as exc:
            raise InvalidEvent(
                "malformed_envelope",
                _errors(exc),
                event_type=event_type,
                schema_version=version,
                event_id=event_id,
                personal_data=_holds_personal_data(exc),
            ) from exc
        mismatch = customer_mismatch(envelope.customer_id, payload)
        if mismatch is not None:
            raise InvalidEvent(
                "malformed_envelope", mismatch, event_type=event_type, schema_version=version, event_id=event_id
            )
        return envelope


def _errors(exc: ValidationError) -> str:
    return "; ".join(f"{'.'.join(str(p) for p in e['loc']) or '<root>'}: {e['msg']}" for e in exc.errors())


def _holds_personal_data(exc: ValidationError) -> bool:
    return any(isinstance(e.get("ctx", {}).get("error"), PersonalDataFound) for e in exc.errors())


def _str_or_none(value: Any) -> str | None:
    return value if isinstance(value, str) else None


def _uuid_or_none(value: Any) -> str | None:
    """``value`` as a UUID string, or None: only a well-formed event_id is repeated (e.g. in logs)."""
    try:
        return str(uuid.UUID(value)) if isinstance(value, str) else None
    except ValueError:
        return None


def _int_or_none(value: Any) -> int | None:
    return value if type(value) is int else None


REGISTRY = EventRegistry()


def event(model: P) -> P:
    """Class decorator: register a payload model in the contract registry."""
    return REGISTRY.register(model)


def parse_envelope(raw: bytes | str | dict[str, Any], *, upcast: bool = False) -> Envelope:
    """The one validation entry point for events arriving from the bus."""
    return REGISTRY.parse(raw, upcast=upcast)
