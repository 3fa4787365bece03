"""Local models and endpoints: real model servers on 127.0.0.1, real RLlib training and policies.

One tiny CartPole training run (``dags/cartpole/train.py``, one iteration) serves the whole
module; the other endpoints use small handlers written here, which start in about a second.
"""

from __future__ import annotations

import contextlib
import http.client
import io
import json
import tarfile
import threading
import time
from pathlib import Path

import psutil
import pytest

from rl_provider import RLEstimator, RLPredictor
from rl_provider.backends.local import LocalBackend
from rl_provider.backends.local.endpoint import ENDPOINT_CONFIG, MODEL
from rl_provider.core.enums import EndpointStatus
from rl_provider.core.model import wait_for_endpoint
from rl_provider.exceptions import (
    BackendError,
    EndpointNotFoundError,
    ModelInvocationError,
    ModelNotFoundError,
    ResourceExistsError,
    RLConfigError,
)
from rl_provider.serving import rllib

CARTPOLE = Path(__file__).resolve().parents[3] / "dags" / "cartpole"
OBSERVATION = [0.0, 0.1, 0.0, -0.1]
BATCH = [[0.0, 0.1, 0.0, -0.1], [0.02, -0.3, 0.05, 0.4], [-0.04, 0.2, -0.1, -0.5]]

COLOR_HANDLER = """
import json
from pathlib import Path

def model_fn(model_dir):
    color = (Path(model_dir) / "color.txt").read_text()
    if color == "broken":
        raise RuntimeError("checkpoint is corrupt: 42")
    return color

def predict_fn(data, model):
    return {"color": model, "echo": data}
"""

USER_INFERENCE = """
import json
from pathlib import Path

import torch
from ray.rllib.core.rl_module.rl_module import RLModule


def model_fn(model_dir):
    return RLModule.from_checkpoint(
        Path(model_dir) / "learner_group" / "learner" / "rl_module" / "default_policy"
    )


def input_fn(body, content_type):
    return torch.tensor(json.loads(body)["obs"], dtype=torch.float32)


def predict_fn(obs, module):
    with torch.inference_mode():
        logits = module.forward_inference({"obs": obs.reshape(-1, 4)})["action_dist_inputs"]
    return logits.argmax(-1).tolist()


def output_fn(actions, accept):
    return json.dumps({"greedy": actions, "handler": "user"}), "application/json"
"""


def stopped(pid: int) -> bool:
    """The process is gone. A zombie counts: it holds no memory or socket, and this sandbox's
    init reaps orphans late."""
    try:
        return psutil.Process(pid).status() == psutil.STATUS_ZOMBIE
    except psutil.NoSuchProcess:
        return True


def wait_until(condition, timeout: float = 60.0, what: str = "condition") -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out waiting for {what}")
        time.sleep(0.05)


def server_processes(home: Path, endpoint: str) -> list[psutil.Process]:
    """Live model-server processes of ``endpoint`` under ``home``, found by command line."""
    found = []
    for process in psutil.process_iter(["cmdline", "status"]):
        cmdline = process.info["cmdline"] or []
        if (
            "rl_provider.backends.local.endpoint" in cmdline
            and str(home) in cmdline
            and endpoint in cmdline
            and process.info["status"] != psutil.STATUS_ZOMBIE
        ):
            found.append(process)
    return found


def tarball(path: Path, files: dict[str, str | bytes]) -> str:
    with tarfile.open(path, "w:gz") as tar:
        for name, content in files.items():
            data = content.encode() if isinstance(content, str) else content
            info = tarfile.TarInfo(name)
            info.size = len(data)
            tar.addfile(info, io.BytesIO(data))
    return path.as_uri()


@pytest.fixture(scope="module")
def local(tmp_path_factory):
    backend = LocalBackend(tmp_path_factory.mktemp("serving") / "home")
    yield backend
    # No server outlives the module, whatever a test left behind.
    for summary in backend.list_endpoints()["Endpoints"]:
        backend.delete_endpoint(summary["EndpointName"])


@pytest.fixture(scope="module")
def trained(local):
    """One real PPO iteration on CartPole through RLEstimator.fit() on the local backend."""
    estimator = RLEstimator(
        entry_point="train.py",
        source_dir=str(CARTPOLE),
        toolkit="ray",
        toolkit_version="2.60.0",
        framework="pytorch",
        instance_type="local",
        backend=local,
        hyperparameters={
            "iterations": 1,
            "train_batch_size": 128,
            "minibatch_size": 64,
            "num_epochs": 1,
            "num_envs_per_env_runner": 1,
            "fcnet_hiddens": [32, 32],
        },
    )
    estimator.fit(job_name="cartpole-serving", logs=False)
    return estimator


