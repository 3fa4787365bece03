"""The SageMaker handler contract: user modules, defaults, transform_fn, error statuses."""

from __future__ import annotations

import io
import json
import textwrap

import pytest

from rl_provider.serving.handler import InferenceHandler, InvocationError, load_module


def handler_from(tmp_path, source: str, name: str = "inference.py", model_dir=None):
    code = tmp_path / "code"
    code.mkdir(exist_ok=True)
    (code / name).write_text(textwrap.dedent(source))
    model = model_dir or tmp_path / "model"
    model.mkdir(exist_ok=True)
    return InferenceHandler.load(model, code, name)


def test_user_functions_run_in_order_with_helpers_importable(tmp_path):
    (tmp_path / "code").mkdir()
    (tmp_path / "code" / "helpers.py").write_text("SCALE = 10\n")
    (tmp_path / "model").mkdir()
    (tmp_path / "model" / "bias.txt").write_text("3")
    handler = handler_from(
        tmp_path,
        """
        from pathlib import Path
        from helpers import SCALE  # the code dir is on sys.path, as in SageMaker

        def model_fn(model_dir):
            return int((Path(model_dir) / "bias.txt").read_text())

        def input_fn(body, content_type):
            assert isinstance(body, str)  # sagemaker-inference decodes CSV and JSON bodies
            return [int(x) for x in body.split(",")], content_type

        def predict_fn(data, model):
            values, content_type = data
            return [v * SCALE + model for v in values], content_type

        def output_fn(prediction, accept):
            values, content_type = prediction
            return f"{values}|{content_type}|{accept}", "text/plain"
        """,
    )
    assert handler.invoke(b"1,2", "text/csv", "text/plain") == (
        b"[13, 23]|text/csv|text/plain",
        "text/plain",
    )


def test_functions_taking_the_context_get_none(tmp_path, monkeypatch):
    monkeypatch.setenv("SAGEMAKER_DEFAULT_INVOCATIONS_ACCEPT", "text/plain")
    handler = handler_from(
        tmp_path,
        """
        def model_fn(model_dir, context):
            return context

        def transform_fn(model, body, content_type, accept, context):
            return f"{model}|{context}|{type(body).__name__}|{accept}"
        """,
    )
    assert handler.invoke(b"\x00\x01", "application/octet-stream", "*/*") == (
        b"None|None|bytes|text/plain",
        "text/plain",
    )


def test_optional_parameters_do_not_count_and_wrong_arity_is_refused(tmp_path):
    handler = handler_from(
        tmp_path,
        """
        def model_fn(model_dir, file_name=None):
            return file_name

        def predict_fn(data, model, *, scale=2):
            return {"model": model, "value": data * scale}
        """,
    )
    assert handler.invoke(b"21", "application/json", "") == (
        b'{"model": null, "value": 42}',
        "application/json",
    )
    with pytest.raises(TypeError, match="predict_fn takes 4 arguments"):
        handler_from(
            tmp_path,
            """
            def model_fn(model_dir):
                return None

            def predict_fn(data, model, context, extra):
                return data
            """,
            name="wrong.py",
        )


def test_defaults_are_json(tmp_path):
    handler = handler_from(
        tmp_path,
        """
        def model_fn(model_dir):
            return lambda data: {"sum": sum(data)}
        """,
    )
    assert handler.invoke(b"[1, 2, 3]", "application/json", "*/*") == (
        b'{"sum": 6}',
        "application/json",
    )
    assert handler.invoke(b"[1]", "", "")[0] == b'{"sum": 1}'  # no headers: JSON both ways


@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status"),
    [
        (b"[1, 2", "application/json", "application/json", 400),
        (b"[\xff]", "application/json", "application/json", 400),
        (b"[1]", "text/csv", "application/json", 415),
        (b"[1]", "application/json", "text/csv", 406),
    ],
)
def test_default_codec_errors(tmp_path, body, content_type, accept, status):
    handler = handler_from(tmp_path, "def model_fn(model_dir):\n    return len\n")
    with pytest.raises(InvocationError) as caught:
        handler.invoke(body, content_type, accept)
    assert caught.value.status_code == status


