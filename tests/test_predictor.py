"""RLPredictor: JSON in and out, against SageMaker's own InvokeEndpoint shape.

The backend here is a real boto3 ``sagemaker-runtime`` client with ``botocore.stub.Stubber``
(fake AWS only): the request RLPredictor sends must validate against the service model.
The local backend's path is covered end to end in ``tests/backends/local/test_serving.py``.
"""

from __future__ import annotations

import io
import json

import numpy as np
import pytest

from rl_provider import RLPredictor
from rl_provider.exceptions import RLConfigError
from rl_provider.predictor import JSONDeserializer, JSONSerializer


@pytest.fixture
def runtime():
    import boto3
    from botocore.stub import Stubber

    client = boto3.client(
        "sagemaker-runtime",
        region_name="us-west-2",
        aws_access_key_id="testing",
        aws_secret_access_key="testing",
    )
    with Stubber(client) as stubber:
        yield client, stubber


def answer(payload: object) -> dict:
    from botocore.response import StreamingBody

    raw = json.dumps(payload).encode()
    return {"Body": StreamingBody(io.BytesIO(raw), len(raw)), "ContentType": "application/json"}


@pytest.mark.parametrize(
    ("data", "sent"),
    [
        ([0.0, 0.1, 0.0, -0.1], [0.0, 0.1, 0.0, -0.1]),
        (np.array([[0.0, 0.5], [1.5, -2.0]], dtype=np.float32), [[0.0, 0.5], [1.5, -2.0]]),
        ({"observations": np.zeros((1, 2))}, {"observations": [[0.0, 0.0]]}),
        ((np.float64(1.5), np.int64(2)), [1.5, 2]),
        ('{"already": "json"}', {"already": "json"}),
    ],
)
def test_predict_sends_invoke_endpoint_and_decodes_json(runtime, data, sent):
    client, stubber = runtime
    stubber.add_response(
        "invoke_endpoint",
        answer({"actions": [1, 0]}),
        {
            "EndpointName": "cartpole",
            "Body": json.dumps(sent).encode(),
            "ContentType": "application/json",
            "Accept": "application/json",
        },
    )
    assert RLPredictor("cartpole", client).predict(data) == {"actions": [1, 0]}
    stubber.assert_no_pending_responses()


def test_initial_args_reach_the_request(runtime):
    client, stubber = runtime
    stubber.add_response(
        "invoke_endpoint",
        answer({"action": 1}),
        {
            "EndpointName": "cartpole",
            "Body": b"[1]",
            "ContentType": "application/json",
            "Accept": "application/json",
            "CustomAttributes": "trace=1",
        },
    )
    predictor = RLPredictor("cartpole", client)
    assert predictor.predict([1], initial_args={"CustomAttributes": "trace=1"}) == {"action": 1}


def test_model_errors_surface_from_the_runtime(runtime):
    client, stubber = runtime
    stubber.add_client_error(
        "invoke_endpoint",
        service_error_code="ModelError",
        service_message="Received client error (400) from primary",
        http_status_code=424,
    )
    with pytest.raises(client.exceptions.ModelError, match="client error"):
        RLPredictor("cartpole", client).predict([1])


def test_a_runtime_without_delete_cannot_delete(runtime):
    client, _ = runtime
    with pytest.raises(RLConfigError, match="only invokes endpoints"):
        RLPredictor("cartpole", client).delete_endpoint()


def test_serializer_and_deserializer():
    assert JSONSerializer().serialize(b"raw") == b"raw"
    assert JSONSerializer().serialize({"a": np.arange(2)}) == b'{"a": [0, 1]}'
    assert JSONDeserializer().deserialize(b"") is None
    assert JSONDeserializer().deserialize(b'{"action": 0}') == {"action": 0}


def test_a_backend_that_cannot_invoke_is_refused_at_construction():
    # Checked once, when the predictor is made (InvokeBackend), not at the first predict().
    with pytest.raises(RLConfigError, match="no invoke_endpoint"):
        RLPredictor("cartpole", object())  # type: ignore[arg-type]
