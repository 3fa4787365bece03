"""What ``RayBackend.create_training_job`` sends: the request checked, the launcher's package
(the job's ``working_dir``) and the Jobs API body (``POST /api/jobs/``). No I/O.

The launcher travels with each job together with the stdlib-only modules it reuses, so the
cluster needs nothing of ours installed (docs/RAY.md, "Versions the cluster must match").
"""

from __future__ import annotations

import ast
import functools
import hashlib
import io
import json
import zipfile
from collections.abc import Iterator, Mapping
from dataclasses import dataclass
from pathlib import Path
from typing import Any

from rl_provider.backends.ray import resources
from rl_provider.backends.ray.state import REQUEST_KEY
from rl_provider.core import hyperparameters as hp
from rl_provider.core.naming import validate_name
from rl_provider.exceptions import RLConfigError

_ROOT = Path(__file__).resolve().parents[3]  # the directory holding the rl_provider package
_LAUNCHER = "rl_provider.backends.ray.launcher"


def _imported(tree: ast.AST, package: str) -> Iterator[str]:
    """The rl_provider modules a module imports, at any depth but ``if TYPE_CHECKING:``."""
    for node in ast.iter_child_nodes(tree):
        if isinstance(node, ast.If) and ast.unparse(node.test).endswith("TYPE_CHECKING"):
            yield from _imported(ast.Module(body=node.orelse, type_ignores=[]), package)
            continue
        if isinstance(node, ast.Import):
            yield from (alias.name for alias in node.names)
        elif isinstance(node, ast.ImportFrom) and node.module:
            base = node.module if not node.level else f"{package}.{node.module}"
            yield base
            # ``from rl_provider.core import hyperparameters``: the name may be a module.
            yield from (f"{base}.{alias.name}" for alias in node.names)
        yield from _imported(node, package)


@functools.cache
def shipped_modules() -> tuple[str, ...]:
    """The launcher and every rl_provider module it imports, transitively: what travels with
    each job. They must be standard library only (a test imports them without site-packages)."""
    found: set[str] = set()
    pending = [_LAUNCHER]
    while pending:
        module = pending.pop()
        path = _ROOT / (module.replace(".", "/") + ".py")
        if module in found or not path.is_file():
            continue  # a package (shipped with an empty __init__) or a name, not a module
        found.add(module)
        tree = ast.parse(path.read_text(encoding="utf-8"))
        package = module.rpartition(".")[0]
        pending += [name for name in _imported(tree, package) if name.startswith("rl_provider.")]
    return tuple(sorted(found))


_ENTRYPOINT = "python -m rl_provider.backends.ray.launcher spec.json"


def job_package(spec: Mapping[str, Any]) -> tuple[str, bytes]:
    """(``_ray_pkg_<hash>.zip``, its bytes): the job's working_dir, built deterministically.

    The packages' ``__init__`` files are empty: the real ones would import the rest of
    rl_provider (and airflow-side modules) that the launcher never needs.
    """
    buffer = io.BytesIO()
    with zipfile.ZipFile(buffer, "w", zipfile.ZIP_DEFLATED) as archive:
        files = [module.replace(".", "/") + ".py" for module in shipped_modules()]
        # Every package on the way, with an empty ``__init__``.
        packages = sorted({str(p) for path in files for p in Path(path).parents if p != Path(".")})
        entries: list[tuple[str, bytes]] = [(f"{p}/__init__.py", b"") for p in packages]
        entries += [(path, (_ROOT / path).read_bytes()) for path in files]
        entries.append(("spec.json", json.dumps(spec, sort_keys=True).encode()))
        for path, data in entries:
            info = zipfile.ZipInfo(path, date_time=(1980, 1, 1, 0, 0, 0))
            info.external_attr = 0o644 << 16
            archive.writestr(info, data, zipfile.ZIP_DEFLATED)
    data = buffer.getvalue()
    return f"_ray_pkg_{hashlib.sha256(data).hexdigest()[:32]}.zip", data


@dataclass(frozen=True)
class Submission:
    """The backend's submission settings: the user's ``runtime_env`` (merged into every
    job's), SageMaker's stop grace, and the time left to package the artifacts after it."""

    runtime_env: Mapping[str, Any]
    stop_grace: float
    upload_seconds: float

    def __post_init__(self) -> None:
        if "working_dir" in self.runtime_env:
            raise RLConfigError(
                "runtime_env['working_dir'] is the launcher's: ship your own modules with "
                "runtime_env['py_modules'], or put them in the training code (source_dir)."
            )

    def validate(self, request: Mapping[str, Any]) -> str:
        """The job's name, once the request is one the cluster can run (else RLConfigError)."""
        name = validate_name(request.get("TrainingJobName", ""), kind="training job name")
        for key in ("AlgorithmSpecification", "OutputDataConfig", "ResourceConfig"):
            if key not in request:
                raise RLConfigError(
                    f"CreateTrainingJob request without {key}: build it with training_request()."
                )
        if "MaxRuntimeInSeconds" not in request.get("StoppingCondition", {}):
            raise RLConfigError(
                "CreateTrainingJob request without StoppingCondition.MaxRuntimeInSeconds: build "
                "it with training_request()."
            )
        resources.entrypoint_resources(request["ResourceConfig"])
        uris = [str(request["OutputDataConfig"]["S3OutputPath"])]
        submit = request.get("HyperParameters", {}).get("sagemaker_submit_directory")
        if not submit:
            raise RLConfigError(
                "The Ray backend needs the code as sagemaker_submit_directory (a file:// or "
                "s3:// sourcedir.tar.gz the cluster can read): fit() puts it there."
            )
        uris.append(str(hp.decode_value(submit)))
        uris += [
            str(c.get("DataSource", {}).get("S3DataSource", {}).get("S3Uri", ""))
            for c in request.get("InputDataConfig", [])
        ]
        for uri in uris:
            if not uri.startswith(("file://", "s3://")):
                raise RLConfigError(
                    f"{uri!r}: the Ray cluster reads and writes file:// (a filesystem every node "
                    "shares) or s3:// locations only."
                )
        return name

    def package(self, request: Mapping[str, Any]) -> tuple[str, bytes]:
        """The launcher's package for ``request`` (``job_package`` of its spec)."""
        cpus, gpus = resources.entrypoint_resources(request["ResourceConfig"])
        return job_package(
            {
                "request": dict(request),
                "stop_grace": self.stop_grace,
                "num_cpus": max(1, int(cpus)),
                "num_gpus": int(gpus),
            }
        )

    def body(self, request: Mapping[str, Any], package: str) -> dict[str, Any]:
        """``POST /api/jobs/``'s body: the launcher on ``package``, named like the job."""
        cpus, gpus = resources.entrypoint_resources(request["ResourceConfig"])
        env = dict(self.runtime_env)
        env_vars = dict(env.get("env_vars") or {})
        # Ray's supervisor SIGKILLs a stopped job this long after SIGTERM: the grace SageMaker
        # gives the entry point, plus the time to package the artifacts.
        env_vars["RAY_JOB_STOP_WAIT_TIME_S"] = str(int(self.stop_grace + self.upload_seconds))
        env.update(working_dir=f"gcs://{package}", env_vars=env_vars)
        body: dict[str, Any] = {
            "entrypoint": _ENTRYPOINT,
            "submission_id": request["TrainingJobName"],
            "runtime_env": env,
            "metadata": {REQUEST_KEY: json.dumps(dict(request), sort_keys=True)},
            "entrypoint_num_cpus": cpus,
        }
        if gpus:
            body["entrypoint_num_gpus"] = gpus
        return body
