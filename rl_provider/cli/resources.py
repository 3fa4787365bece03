"""``rl-provider models list|describe|delete`` and ``endpoints list|describe|invoke|delete``."""

from __future__ import annotations

import argparse
import json
import sys
import time
from typing import TYPE_CHECKING, Any

from rl_provider.cli.context import NAME, Action, Context, ExitCode, Group, option
from rl_provider.cli.output import duration, mapping_rows, spinner, when
from rl_provider.core.lifecycle import (
    EndpointOutcome,
    Outcome,
    plan_deploy,
    production_variant,
    wait_for_outcome,
)
from rl_provider.exceptions import BackendError, ModelInvocationError, RLConfigError

if TYPE_CHECKING:
    from rl_provider.core.jobs import EndpointDescription

JSON_TYPE = "application/json"


# ------------------------------------------------------------------------------------ models
def models_list(args: argparse.Namespace, ctx: Context) -> ExitCode:
    ctx.output.listing(
        "Models",
        ctx.backend.list_models().get("Models", []),
        ["NAME", "CREATED (UTC)", "ARN"],
        lambda m: [m["ModelName"], when(m.get("CreationTime")), m.get("ModelArn", "-")],
        empty="No models.",
    )
    return ExitCode.OK


def models_describe(args: argparse.Namespace, ctx: Context) -> ExitCode:
    description = ctx.backend.describe_model(args.name)
    out = ctx.output
    if out.json_mode:
        out.emit_json(description.to_api())
        return ExitCode.OK
    container = description.primary_container
    environment = dict(container.environment)
    out.fields(
        [
            ("Model", description.model_name),
            ("Arn", description.model_arn),
            ("Created (UTC)", when(description.creation_time)),
            ("Image", container.image),
            ("Model data", container.model_data_url),
            # SageMaker's framework containers run this handler from this code archive.
            ("Program", environment.pop("SAGEMAKER_PROGRAM", None)),
            ("Code", environment.pop("SAGEMAKER_SUBMIT_DIRECTORY", None)),
            ("Environment", mapping_rows(environment)),
            ("Role", description.execution_role_arn),
        ]
    )
    return ExitCode.OK


def models_delete(args: argparse.Namespace, ctx: Context) -> ExitCode:
    ctx.backend.delete_model(args.name)
    ctx.output.note(f"Deleted model {args.name}.")
    return ExitCode.OK


# --------------------------------------------------------------------------------- endpoints
def endpoints_list(args: argparse.Namespace, ctx: Context) -> ExitCode:
    ctx.output.listing(
        "Endpoints",
        ctx.backend.list_endpoints().get("Endpoints", []),
        ["NAME", "STATUS", "CREATED (UTC)", "MODIFIED (UTC)"],
        lambda e: [
            e["EndpointName"],
            e.get("EndpointStatus", "-"),
            when(e.get("CreationTime")),
            when(e.get("LastModifiedTime")),
        ],
        empty="No endpoints.",
    )
    return ExitCode.OK


def _served_models(backend: Any, config_name: str) -> str | None:
    """The model names behind an endpoint config."""
    try:
        config = backend.describe_endpoint_config(config_name)
    except LookupError:  # the config was deleted after the endpoint was created
        return None
    return ", ".join(variant.model_name for variant in config.production_variants) or None


def endpoints_describe(args: argparse.Namespace, ctx: Context) -> ExitCode:
    backend = ctx.backend
    description = backend.describe_endpoint(args.name)
    out = ctx.output
    code = ExitCode.FAILED if description.is_failure else ExitCode.OK
    if out.json_mode:
        out.emit_json(description.to_api())
        return code
    out.fields(
        [
            ("Endpoint", description.endpoint_name),
            ("Status", description.endpoint_status.value),
            ("Failure reason", description.failure_reason),
            ("Endpoint config", description.endpoint_config_name),
            ("Model", _served_models(backend, description.endpoint_config_name)),
            ("Created (UTC)", when(description.creation_time)),
            ("Modified (UTC)", when(description.last_modified_time)),
            ("URL", description.extra.get("Url")),
        ]
    )
    variants = [
        [
            v.get("VariantName", "-"),
            v.get("CurrentInstanceCount", "-"),
            v.get("CurrentWeight", "-"),
        ]
        for v in description.production_variants
    ]
    if variants:
        out.print("")
        out.table("Production variants", ["VARIANT", "INSTANCES", "WEIGHT"], variants, empty="")
    return code


def _request_body(args: argparse.Namespace) -> bytes:
    """The body to send; JSON is checked here so a typo never reaches the model."""
    text: str = sys.stdin.read() if args.data == "-" else args.data
    source = "stdin" if args.data == "-" else "--data"
    if args.content_type.split(";")[0].strip().lower() == JSON_TYPE:
        try:
            json.loads(text)
        except json.JSONDecodeError as err:
            raise RLConfigError(
                f"{source} is not valid JSON ({err.msg} at line {err.lineno} column "
                f"{err.colno}): pass e.g. --data '[0.0, 0.1, 0.0, -0.1]', or another "
                "--content-type for non-JSON bodies."
            ) from None
    return text.encode("utf-8")