def test_transform_fn_body_alone_takes_the_accept_type(tmp_path):
    handler = handler_from(
        tmp_path,
        """
        def model_fn(model_dir):
            return "m"

        def transform_fn(model, body, content_type, accept):
            return model + body.decode() + content_type
        """,
    )
    assert handler.invoke(b"-x-", "text/plain", "text/plain") == (b"m-x-text/plain", "text/plain")


def test_transform_fn_with_input_fn_is_refused(tmp_path):
    with pytest.raises(ValueError, match="defines transform_fn and input_fn"):
        handler_from(
            tmp_path,
            """
            def model_fn(model_dir):
                return None
            def transform_fn(model, body, content_type, accept):
                return body
            def input_fn(body, content_type):
                return body
            """,
        )


@pytest.mark.parametrize(
    ("predict", "status", "message"),
    [
        # sagemaker-inference's BaseInferenceToolkitError carries status_code: so do ours.
        ("raise Rejected('bad action mask')", 422, "bad action mask"),
        ("raise KeyError('boom')", 500, "ModelError: KeyError: 'boom'"),
        ("return object()", 500, "ModelError: TypeError"),  # JSON cannot encode it
    ],
)
def test_handler_errors_become_statuses(tmp_path, predict, status, message):
    handler = handler_from(
        tmp_path,
        f"""
        class Rejected(Exception):
            status_code = 422

        def model_fn(model_dir):
            return None

        def predict_fn(data, model):
            {predict}
        """,
    )
    with pytest.raises(InvocationError, match=message) as caught:
        handler.invoke(b"[]", "application/json", "application/json")
    assert caught.value.status_code == status


def test_output_that_is_not_bytes_is_a_model_error(tmp_path):
    handler = handler_from(
        tmp_path,
        """
        def model_fn(model_dir):
            return None
        def predict_fn(data, model):
            return data
        def output_fn(prediction, accept):
            return {"not": "serialized"}
        """,
    )
    with pytest.raises(InvocationError, match="not bytes or str") as caught:
        handler.invoke(b"[]", "application/json", "application/json")
    assert caught.value.status_code == 500


def test_missing_program_is_a_clear_error(tmp_path):
    (tmp_path / "code").mkdir()
    with pytest.raises(FileNotFoundError, match=r"'serve\.py' is not in its code"):
        InferenceHandler.load(tmp_path, tmp_path / "code", "serve.py")
    with pytest.raises(FileNotFoundError, match="no SAGEMAKER_SUBMIT_DIRECTORY"):
        InferenceHandler.load(tmp_path, None, "serve.py")
    with pytest.raises(FileNotFoundError):
        load_module(tmp_path / "code" / "serve.py")


@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")
def test_without_a_program_a_torchscript_model_is_served(tmp_path):
    import torch

    net = torch.nn.Linear(3, 4)
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(net), buffer)
    (tmp_path / "model.pt").write_bytes(buffer.getvalue())
    handler = InferenceHandler.load(tmp_path, None, None)
    rows = [[0.5, -1.0, 2.0], [1.0, 0.0, -3.0]]
    expected = net(torch.tensor(rows)).argmax(-1).tolist()
    body, content_type = handler.invoke(json.dumps(rows).encode(), "application/json", "")
    assert json.loads(body) == {"actions": expected}
    assert content_type == "application/json"
    with pytest.raises(InvocationError, match="rejected observations of shape") as caught:
        handler.invoke(b"[1.0, 2.0]", "application/json", "")
    assert caught.value.status_code == 400


def test_torchscript_without_a_file_says_how_to_save_one(tmp_path):
    with pytest.raises(FileNotFoundError, match=r"torch\.jit\.save"):
        InferenceHandler.load(tmp_path, None, None)