@pytest.fixture(scope="module")
def model_dir(trained, tmp_path_factory):
    """The trained artifact unpacked, for in-process comparisons."""
    from rl_provider.backends.local.transfer import file_path

    target = tmp_path_factory.mktemp("model")
    with tarfile.open(file_path(trained.model_data)) as tar:
        tar.extractall(target, filter="data")
    return target


@pytest.fixture(scope="module")
def color_models(local, tmp_path_factory):
    """Models whose handler answers with a color: blue, green, and one whose model_fn raises."""
    root = tmp_path_factory.mktemp("colors")
    code = tarball(root / "code.tar.gz", {"color.py": COLOR_HANDLER})
    for color in ("blue", "green", "broken"):
        local.create_model(
            ModelName=f"color-{color}",
            PrimaryContainer={
                "Image": "rl-provider/handler-test:1",
                "ModelDataUrl": tarball(root / f"{color}.tar.gz", {"color.txt": color}),
                "Environment": {
                    "SAGEMAKER_PROGRAM": "color.py",
                    "SAGEMAKER_SUBMIT_DIRECTORY": code,
                },
            },
        )
        local.create_endpoint_config(
            EndpointConfigName=f"config-{color}",
            ProductionVariants=[
                {"ModelName": f"color-{color}", "InitialInstanceCount": 1, "InstanceType": "local"}
            ],
        )
    return local


@pytest.mark.slow
def test_trained_policy_create_model_deploy_predict_delete(local, trained, model_dir):
    model = trained.create_model(name="cartpole-builtin")
    # The built-in RLlib handler is the model's code (the SDK could not deploy Ray models).
    assert model.prepare_container_def("local")["Environment"]["SAGEMAKER_PROGRAM"] == "rllib.py"
    predictor = model.deploy(1, "local", endpoint_name="cartpole-e2e")
    assert isinstance(predictor, RLPredictor)

    single = predictor.predict(OBSERVATION)
    assert set(single) == {"action"}
    assert single["action"] in (0, 1)
    assert len(predictor.predict([OBSERVATION])["actions"]) == 1
    served = predictor.predict(BATCH)["actions"]
    assert len(served) == len(BATCH)
    assert set(served) <= {0, 1}
    # The server answers what the trained policy answers in-process.
    policy = rllib.model_fn(str(model_dir))
    assert served == rllib.predict_fn(BATCH, policy)["actions"]
    assert single["action"] == rllib.predict_fn(OBSERVATION, policy)["action"]

    description = local.describe_endpoint("cartpole-e2e")
    assert description.endpoint_status is EndpointStatus.IN_SERVICE
    assert description.endpoint_config_name.startswith("cartpole-e2e-")
    pid = description.extra["ServerPid"]
    listening = [
        c for c in psutil.Process(pid).net_connections(kind="inet") if c.status == "LISTEN"
    ]
    assert listening
    assert {c.laddr.ip for c in listening} == {"127.0.0.1"}
    assert description.extra["Url"] == f"http://127.0.0.1:{listening[0].laddr.port}"

    predictor.delete_endpoint()
    assert stopped(pid)
    with pytest.raises(EndpointNotFoundError):
        local.describe_endpoint("cartpole-e2e")
    with pytest.raises(EndpointNotFoundError):  # the SDK's Predictor deletes the config too
        local.describe_endpoint_config(description.endpoint_config_name)
    with pytest.raises(EndpointNotFoundError):
        predictor.predict(OBSERVATION)


@pytest.mark.slow
def test_user_inference_py_replaces_the_builtin_handler(local, trained, model_dir, tmp_path):
    (tmp_path / "inference.py").write_text(USER_INFERENCE)
    predictor = trained.deploy(
        1,
        "local",
        endpoint_name="cartpole-user",
        entry_point="inference.py",
        source_dir=str(tmp_path),
        name="cartpole-user-model",
    )
    try:
        answer = predictor.predict({"obs": BATCH})
        assert answer["handler"] == "user"
        policy = rllib.model_fn(str(model_dir))
        assert answer["greedy"] == rllib.predict_fn(BATCH, policy)["actions"]
    finally:
        predictor.delete_endpoint()


