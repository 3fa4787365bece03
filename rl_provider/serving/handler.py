"""The SageMaker inference handler contract, as the sagemaker-inference toolkit implements it.

A handler module (the model's ``SAGEMAKER_PROGRAM`` inside ``SAGEMAKER_SUBMIT_DIRECTORY``) may
define ``model_fn(model_dir)`` and either ``transform_fn(model, body, content_type, accept)`` or
any of ``input_fn(body, content_type)``, ``predict_fn(data, model)`` and
``output_fn(prediction, accept)``; what it leaves out gets a default:

- ``model_fn``: the TorchScript loader (``model.pt``), as SageMaker's PyTorch container does;
- ``input_fn``: JSON (``application/json``, RFC 8259: no NaN or Infinity) to Python data;
- ``predict_fn``: ``model(data)`` (torch modules get a float32 tensor under inference mode);
- ``output_fn``: JSON; numpy arrays and tensors become lists; a NaN or Infinity is a 500.

``output_fn`` and ``transform_fn`` may return the body or ``(body, content_type)``; a bare body is
sent with the accepted type. An error carrying an HTTP ``status_code`` attribute between 400 and
599 (the toolkit's ``BaseInferenceToolkitError`` does, so do the built-in handlers' errors) is
answered with that status; any other error is a 500 ``ModelError`` and the server stays up.
"""

from __future__ import annotations

import functools
import importlib.util
import inspect
import json
import logging
import math
import os
import sys
from collections.abc import Callable
from dataclasses import dataclass
from pathlib import Path
from types import ModuleType
from typing import Any

log = logging.getLogger(__name__)

JSON = "application/json"
_ANY = ("", "*/*", "application/*")
# sagemaker_inference.content_types.UTF8_TYPES: bodies decoded to str before input_fn.
_UTF8_TYPES = (JSON, "text/csv")
DEFAULT_ACCEPT_ENV = "SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT"
# Parameters of each handler function; one more means it also takes the request context.
_ARITY = {"transform_fn": 4, "input_fn": 2, "predict_fn": 2, "output_fn": 2}


class InvocationError(Exception):
    """An invocation answered with an HTTP error ``status_code`` and a message."""

    def __init__(self, status_code: int, message: str) -> None:
        super().__init__(status_code, message)
        self.status_code = status_code
        self.message = message

    def __str__(self) -> str:
        return self.message


def media_type(value: str | None) -> str:
    """``application/json; charset=utf-8`` -> ``application/json``."""
    return (value or "").split(";", 1)[0].strip().lower()


def plain(value: Any) -> Any:
    """numpy arrays and scalars and torch tensors (anything with ``tolist()``), nested in dicts,
    lists and tuples, as JSON-ready Python values; dict keys become strings."""
    if hasattr(value, "tolist") and callable(value.tolist):
        return value.tolist()
    if isinstance(value, dict):
        return {str(key): plain(item) for key, item in value.items()}
    if isinstance(value, list | tuple):
        return [plain(item) for item in value]
    return value


def _without_context(function: Callable[..., Any], arity: int) -> Callable[..., Any]:
    """``function`` called with ``arity`` arguments; one that needs sagemaker-inference's extra
    ``context`` argument gets None (there is no model-server context here)."""
    try:
        parameters = list(inspect.signature(function).parameters.values())
    except (TypeError, ValueError):
        return function
    if any(p.kind is p.VAR_POSITIONAL for p in parameters):
        return function
    positional = [p for p in parameters if p.kind in (p.POSITIONAL_ONLY, p.POSITIONAL_OR_KEYWORD)]
    required = sum(p.default is p.empty for p in positional)
    # Without the context whenever the function accepts that: model_fn(model_dir, file_name=None)
    # keeps its default (sagemaker-inference would pass the context as file_name).
    if required <= arity <= len(positional):
        return function
    if required <= arity + 1 <= len(positional):
        return functools.partial(_call_with_context, function)
    raise TypeError(
        f"{getattr(function, '__name__', function)} takes {required} arguments; the SageMaker "
        f"contract passes {arity} (or {arity + 1} with the context)."
    )


def _call_with_context(function: Callable[..., Any], *args: Any) -> Any:
    return function(*args, None)


def _refuse_constant(name: str) -> Any:
    raise ValueError(f"{name} is not a JSON value (RFC 8259 has no NaN or Infinity)")


def _finite_float(text: str) -> float:
    value = float(text)
    if math.isinf(value):
        raise ValueError(f"{text} is out of the range of a float (about 1.8e308)")
    return value


def loads_json(body: bytes | str) -> Any:
    """RFC 8259 JSON: NaN, Infinity and numbers beyond a float's range are refused, and so is
    nesting deeper than the interpreter's recursion limit (about 1,000 levels), each with a 400."""
    try:
        return json.loads(body, parse_constant=_refuse_constant, parse_float=_finite_float)
    except (ValueError, UnicodeDecodeError) as err:
        raise InvocationError(400, f"The body is not valid JSON: {err}.") from None
    except RecursionError:
        raise InvocationError(
            400, "The body is nested too deeply (about 1,000 levels of JSON at most)."
        ) from None


def dumps_json(value: Any) -> bytes:
    """``value`` as RFC 8259 JSON; a NaN or Infinity in it is the model's error (500)."""
    try:
        return json.dumps(plain(value), allow_nan=False).encode("utf-8")
    except ValueError as err:
        raise InvocationError(
            500,
            f"ModelError: the prediction holds NaN or Infinity, which JSON cannot carry ({err}).",
        ) from None