def endpoints_invoke(args: argparse.Namespace, ctx: Context) -> ExitCode:
    body = _request_body(args)
    backend = ctx.backend
    description = backend.describe_endpoint(args.name)
    out = ctx.output
    if description.is_failure:
        reason = f": {description.failure_reason}" if description.failure_reason else ""
        out.note(
            f"rl-provider: error: endpoint {args.name} is {description.endpoint_status.value} "
            f"and cannot serve{reason}"
        )
        return ExitCode.FAILED
    try:
        response = backend.invoke_endpoint(
            EndpointName=args.name, Body=body, ContentType=args.content_type, Accept=args.accept
        )
    except ModelInvocationError as err:
        out.note(f"rl-provider: error: {' '.join(str(err).split())}")
        return ExitCode.FAILED
    data = response["Body"].read()
    text = data.decode("utf-8", errors="replace") if isinstance(data, bytes) else str(data)
    content_type = str(response.get("ContentType") or "")
    if not out.json_mode and content_type.split(";")[0].strip().lower() == JSON_TYPE:
        try:
            out.out.print_json(text)
        except json.JSONDecodeError:
            out.line(text)
        return ExitCode.OK
    out.line(text)
    return ExitCode.OK


def endpoints_update(args: argparse.Namespace, ctx: Context) -> ExitCode:
    """A new endpoint config for ``--model`` (same instances as now), then UpdateEndpoint."""
    backend = ctx.backend
    out = ctx.output
    backend.describe_model(args.model)  # an unknown model is "not found" before any change
    current: EndpointDescription = backend.describe_endpoint(args.name)
    plan = plan_deploy(args.name, current)  # only an InService endpoint: checked before a change
    variants = backend.describe_endpoint_config(current.endpoint_config_name).production_variants
    if not variants:
        raise BackendError(f"Endpoint config {current.endpoint_config_name} has no variant.")
    variant = variants[0]
    config_name = plan.config_name
    plan.start(
        backend,
        [
            production_variant(
                args.model,
                variant.initial_instance_count,
                variant.instance_type,
                variant_name=variant.variant_name,
            )
        ],
    )
    if not args.wait:
        out.note(f"Update of endpoint {args.name} to model {args.model} requested ({config_name}).")
        return ExitCode.OK
    outcome = _wait_for_update(ctx, args.name, config_name)
    description = outcome.description
    if out.json_mode:
        out.emit_json(description.to_api())
    if outcome.outcome is Outcome.SUCCESS:
        out.note(f"Endpoint {args.name} serves model {args.model} ({config_name}).")
        return ExitCode.OK
    reason = f": {description.failure_reason}" if description.failure_reason else ""
    out.note(
        f"rl-provider: error: endpoint {args.name} did not take model {args.model}; it is "
        f"{description.endpoint_status.value} on {description.endpoint_config_name}{reason}"
    )
    return ExitCode.FAILED


def _wait_for_update(ctx: Context, name: str, config_name: str) -> EndpointOutcome:
    """Poll until the endpoint is no longer Creating/Updating (spinner on stderr)."""
    interval = max(float(ctx.backend.poll_interval), 0.1)
    began = time.monotonic()
    with ctx.output.progress(f"Updating {name}") as live:

        def sleep(description: EndpointDescription) -> bool:
            waited = duration(time.monotonic() - began)
            status = description.endpoint_status.value
            live.update(spinner(f"Updating {name}: {status} (waited {waited})"))
            time.sleep(interval)
            return True

        outcome = wait_for_outcome(ctx.backend, name, endpoint_config_name=config_name, pause=sleep)
    if outcome is None:  # pragma: no cover  # sleep() never gives up, no deadline
        raise BackendError(f"Waiting for endpoint {name} gave up.")
    return outcome


def endpoints_delete(args: argparse.Namespace, ctx: Context) -> ExitCode:
    ctx.backend.delete_endpoint(args.name)
    ctx.output.note(f"Deleted endpoint {args.name}.")
    return ExitCode.OK


GROUPS = (
    Group(
        "models",
        "deployable models",
        "Models.",
        "{list,describe,delete}",
        (
            Action("list", models_list, "List models, newest first."),
            Action(
                "describe", models_describe, "Image, model data, code and environment.", (NAME,)
            ),
            Action("delete", models_delete, "Delete a model (endpoints keep serving it).", (NAME,)),
        ),
    ),
    Group(
        "endpoints",
        "serving endpoints",
        "Endpoints.",
        "{list,describe,invoke,delete}",
        (
            Action("list", endpoints_list, "List endpoints, newest first."),
            Action(
                "describe",
                endpoints_describe,
                "Status, config, model and failure reason. Exits 1 when the endpoint cannot serve.",
                (NAME,),
            ),
            Action(
                "invoke",
                endpoints_invoke,
                "Send one request (SageMaker InvokeEndpoint) and print the response body.",
                (
                    NAME,
                    option(
                        "--data",
                        required=True,
                        metavar="JSON",
                        help="the request body, e.g. '[0.0, 0.1, 0.0, -0.1]'; '-' reads it from "
                        "stdin",
                    ),
                    option(
                        "--content-type",
                        default=JSON_TYPE,
                        help=f"request ContentType (default {JSON_TYPE}; JSON bodies are checked "
                        "first)",
                    ),
                    option(
                        "--accept", default=JSON_TYPE, help=f"response Accept (default {JSON_TYPE})"
                    ),
                ),
            ),
            Action(
                "update",
                endpoints_update,
                "Serve another model blue/green (roll back to the previous one); waits for "
                "InService.",
                (
                    NAME,
                    option("--model", required=True, help="the model to serve (see `models list`)"),
                    option(
                        "--no-wait",
                        dest="wait",
                        action="store_false",
                        help="return once the update is requested",
                    ),
                ),
            ),
            Action(
                "delete", endpoints_delete, "Stop the endpoint's servers and delete it.", (NAME,)
            ),
        ),
    ),
)