@pytest.fixture(scope="module")
def cartpole_endpoint(local, trained):
    """The built-in RLlib handler behind an endpoint made with the backend's API calls."""
    model = trained.create_model(name="cartpole-requests")
    model.create("local")
    local.create_endpoint_config(
        EndpointConfigName="cartpole-requests",
        ProductionVariants=[
            {"ModelName": "cartpole-requests", "InitialInstanceCount": 1, "InstanceType": "local"}
        ],
    )
    local.create_endpoint(EndpointName="cartpole-requests", EndpointConfigName="cartpole-requests")
    wait_for_endpoint(local, "cartpole-requests", timeout=300)
    yield "cartpole-requests"
    local.delete_endpoint("cartpole-requests")


@pytest.mark.slow
@pytest.mark.parametrize(
    ("body", "content_type", "accept", "status", "message"),
    [
        (b"[0.0, 0.1,", "application/json", None, 400, "not valid JSON"),
        (b"[0.0, 0.1, 0.0]", "application/json", None, 400, "does not match the policy's [4]"),
        (b"[[0.0, 0.1, 0.0, 0.1], [1.0]]", "application/json", None, 400, "rectangular"),
        (b'["a", "b", "c", "d"]', "application/json", None, 400, "numbers"),
        (b'{"obs": [1, 2, 3, 4]}', "application/json", None, 400, "'observation'"),
        (b"0.0,0.1,0.0,-0.1", "text/csv", None, 415, "text/csv"),
        (b"[0.0, 0.1, 0.0, -0.1]", "application/json", "text/csv", 406, "text/csv"),
    ],
)
def test_bad_requests_get_4xx_and_the_server_stays_up(
    local, cartpole_endpoint, body, content_type, accept, status, message
):
    pid = local.describe_endpoint(cartpole_endpoint).extra["ServerPid"]
    request = {"EndpointName": cartpole_endpoint, "Body": body, "ContentType": content_type}
    if accept:
        request["Accept"] = accept
    with pytest.raises(ModelInvocationError) as caught:
        local.invoke_endpoint(**request)
    assert caught.value.status_code == status
    assert message in caught.value.message
    good = local.invoke_endpoint(EndpointName=cartpole_endpoint, Body=json.dumps(OBSERVATION))
    assert json.loads(good["Body"].read())["action"] in (0, 1)
    assert local.describe_endpoint(cartpole_endpoint).extra["ServerPid"] == pid