def default_input_fn(body: bytes | str, content_type: str) -> Any:
    if media_type(content_type) not in ("", JSON):
        raise InvocationError(
            415, f"Content type {content_type!r} is not supported by this model: send {JSON}."
        )
    return loads_json(body)


def default_predict_fn(data: Any, model: Any) -> Any:
    torch = sys.modules.get("torch")
    if torch is not None and isinstance(model, torch.nn.Module | torch.jit.ScriptModule):
        with torch.inference_mode():
            return model(torch.as_tensor(data, dtype=torch.float32))
    return model(data)


def default_output_fn(prediction: Any, accept: str) -> tuple[bytes, str]:
    if media_type(accept) not in (*_ANY, JSON):
        raise InvocationError(406, f"Accept {accept!r} cannot be produced: accept {JSON}.")
    return dumps_json(prediction), JSON


def load_module(path: Path) -> ModuleType:
    """Import a handler file by path, its directory first on ``sys.path`` (SageMaker does so)."""
    if not path.is_file():
        raise FileNotFoundError(
            f"The model's SAGEMAKER_PROGRAM {path.name!r} is not in its code ({path.parent}): "
            "check the entry_point given to create_model()."
        )
    directory = str(path.parent)
    if directory not in sys.path:
        sys.path.insert(0, directory)
    spec = importlib.util.spec_from_file_location(path.stem, path)
    if spec is None or spec.loader is None:
        raise ImportError(f"{path} cannot be imported as a Python module.")
    module = importlib.util.module_from_spec(spec)
    # Registered before running so dataclasses and pickle inside the handler find it.
    sys.modules[path.stem] = module
    spec.loader.exec_module(module)
    return module


@dataclass(frozen=True, slots=True, kw_only=True)
class InferenceHandler:
    """A loaded model and the functions that answer ``/invocations`` with it."""

    model: Any
    source: str
    transform_fn: Callable[[Any, bytes | str, str, str], Any] | None = None
    input_fn: Callable[[bytes | str, str], Any] = default_input_fn
    predict_fn: Callable[[Any, Any], Any] = default_predict_fn
    output_fn: Callable[[Any, str], Any] = default_output_fn
    #: The Accept used when a request sends none or ``*/*`` (SageMaker's environment variable).
    default_accept: str = JSON

    @classmethod
    def load(cls, model_dir: Path, code_dir: Path | None, program: str | None) -> InferenceHandler:
        """Import the program (the TorchScript handler without one) and call its ``model_fn``."""
        if program:
            if code_dir is None:
                raise FileNotFoundError(
                    f"The model names SAGEMAKER_PROGRAM={program!r} but no "
                    "SAGEMAKER_SUBMIT_DIRECTORY holding it."
                )
            module = load_module(code_dir / program)
        else:
            from rl_provider.serving import torchscript as module
        return cls.from_module(module, model_dir)

    @classmethod
    def from_module(cls, module: ModuleType, model_dir: Path) -> InferenceHandler:
        model_fn: Callable[..., Any] | None = getattr(module, "model_fn", None)
        if model_fn is None:
            from rl_provider.serving import torchscript

            model_fn = torchscript.model_fn
        model = _without_context(model_fn, 1)(str(model_dir))
        functions = {
            name: _without_context(getattr(module, name), arity)
            for name, arity in _ARITY.items()
            if callable(getattr(module, name, None))
        }
        if "transform_fn" in functions and len(functions) > 1:
            # sagemaker-inference refuses this combination: which one runs would be a guess.
            others = ", ".join(sorted(set(functions) - {"transform_fn"}))
            raise ValueError(
                f"{module.__name__} defines transform_fn and {others}: define transform_fn alone, "
                "or input_fn/predict_fn/output_fn."
            )
        return cls(
            model=model,
            source=getattr(module, "__file__", module.__name__),
            default_accept=os.environ.get(DEFAULT_ACCEPT_ENV) or JSON,
            **functions,
        )

    def invoke(self, body: bytes, content_type: str, accept: str) -> tuple[bytes, str]:
        """The response body and its content type; errors carry a ``status_code``."""
        accept = accept if media_type(accept) not in _ANY else self.default_accept
        content_type = content_type or JSON
        data: bytes | str = body
        if media_type(content_type) in _UTF8_TYPES:
            # sagemaker-inference hands JSON and CSV bodies to the handler as str.
            try:
                data = body.decode("utf-8")
            except UnicodeDecodeError as err:
                raise InvocationError(
                    400, f"The {content_type} body is not UTF-8: {err}."
                ) from None
        try:
            if self.transform_fn is not None:
                result = self.transform_fn(self.model, data, content_type, accept)
            else:
                decoded = self.input_fn(data, content_type)
                prediction = self.predict_fn(decoded, self.model)
                result = self.output_fn(prediction, accept)
        except Exception as err:
            status = getattr(err, "status_code", None)
            if isinstance(status, int) and 400 <= status <= 599:
                message = getattr(err, "message", None)
                raise InvocationError(status, str(message or err)) from err
            log.exception("The model's handler raised")
            raise InvocationError(500, f"ModelError: {type(err).__name__}: {err}") from err
        if isinstance(result, tuple) and len(result) == 2:
            payload, produced = result
        else:
            payload, produced = result, accept
        if isinstance(payload, str):
            payload = payload.encode("utf-8")
        if not isinstance(payload, bytes | bytearray | memoryview):
            raise InvocationError(
                500,
                f"ModelError: the handler returned {type(payload).__name__}, not bytes or str "
                "(output_fn/transform_fn must serialize the prediction).",
            )
        return bytes(payload), str(produced)