@pytest.mark.slow
def test_raw_http_limits_and_routes(local, cartpole_endpoint):
    url = local.describe_endpoint(cartpole_endpoint).extra["Url"]
    port = int(url.rsplit(":", 1)[1])

    def call(method: str, path: str, body: bytes | None = None) -> tuple[int, bytes]:
        connection = http.client.HTTPConnection("127.0.0.1", port, timeout=60)
        try:
            connection.request(
                method, path, body=body, headers={"Content-Type": "application/json"}
            )
            response = connection.getresponse()
            return response.status, response.read()
        finally:
            connection.close()

    assert call("GET", "/ping")[0] == 200
    too_big = b"[" + b"0.0," * (6 * 1024 * 1024 // 4) + b"0.0]"
    status, text = call("POST", "/invocations", too_big)
    assert status == 413
    assert b"6291456" in text
    assert call("GET", "/invocations")[0] == 405
    assert call("POST", "/nowhere", b"[]")[0] == 404
    status, text = call("POST", "/invocations", json.dumps(BATCH).encode())
    assert status == 200
    assert len(json.loads(text)["actions"]) == 3
    # The same limit is refused on the client side before anything is sent.
    with pytest.raises(RLConfigError, match="6 MB"):
        local.invoke_endpoint(EndpointName=cartpole_endpoint, Body=too_big)


def test_blue_green_update_under_load_fails_no_request(color_models):
    local = color_models
    local.create_endpoint(EndpointName="colors", EndpointConfigName="config-blue")
    wait_for_endpoint(local, "colors", "config-blue", timeout=120)
    blue_pid = local.describe_endpoint("colors").extra["ServerPid"]

    client = LocalBackend(local.home)  # another process's view: its own connections
    answers: list[str] = []
    failures: list[BaseException] = []
    stop = threading.Event()

    def send() -> None:
        while not stop.is_set():
            try:
                response = client.invoke_endpoint(EndpointName="colors", Body=b"[1]")
                answers.append(json.loads(response["Body"].read())["color"])
            except Exception as err:
                failures.append(err)

    sender = threading.Thread(target=send)
    sender.start()
    try:
        wait_until(lambda: len(answers) >= 20, what="blue answers")
        local.update_endpoint(EndpointName="colors", EndpointConfigName="config-green")
        assert local.describe_endpoint("colors").endpoint_status is EndpointStatus.UPDATING
        wait_for_endpoint(local, "colors", "config-green", timeout=120)
        seen = len(answers)
        wait_until(lambda: len(answers) >= seen + 20, what="green answers")
    finally:
        stop.set()
        sender.join(timeout=60)
    assert failures == []
    switch = answers.index("green")
    assert switch >= 20
    assert set(answers[:switch]) == {"blue"}
    assert set(answers[switch:]) == {"green"}
    wait_until(lambda: stopped(blue_pid), what="the blue server to exit")
    green = local.describe_endpoint("colors")
    assert green.endpoint_config_name == "config-green"
    assert green.extra["ServerPid"] != blue_pid

    local.delete_endpoint("colors")
    assert stopped(green.extra["ServerPid"])
    assert server_processes(local.home, "colors") == []


def test_model_fn_error_fails_the_endpoint_and_leaves_no_process(color_models):
    local = color_models
    local.create_endpoint(EndpointName="broken", EndpointConfigName="config-broken")
    with pytest.raises(BackendError, match="checkpoint is corrupt: 42"):
        wait_for_endpoint(local, "broken", timeout=120)
    description = local.describe_endpoint("broken")
    assert description.endpoint_status is EndpointStatus.FAILED
    assert description.failure_reason == "RuntimeError: checkpoint is corrupt: 42"
    wait_until(lambda: server_processes(local.home, "broken") == [], what="no server process")
    with pytest.raises(EndpointNotFoundError, match="checkpoint is corrupt"):
        local.invoke_endpoint(EndpointName="broken", Body=b"[1]")
    local.delete_endpoint("broken")


def test_failed_update_keeps_the_old_model_serving(color_models):
    local = color_models
    local.create_endpoint(EndpointName="steady", EndpointConfigName="config-blue")
    wait_for_endpoint(local, "steady", timeout=120)
    pid = local.describe_endpoint("steady").extra["ServerPid"]
    local.update_endpoint(EndpointName="steady", EndpointConfigName="config-broken")
    with pytest.raises(BackendError, match="still serves config-blue"):
        wait_for_endpoint(local, "steady", "config-broken", timeout=120)
    description = local.describe_endpoint("steady")
    assert description.endpoint_status is EndpointStatus.IN_SERVICE
    assert description.failure_reason.startswith("Update failed: RuntimeError: checkpoint")
    assert description.extra["ServerPid"] == pid
    response = local.invoke_endpoint(EndpointName="steady", Body=b'"still here"')
    assert json.loads(response["Body"].read()) == {"color": "blue", "echo": "still here"}
    local.delete_endpoint("steady")
    assert stopped(pid)


@pytest.mark.filterwarnings("ignore:`torch.jit.*` is deprecated:DeprecationWarning")
def test_torchscript_policy_is_the_default_handler(local, tmp_path):
    import torch

    net = torch.nn.Linear(4, 2)
    with torch.no_grad():
        net.weight.copy_(torch.tensor([[1.0, 0.0, 0.0, 0.0], [0.0, 0.0, 0.0, 1.0]]))
        net.bias.zero_()
    buffer = io.BytesIO()
    torch.jit.save(torch.jit.script(net), buffer)
    local.create_model(
        ModelName="scripted",
        PrimaryContainer={
            "Image": "rl-provider/torchscript:1",
            "ModelDataUrl": tarball(tmp_path / "model.tar.gz", {"model.pt": buffer.getvalue()}),
        },
    )
    local.create_endpoint_config(
        EndpointConfigName="scripted",
        ProductionVariants=[
            {"ModelName": "scripted", "InitialInstanceCount": 1, "InstanceType": "local"}
        ],
    )
    local.create_endpoint(EndpointName="scripted", EndpointConfigName="scripted")
    wait_for_endpoint(local, "scripted", timeout=120)
    predictor = RLPredictor("scripted", local)
    try:
        # action = argmax(obs[0], obs[3])
        assert predictor.predict([2.0, 0.0, 0.0, 1.0]) == {"action": 0}
        assert predictor.predict([[0.0, 5.0, 5.0, 1.0], [3.0, 0.0, 0.0, -1.0]]) == {
            "actions": [1, 0]
        }
        with pytest.raises(ModelInvocationError) as caught:
            predictor.predict([1.0, 2.0, 3.0])
        assert caught.value.status_code == 400
    finally:
        predictor.delete_endpoint()


def test_bad_definitions_are_refused_before_anything_is_created(color_models, tmp_path):
    local = color_models
    before = {kind: local.store.names(kind) for kind in (MODEL, ENDPOINT_CONFIG)}
    container = {"Image": "x", "ModelDataUrl": (tmp_path / "missing.tar.gz").as_uri()}
    cases = [
        (lambda: local.create_model(ModelName="m", PrimaryContainer={}), RLConfigError, "Image"),
        (
            lambda: local.create_model(ModelName="m", PrimaryContainer=container),
            RLConfigError,
            "does not exist",
        ),
        (
            lambda: local.create_model(ModelName="bad_name", PrimaryContainer=container),
            RLConfigError,
            "Invalid model name",
        ),
        (
            lambda: local.create_model(ModelName="color-blue", PrimaryContainer={"Image": "x"}),
            ResourceExistsError,
            "color-blue",
        ),
        (
            lambda: local.create_endpoint_config(
                EndpointConfigName="c",
                ProductionVariants=[{"ModelName": "nope", "InstanceType": "local"}],
            ),
            ModelNotFoundError,
            "nope",
        ),
        (
            lambda: local.create_endpoint_config(
                EndpointConfigName="c", ProductionVariants=[{"ModelName": "color-blue"}]
            ),
            RLConfigError,
            "InstanceType",
        ),
        (
            lambda: local.create_endpoint_config(EndpointConfigName="c", ProductionVariants=[]),
            RLConfigError,
            "exactly one",
        ),
        (
            lambda: local.create_endpoint(EndpointName="e", EndpointConfigName="nope"),
            EndpointNotFoundError,
            "nope",
        ),
        (
            lambda: local.update_endpoint(EndpointName="nope", EndpointConfigName="config-blue"),
            EndpointNotFoundError,
            "nope",
        ),
        (
            lambda: local.invoke_endpoint(EndpointName="nope", Body=b"[]"),
            EndpointNotFoundError,
            "nope",
        ),
        (lambda: local.delete_endpoint("nope"), EndpointNotFoundError, "nope"),
    ]
    for call, error, message in cases:
        with pytest.raises(error, match=message):
            call()
    assert {kind: local.store.names(kind) for kind in (MODEL, ENDPOINT_CONFIG)} == before
    assert local.list_endpoints(NameContains="nope") == {"Endpoints": []}


@pytest.mark.slow
def test_deploy_to_an_existing_endpoint_needs_update_endpoint(color_models, trained):
    local = color_models
    local.create_endpoint(EndpointName="taken", EndpointConfigName="config-blue")
    try:
        before = {kind: local.store.names(kind) for kind in (MODEL, ENDPOINT_CONFIG)}
        model = trained.create_model(name="never-created")
        with pytest.raises(ResourceExistsError, match="update_endpoint=True"):
            model.deploy(1, "local", endpoint_name="taken")
        with pytest.raises(RLConfigError, match="initial_instance_count"):
            model.deploy(0, "local", endpoint_name="fresh")
        # An endpoint that is not InService cannot be updated: refused before anything exists.
        local.create_endpoint(EndpointName="broken", EndpointConfigName="config-broken")
        deadline = time.monotonic() + 60
        while not local.describe_endpoint("broken").is_failure:
            assert time.monotonic() < deadline, "the broken endpoint never failed"
            time.sleep(0.1)
        with pytest.raises(RLConfigError, match="only an InService endpoint can be updated"):
            model.deploy(1, "local", endpoint_name="broken", update_endpoint=True)
        assert {kind: local.store.names(kind) for kind in (MODEL, ENDPOINT_CONFIG)} == before
    finally:
        local.delete_endpoint("taken")
        with contextlib.suppress(EndpointNotFoundError):
            local.delete_endpoint("broken")


def test_code_inside_the_artifact_as_sagemaker_repacks_it(local, tmp_path):
    # SDK v2 (and our SageMaker backend) put code/ in model.tar.gz and point
    # SAGEMAKER_SUBMIT_DIRECTORY at /opt/ml/model/code: the same model serves locally.
    artifact = {"color.txt": "teal", "code/color.py": COLOR_HANDLER}
    local.create_model(
        ModelName="repacked",
        PrimaryContainer={
            "Image": "rl-provider/handler-test:1",
            "ModelDataUrl": tarball(tmp_path / "model.tar.gz", artifact),
            "Environment": {
                "SAGEMAKER_PROGRAM": "color.py",
                "SAGEMAKER_SUBMIT_DIRECTORY": "/opt/ml/model/code",
            },
        },
    )
    local.create_endpoint_config(
        EndpointConfigName="repacked",
        ProductionVariants=[
            {"ModelName": "repacked", "InitialInstanceCount": 1, "InstanceType": "local"}
        ],
    )
    local.create_endpoint(EndpointName="repacked", EndpointConfigName="repacked")
    try:
        wait_for_endpoint(local, "repacked", timeout=120)
        answer = RLPredictor("repacked", local).predict([1, 2])
        assert answer == {"color": "teal", "echo": [1, 2]}
    finally:
        local.delete_endpoint("repacked")


def test_list_endpoints_filters_then_pages_newest_first(color_models):
    local = color_models
    local.create_endpoint(EndpointName="listed-blue", EndpointConfigName="config-blue")
    local.create_endpoint(EndpointName="listed-broken", EndpointConfigName="config-broken")
    try:
        wait_for_endpoint(local, "listed-blue", timeout=120)
        with pytest.raises(BackendError, match="checkpoint is corrupt"):
            wait_for_endpoint(local, "listed-broken", timeout=120)

        def names(**filters: object) -> list[str]:
            listed = local.list_endpoints(NameContains="listed-", **filters)["Endpoints"]
            return [summary["EndpointName"] for summary in listed]

        assert names() == ["listed-broken", "listed-blue"]
        assert names(MaxResults=1) == ["listed-broken"]
        assert names(StatusEquals="Failed") == ["listed-broken"]
        # The page counts only what the status filter kept.
        assert names(StatusEquals="InService", MaxResults=1) == ["listed-blue"]
        for call in (local.list_endpoints, local.list_training_jobs):
            for bad in (0, -1, True, "5"):
                with pytest.raises(RLConfigError, match="MaxResults"):
                    call(MaxResults=bad)
    finally:
        local.delete_endpoint("listed-blue")
        local.delete_endpoint("listed-broken")


def test_a_server_that_dies_fails_the_endpoint(color_models):
    local = color_models
    local.create_endpoint(EndpointName="fragile", EndpointConfigName="config-blue")
    wait_for_endpoint(local, "fragile", timeout=120)
    pid = local.describe_endpoint("fragile").extra["ServerPid"]
    psutil.Process(pid).kill()
    wait_until(lambda: stopped(pid), what="the killed server to go")
    description = local.describe_endpoint("fragile")
    assert description.endpoint_status is EndpointStatus.FAILED
    assert "the model server exited" in description.failure_reason
    assert "server.log" in description.failure_reason
    with pytest.raises(EndpointNotFoundError, match="Failed"):
        local.invoke_endpoint(EndpointName="fragile", Body=b"[1]")
    local.delete_endpoint("fragile")


def test_delete_while_creating_leaves_no_process(color_models):
    local = color_models
    local.create_endpoint(EndpointName="hasty", EndpointConfigName="config-blue")
    local.delete_endpoint("hasty")  # its server is still importing, or loading the model
    wait_until(lambda: server_processes(local.home, "hasty") == [], what="no server process")
    with pytest.raises(EndpointNotFoundError):
        local.describe_endpoint("hasty")


def test_async_describe_endpoint(color_models):
    import asyncio

    from rl_provider.backends.local import AsyncLocalBackend

    local = color_models
    local.create_endpoint(EndpointName="awaited", EndpointConfigName="config-green")
    try:
        wait_for_endpoint(local, "awaited", timeout=120)
        described = asyncio.run(AsyncLocalBackend(local).describe_endpoint("awaited"))
        assert described.endpoint_status is EndpointStatus.IN_SERVICE
        assert described.endpoint_config_name == "config-green"
    finally:
        local.delete_endpoint("awaited")
