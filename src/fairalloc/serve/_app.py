"""The service on the web: FastAPI routes over :class:`~fairalloc.serve._service.Service`.

Every answer is JSON. Every error is a problem document (RFC 9457,
``application/problem+json``) with the error's ``code``, ``message`` and ``location``; nothing
ever answers with a stack trace. Every route but ``/health`` asks for a bearer token with the
scope it needs; a token that speaks for one resident reads that resident's own data only.
"""

from __future__ import annotations

import asyncio
import contextlib
import datetime as dt
import hashlib
import json
import logging
import threading
import time
from collections.abc import Awaitable, Callable, Mapping, MutableMapping
from dataclasses import dataclass
from functools import partial
from typing import Annotated, Any, Literal, TypeVar

import anyio
import anyio.to_thread
from fastapi import Depends, FastAPI, Query, Request
from fastapi.exceptions import RequestValidationError
from pydantic import BaseModel, ConfigDict, Field
from starlette.exceptions import HTTPException
from starlette.responses import Response

from fairalloc import __version__
from fairalloc.errors import (
    FairallocError,
    MissingDependency,
    PolicyError,
    PopulationError,
    RecordsError,
    ReviewError,
    ServiceError,
)
from fairalloc.serve._config import ServiceConfig
from fairalloc.serve._service import Served, Service

__all__ = ["ACCESS_LOGGER", "build_app"]

#: The logger of the access log (as :data:`fairalloc.serve.ACCESS_LOGGER`).
ACCESS_LOGGER = "fairalloc.serve.access"

T = TypeVar("T")
Lang = Literal["en", "zh-CN"]
Scope = Literal["read", "decide", "review", "admin"]

# -- responses ----------------------------------------------------------------------------------


class JSONDoc(Response):
    """A JSON answer written as the library writes JSON (UTF-8, no NaN)."""

    media_type = "application/json"

    def render(self, content: Any) -> bytes:
        return json.dumps(content, ensure_ascii=False, allow_nan=False).encode("utf-8")


PROBLEM = "application/problem+json"


class Problem(BaseModel):
    """A problem document (RFC 9457) as the service writes every error."""

    type: str = Field(description="`urn:fairalloc:error:CODE`")
    title: str
    status: int
    detail: str = Field(description="the same text as `message`")
    code: str = Field(description="fairalloc's error code, e.g. `FA922` (see the error reference)")
    message: str
    location: str = Field(description="where: `body.residents[2].age`, `header Authorization`, ...")
    issues: list[dict[str, Any]] | None = Field(
        None, description="a policy's or a population's problems, each with its code"
    )
    errors: list[dict[str, Any]] | None = Field(
        None, description="for FA922: each part of the request that is not of the expected form"
    )


def _problems(*statuses: int) -> dict[int | str, dict[str, Any]]:
    """The OpenAPI ``responses`` of a route's errors: problem documents."""
    return {
        status: {"model": Problem, "content": {PROBLEM: {}}, "description": phrase}
        for status, phrase in (
            (400, "the body is not JSON (FA921)"),
            (401, "no valid bearer token (FA925)"),
            (403, "the token does not allow this (FA926, FA927)"),
            (404, "no such policy, resident or record"),
            (409, "the decision log or the review refused the operation"),
            (413, "the body or the batch is too large (FA923, FA924)"),
            (415, "the body is not sent as JSON (FA934)"),
            (422, "the request, or the residents' data, cannot be used"),
            (500, "an error the service did not foresee (FA949)"),
            (503, "the answer took too long (FA932)"),
        )
        if status in statuses
    }


#: The errors every route with a token may answer.
_COMMON = (401, 403, 404, 422, 500, 503)

_TITLES: dict[str, str] = {
    "FA921": "The request body is not JSON",
    "FA922": "The request does not have the expected form",
    "FA923": "The request body is too large",
    "FA924": "Too many residents in one request",
    "FA925": "A valid bearer token is needed",
    "FA926": "The token does not allow this",
    "FA927": "The token speaks for another resident",
    "FA928": "No such policy",
    "FA929": "No such resident",
    "FA930": "The policy has no resident pool",
    "FA931": "The policy has no decision log",
    "FA932": "The request took too long",
    "FA933": "No such endpoint",
    "FA934": "The request body must be JSON",
    "FA935": "The policy cannot be applied to the residents given",
    "FA949": "Internal error",
}


def problem(
    status: int,
    code: str,
    message: str,
    *,
    location: str = "",
    title: str | None = None,
    extra: Mapping[str, Any] | None = None,
    headers: Mapping[str, str] | None = None,
) -> Response:
    """A problem document (RFC 9457) with fairalloc's ``code``, ``message`` and ``location``."""
    doc: dict[str, Any] = {
        "type": f"urn:fairalloc:error:{code}",
        "title": title or _TITLES.get(code, "The request cannot be carried out"),
        "status": status,
        "detail": message,
        "code": code,
        "message": message,
        "location": location,
        **(extra or {}),
    }
    body = json.dumps(doc, ensure_ascii=False, default=str).encode("utf-8")
    return Response(body, status_code=status, media_type=PROBLEM, headers=dict(headers or {}))


#: The titles of the library's errors, by class name (a subclass takes its parent's).
_CLASS_TITLES: dict[str, str] = {
    "PolicyError": "The policy is not valid",
    "PopulationError": "The residents' data does not fit the policy",
    "EvaluationError": "The policy cannot be applied to the residents given",
    "ArgumentError": "A value given cannot be used",
    "AllocationError": "The allocation cannot be made as asked",
    "RecordsError": "The decision log refused the operation",
    "ReviewError": "The review cannot be carried out as asked",
    "RotationStateError": "The rotation's state does not fit",
    "PublishError": "The document cannot be made as asked",
    "PolicyNotInForce": "The policy is not in force on that date",
    "MissingDependency": "A library the service needs is not installed",
}


def _title(e: FairallocError) -> str | None:
    for cls in type(e).__mro__:
        title = _CLASS_TITLES.get(cls.__name__)
        if title is not None:
            return title
    return None


def _error_problem(e: FairallocError) -> Response:
    """The problem document of a library error: its code, message and where it is."""
    code = str(getattr(e, "code", "") or "FA935")
    status, location = 422, ""
    extra: dict[str, Any] = {}
    message = str(e)
    if isinstance(e, ServiceError):
        status, location, message = e.status, e.location, e.message
        if code == "FA925":
            return problem(
                status, code, message, location=location, headers={"WWW-Authenticate": "Bearer"}
            )
    elif isinstance(e, PolicyError):
        first = e.issues[0]
        code, location = first.code, str(first.span)
        extra = {
            "issues": [
                {"code": i.code, "message": i.message, "location": str(i.span)} for i in e.issues
            ]
        }
    elif isinstance(e, PopulationError):
        first_p = e.issues[0]
        code = first_p.code
        location = f"column {first_p.column}" if first_p.column else "body.residents"
        extra = {
            "issues": [
                {
                    "code": i.code,
                    "column": i.column,
                    "message": i.message,
                    "ids": list(i.ids),
                    "values": [str(v) for v in i.values],
                    "valid": i.valid,
                    "count": i.count,
                }
                for i in e.issues
            ]
        }
    elif isinstance(e, RecordsError):
        status = 404 if code == "FA704" else 409
        location = f"record {e.record}" if e.record is not None else ""
        message = e.message
    elif isinstance(e, ReviewError):
        status = 422 if code in ("FA784", "FA793", "FA798") else 409
        location = f"case {e.case}" if e.case else ""
        message = e.message
    elif isinstance(e, MissingDependency):
        status = 501
    else:
        location = str(getattr(e, "where", "") or getattr(e, "argument", "") or "")
        message = str(getattr(e, "message", "") or e)
    message = message.removeprefix(f"{code} ")
    title = None if isinstance(e, ServiceError) else _title(e)
    return problem(status, code, message, location=location, title=title, extra=extra)


def _location(loc: tuple[Any, ...]) -> str:
    out = ""
    for part in loc:
        out += f"[{part}]" if isinstance(part, int) else (f".{part}" if out else str(part))
    return out


# -- callers ------------------------------------------------------------------------------------


@dataclass(frozen=True, slots=True)
class Caller:
    """Who is calling: the token's name, scopes and, for a resident's token, the resident."""

    name: str
    scopes: frozenset[str]
    resident: str | None
    policies: tuple[str, ...]

    def may(self, scope: str) -> bool:
        """Whether the token has ``scope`` (``admin`` has them all)."""
        return scope in self.scopes or "admin" in self.scopes

    def check_policy(self, name: str) -> None:
        """Refuse a policy the token is not for."""
        if self.policies and name not in self.policies:
            raise ServiceError(
                "FA926", "this token is not for this policy", status=403, location="path policy"
            )

    def check_resident(self, resident: str, location: str) -> None:
        """Refuse another resident's data to a token that speaks for one resident."""
        if self.resident is not None and resident != self.resident:
            raise ServiceError(
                "FA927",
                "this token speaks for one resident and reads that resident's data only",
                status=403,
                location=location,
            )

    def check_not_resident(self) -> None:
        """Refuse a route that returns several residents' data to a resident's token."""
        if self.resident is not None:
            raise ServiceError(
                "FA927",
                "this token speaks for one resident: it may not read data about others",
                status=403,
            )


#: Routes that need no token (and OPTIONS, answered by the CORS layer when configured).
OPEN_PATHS = frozenset({"/health", "/openapi.json"})


def authenticate(header: str, tokens: Mapping[str, Caller]) -> Caller:
    """The caller whose token the ``Authorization`` header carries.

    Raises:
        ServiceError: ``FA925`` (401) without a header, with another scheme, or with a token
            whose hash is not configured.
    """
    scheme, _, token = header.partition(" ")
    if not header:
        raise ServiceError(
            "FA925",
            "no bearer token: send `Authorization: Bearer TOKEN`",
            status=401,
            location="header Authorization",
        )
    if scheme.lower() != "bearer" or not token.strip():
        raise ServiceError(
            "FA925",
            "the Authorization header is not `Bearer TOKEN`",
            status=401,
            location="header Authorization",
        )
    found = tokens.get(hashlib.sha256(token.strip().encode("utf-8")).hexdigest())
    if found is None:
        raise ServiceError(
            "FA925", "the bearer token is not valid", status=401, location="header Authorization"
        )
    return found


def _caller(request: Request) -> Caller:
    """The caller the guard authenticated before the body was read."""
    found = request.scope.get("fairalloc.caller")
    if isinstance(found, Caller):
        return found
    return authenticate(request.headers.get("authorization", ""), request.app.state.tokens)


def need(scope: Scope) -> Callable[[Request], Caller]:
    """A dependency: the caller, who must hold ``scope``."""

    def check(request: Request) -> Caller:
        caller = _caller(request)
        if not caller.may(scope):
            raise ServiceError(
                "FA926",
                f"this needs a token with the `{scope}` scope",
                status=403,
                location="header Authorization",
            )
        return caller

    check.__name__ = f"need_{scope}"
    return check


Reader = Annotated[Caller, Depends(need("read"))]
Decider = Annotated[Caller, Depends(need("decide"))]
Reviewer = Annotated[Caller, Depends(need("review"))]
Admin = Annotated[Caller, Depends(need("admin"))]

# -- request bodies -----------------------------------------------------------------------------

Record = dict[str, Any]


class _Body(BaseModel):
    model_config = ConfigDict(extra="forbid")


class ResidentsBody(_Body):
    """Residents' records (attribute name to value, as the policy's schema names them)."""

    residents: Annotated[list[Record], Field(min_length=1)]
    as_of: dt.date | None = Field(None, description="the date whose parameter values apply")


class ExplainBody(ResidentsBody):
    """Residents to evaluate together and explain (all of them, or those in ``ids``)."""

    ids: list[str] | None = Field(None, description="the residents to explain; all by default")
    lang: Lang = "en"
    counterfactuals: bool = True
    target_rank: Annotated[int, Field(ge=1)] | None = None


class AllocateBody(ResidentsBody):
    """Residents to allocate among."""

    capacity: Annotated[int, Field(ge=0)] | None = None


class _LogBody(_Body):
    operator: Annotated[str, Field(min_length=1, max_length=200)]
    residents: list[Record] | None = Field(
        None, description="the applicants; the policy's resident pool when absent"
    )


class RegisterBody(_Body):
    """A policy version's approval."""

    approved_by: Annotated[str, Field(min_length=1)]
    approved_at: dt.date
    until: dt.date | None = None
    operator: Annotated[str, Field(min_length=1, max_length=200)]


class FreezeBody(_LogBody):
    """Freeze the applicant list."""


class DrawBody(_Body):
    """The lottery seed drawn after a freeze: the value drawn, or a public randomness value."""

    freeze: Annotated[int, Field(ge=0)]
    seed: str | None = None
    public_randomness: str | None = None
    how: Annotated[str, Field(min_length=1)]
    operator: Annotated[str, Field(min_length=1, max_length=200)]


class DecideBody(_LogBody):
    """Allocate over a frozen list with its seed, and record the decision."""

    freeze: Annotated[int, Field(ge=0)]
    seed: Annotated[int, Field(ge=0)] | None = None
    capacity: Annotated[int, Field(ge=0)] | None = None
    as_of: dt.date | None = None


class ReceiptBody(_Body):
    """A resident's receipt for a recorded decision."""

    decision: Annotated[int, Field(ge=0)]
    resident: Annotated[str, Field(min_length=1)]
    residents: list[Record] | None = None


class VerifyBody(_Body):
    """Verify the log, re-running decisions on these residents (the pool by default)."""

    residents: list[Record] | None = None


class CorrectionBody(_Body):
    """A corrected fact and the reference to its evidence."""

    attribute: str
    value: Any
    evidence: str


class ReviewOpenBody(_LogBody):
    """Open a review case on a recorded decision."""

    decision: Annotated[int, Field(ge=0)]
    case: Annotated[str, Field(min_length=1)]
    resident: Annotated[str, Field(min_length=1)]
    grounds: Annotated[str, Field(min_length=1)]
    corrections: list[CorrectionBody] = []
    filed: dt.date


class ReviewAnswerBody(_LogBody):
    """Answer a case: the case document as opened."""

    case: dict[str, Any]
    on: dt.date
    lang: Lang = "en"


class RoundBody(_LogBody):
    """Run and record the next round of a rotation from the state the last round left."""

    freeze: Annotated[int, Field(ge=0)]
    seed: Annotated[int, Field(ge=0)] | None = None
    state: dict[str, Any] | None = None
    capacity: Annotated[int, Field(ge=0)] | None = None
    as_of: dt.date | None = None


# -- middleware ---------------------------------------------------------------------------------

ASGIApp = Callable[..., Awaitable[None]]
Message = MutableMapping[str, Any]


class _Guard:
    """Request size limit, JSON-only bodies, the catch-all 500 and the access log, in one layer.

    Outermost of the application's own layers: an unexpected exception below is answered
    with a generic problem document and logged as its class name only (never a trace, which
    could hold residents' data).
    """

    def __init__(
        self, app: ASGIApp, *, max_body: int, log: bool, tokens: Mapping[str, Caller]
    ) -> None:
        self.app = app
        self.max_body = max_body
        self.tokens = tokens
        self.log = logging.getLogger(ACCESS_LOGGER) if log else None

    async def __call__(
        self,
        scope: MutableMapping[str, Any],
        receive: Callable[[], Awaitable[Message]],
        send: Callable[[Message], Awaitable[None]],
    ) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        start = time.perf_counter()
        state = {"status": 0, "out": 0, "in": 0}

        async def sending(message: Message) -> None:
            if message["type"] == "http.response.start":
                state["status"] = int(message["status"])
            elif message["type"] == "http.response.body":
                state["out"] += len(message.get("body", b""))
            await send(message)

        async def receiving() -> Message:
            message = await receive()
            if message["type"] == "http.request":
                state["in"] += len(message.get("body", b""))
                if state["in"] > self.max_body:
                    raise _TooLarge(self.max_body)
            return message

        try:
            refusal = self._refusal(scope)
            if refusal is not None:
                await refusal(scope, receive, sending)
            else:
                await self.app(scope, receiving, sending)
        except Exception as e:  # the last line: no trace leaves the service
            logging.getLogger("fairalloc.serve").error("unexpected %s", type(e).__name__)
            if not state["status"]:
                await problem(500, "FA949", "the service failed to answer; the error was logged")(
                    scope, receive, sending
                )
        if self.log is not None:
            route = scope.get("route")
            self.log.info(
                json.dumps(
                    {
                        "time": dt.datetime.now(dt.UTC).isoformat(timespec="milliseconds"),
                        "method": scope.get("method"),
                        "route": getattr(route, "path", None) or "(none)",
                        "status": state["status"],
                        "ms": round((time.perf_counter() - start) * 1000, 2),
                        "bytes_in": state["in"],
                        "bytes_out": state["out"],
                        "token": getattr(scope.get("fairalloc.caller"), "name", "-"),
                    }
                )
            )

    def _refusal(self, scope: MutableMapping[str, Any]) -> Response | None:
        headers = dict(scope.get("headers", ()))
        if scope.get("path") not in OPEN_PATHS and scope.get("method") != "OPTIONS":
            # Before anything of the body is read: no token, no work.
            header = headers.get(b"authorization", b"").decode("latin-1")
            try:
                scope["fairalloc.caller"] = authenticate(header, self.tokens)
            except ServiceError as e:
                return _error_problem(e)
        length = headers.get(b"content-length")
        if length is not None:
            try:
                n = int(length)
            except ValueError:
                n = -1
            if n < 0:
                return problem(
                    400, "FA922", "Content-Length is not a number", location="header Content-Length"
                )
            if n > self.max_body:
                return _too_large(self.max_body)
            if n == 0:
                return None
        if scope.get("method") in ("POST", "PUT", "PATCH") and (
            length or b"transfer-encoding" in headers
        ):
            kind = headers.get(b"content-type", b"").split(b";")[0].strip().lower()
            if kind != b"application/json" and not kind.endswith(b"+json"):
                return problem(
                    415,
                    "FA934",
                    "send the body as JSON (Content-Type: application/json)",
                    location="header Content-Type",
                )
        return None


class _Slot:
    """One request's place among the computations that may run at once.

    Released when its computation ends, in the worker thread's ``finally``, or by the request
    when the computation never started (a timeout while queued for a thread).
    """

    def __init__(self, loop: asyncio.AbstractEventLoop, slots: anyio.CapacityLimiter) -> None:
        self.loop = loop
        self.slots = slots
        self.lock = threading.Lock()
        self.state = "queued"  # queued -> waiting -> running -> done, or dropped

    def work(self, fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        with self.lock:
            if self.state == "dropped":  # pragma: no cover - anyio skips a cancelled call
                raise TimeoutError
            self.state = "running"
        try:
            return fn(*args, **kwargs)
        finally:
            with self.lock:
                self.state = "done"
            with contextlib.suppress(RuntimeError):  # the service stopped meanwhile
                self.loop.call_soon_threadsafe(self.slots.release_on_behalf_of, self)

    def leave(self) -> None:
        """Called by the request as it ends: release the slot unless a thread holds it."""
        with self.lock:
            if self.state != "waiting":  # never acquired, or its thread releases it
                return
            self.state = "dropped"  # acquired, but the thread never started: release here
        self.slots.release_on_behalf_of(self)


class _TooLarge(HTTPException):
    """Raised while the body is read, when it grows past the limit."""

    def __init__(self, limit: int) -> None:
        super().__init__(413)
        self.limit = limit


def _too_large(limit: int) -> Response:
    return problem(
        413, "FA923", f"the request body is larger than the limit of {limit} bytes", location="body"
    )


# -- the application ----------------------------------------------------------------------------


def build_app(config: ServiceConfig, service: Service | None = None) -> FastAPI:
    """The FastAPI application serving ``config``'s policies.

    Args:
        config: The configuration (paths resolved).
        service: The loaded service; loaded from ``config`` when not given.
    """
    svc = service if service is not None else Service(config)
    limits = config.limits
    app = FastAPI(
        responses=_problems(*_COMMON),
        title="fairalloc",
        version=__version__,
        summary="Allocation policies as a service: validate, evaluate, explain, allocate, record.",
        description=(
            "Every error is a problem document (RFC 9457) with `code`, `message` and `location`;"
            " codes are listed in the error reference. Every route but `/health` and"
            " `/openapi.json` needs"
            " `Authorization: Bearer TOKEN`."
        ),
        docs_url=None,
        redoc_url=None,
        openapi_url="/openapi.json",
    )
    app.state.service = svc
    generate = app.openapi

    def openapi() -> dict[str, Any]:
        """The OpenAPI document, with every error as ``application/problem+json``."""
        if app.openapi_schema is None:
            doc = generate()
            for operations in doc.get("paths", {}).values():
                for op in operations.values():
                    for status, response in op.get("responses", {}).items():
                        content = response.get("content", {})
                        if int(status) >= 400 and "application/json" in content:
                            response["content"] = {PROBLEM: content["application/json"]}
                        elif "application/json" in content:  # the library's own JSON form
                            content["application/json"]["schema"] = {"type": "object"}
            app.openapi_schema = doc
        return app.openapi_schema

    app.openapi = openapi  # type: ignore[method-assign]
    app.state.tokens = {
        t.sha256: Caller(t.name, frozenset(t.scopes), t.resident, t.policies) for t in config.tokens
    }
    slots = anyio.CapacityLimiter(limits.workers)  # computations under way, abandoned included
    threads = anyio.CapacityLimiter(limits.workers)

    async def run(fn: Callable[..., T], *args: Any, **kwargs: Any) -> T:
        """``fn`` in a worker thread, within the time limit, ``limits.workers`` at a time.

        A request that times out is answered at once; its computation cannot be stopped and
        keeps its slot until it ends, so abandoned computations never exceed the limit.
        """
        slot = _Slot(asyncio.get_running_loop(), slots)
        try:
            with anyio.fail_after(limits.timeout_seconds):
                await slots.acquire_on_behalf_of(slot)
                slot.state = "waiting"
                return await anyio.to_thread.run_sync(
                    partial(slot.work, fn, *args, **kwargs), limiter=threads, abandon_on_cancel=True
                )
        except TimeoutError:
            raise ServiceError(
                "FA932",
                f"the answer took longer than {limits.timeout_seconds:g} s; try fewer residents",
                status=503,
            ) from None
        finally:
            slot.leave()

    def served(caller: Caller, name: str) -> Served:
        caller.check_policy(name)
        return svc.get(name)

    def batch(residents: list[Record] | None, caller: Caller, s: Served) -> None:
        if residents is not None and len(residents) > limits.max_batch:
            raise ServiceError(
                "FA924",
                f"{len(residents)} residents in one request; the limit is {limits.max_batch}",
                status=413,
                location="body.residents",
            )
        if caller.resident is not None and residents is not None:
            key = _id_name(s)
            for k, r in enumerate(residents):
                caller.check_resident(str(r.get(key, "")), f"body.residents[{k}].{key}")

    # -- errors ------------------------------------------------------------------------
    @app.exception_handler(FairallocError)
    async def on_error(request: Request, e: FairallocError) -> Response:
        return _error_problem(e)

    @app.exception_handler(RequestValidationError)
    async def on_invalid(request: Request, e: RequestValidationError) -> Response:
        errors = list(e.errors())
        if any(err.get("type") == "json_invalid" for err in errors):
            err = next(x for x in errors if x.get("type") == "json_invalid")
            ctx = err.get("ctx") or {}
            pos = err.get("loc", ("body", 0))[-1]
            return problem(
                400,
                "FA921",
                f"the body is not valid JSON: {ctx.get('error', 'decode error')} at {pos}",
                location="body",
            )
        listed = [
            {"location": _location(tuple(x["loc"])), "message": x["msg"], "type": x["type"]}
            for x in errors
        ]
        first = listed[0]
        more = f" (and {len(listed) - 1} more)" if len(listed) > 1 else ""
        return problem(
            422,
            "FA922",
            f"{first['location']}: {first['message']}{more}",
            location=first["location"],
            extra={"errors": listed},
        )

    @app.exception_handler(HTTPException)
    async def on_http(request: Request, e: HTTPException) -> Response:
        if isinstance(e, _TooLarge):
            return _too_large(e.limit)
        if e.status_code == 405:
            return problem(
                405, "FA933", "this endpoint does not take this method", title="Method not allowed"
            )
        if e.status_code == 404:
            return problem(404, "FA933", "no endpoint at this address")
        if e.status_code == 413:
            return _too_large(limits.max_body_bytes)
        return problem(e.status_code, "FA922", str(e.detail), location="body")

    if config.server.cors_origins:
        from starlette.middleware.cors import CORSMiddleware

        app.add_middleware(
            CORSMiddleware,
            allow_origins=list(config.server.cors_origins),
            allow_methods=["GET", "POST"],
            allow_headers=["Authorization", "Content-Type"],
        )
    app.add_middleware(
        _Guard,
        max_body=limits.max_body_bytes,
        log=config.server.access_log,
        tokens=app.state.tokens,
    )

    # -- routes ------------------------------------------------------------------------
    @app.get("/health", tags=["service"], response_class=JSONDoc)
    async def health() -> Response:
        """Whether the service is up (no token needed)."""
        return JSONDoc({"status": "ok", "version": __version__})

    @app.get("/v1/policies", tags=["service"], response_class=JSONDoc)
    async def policies(caller: Reader) -> Response:
        """The policies served: name, id, version, title, pool size, whether a log is kept."""
        return JSONDoc({"policies": svc.listing(caller.policies)})

    @app.post(
        "/v1/policies/{policy}/validate",
        tags=["residents"],
        response_class=JSONDoc,
        responses=_problems(400, 413, 415),
    )
    async def validate(policy: str, body: ResidentsBody, caller: Reader) -> Response:
        """Check residents' records against the policy's attribute schema: every problem found."""
        s = served(caller, policy)
        batch(body.residents, caller, s)
        return JSONDoc(await run(svc.validate, s, body.residents))

    @app.post(
        "/v1/policies/{policy}/evaluate",
        tags=["residents"],
        response_class=JSONDoc,
        responses=_problems(400, 413, 415),
    )
    async def evaluate(policy: str, body: ResidentsBody, caller: Reader) -> Response:
        """Evaluate the residents given, together: eligibility, points, scales, score."""
        s = served(caller, policy)
        batch(body.residents, caller, s)
        return JSONDoc(await run(svc.evaluate, s, body.residents, body.as_of))

    @app.post(
        "/v1/policies/{policy}/explain",
        tags=["residents"],
        response_class=JSONDoc,
        responses=_problems(400, 413, 415),
    )
    async def explain(policy: str, body: ExplainBody, caller: Reader) -> Response:
        """Explain the residents given (evaluated together): rules, points, what would change."""
        s = served(caller, policy)
        batch(body.residents, caller, s)
        found = await run(
            svc.explain,
            s,
            body.residents,
            ids=body.ids,
            lang=body.lang,
            counterfactuals=body.counterfactuals,
            target_rank=body.target_rank,
            as_of=body.as_of,
        )
        return JSONDoc({"explanations": found})

    @app.post(
        "/v1/policies/{policy}/allocate",
        tags=["residents"],
        response_class=JSONDoc,
        responses=_problems(400, 413, 415),
    )
    async def allocate(policy: str, body: AllocateBody, caller: Reader) -> Response:
        """Allocate among the residents given: the summary and every resident's outcome."""
        caller.check_not_resident()
        s = served(caller, policy)
        batch(body.residents, caller, s)
        return JSONDoc(
            await run(svc.allocate, s, body.residents, capacity=body.capacity, as_of=body.as_of)
        )

    @app.get(
        "/v1/policies/{policy}/residents/{resident}",
        tags=["pool"],
        response_class=JSONDoc,
        responses=_problems(
            409,
        ),
    )
    async def pool_record(policy: str, resident: str, caller: Reader) -> Response:
        """One pool resident's evaluation and outcome."""
        caller.check_resident(resident, "path resident")
        s = served(caller, policy)
        return JSONDoc(await run(svc.pool_record, s, resident))

    @app.get(
        "/v1/policies/{policy}/residents/{resident}/explanation",
        tags=["pool"],
        response_class=JSONDoc,
        responses=_problems(
            409,
        ),
    )
    async def pool_explanation(
        *,
        policy: str,
        resident: str,
        caller: Reader,
        lang: Lang = "en",
        counterfactuals: bool = True,
        format: Literal["json", "text", "md", "html"] = "json",
    ) -> Response:
        """One pool resident's explanation (JSON form, or rendered as text, md or html)."""
        caller.check_resident(resident, "path resident")
        s = served(caller, policy)
        found = await run(
            svc.pool_explanation,
            s,
            resident,
            lang=lang,
            counterfactuals=counterfactuals,
            format=format,
        )
        return JSONDoc(found)

    @app.get(
        "/v1/policies/{policy}/allocation",
        tags=["pool"],
        response_class=JSONDoc,
        responses=_problems(
            409,
        ),
    )
    async def pool_summary(policy: str, caller: Reader) -> Response:
        """The pool's allocation: capacity, units used and cut-offs of each category."""
        caller.check_not_resident()
        s = served(caller, policy)
        return JSONDoc(await run(svc.pool_summary, s))

    @app.get("/v1/policies/{policy}/criteria", tags=["documents"], response_class=JSONDoc)
    async def criteria(
        *,
        policy: str,
        caller: Reader,
        lang: Lang = "en",
        format: Literal["md", "html"] = "md",
        large_print: bool = False,
    ) -> Response:
        """The policy's selection criteria as a public document (Markdown or HTML)."""
        s = served(caller, policy)
        return JSONDoc(
            await run(svc.criteria, s, lang=lang, format=format, large_print=large_print)
        )

    @app.get(
        "/v1/policies/{policy}/audit",
        tags=["documents"],
        response_class=JSONDoc,
        responses=_problems(
            409,
        ),
    )
    async def audit(
        *,
        policy: str,
        caller: Admin,
        capacity: Annotated[int | None, Query(ge=0)] = None,
        strata: str | None = None,
        publication: bool = True,
    ) -> Response:
        """The fairness audit of the pool (small cells suppressed unless `publication=false`)."""
        s = served(caller, policy)
        return JSONDoc(
            await run(svc.audit, s, capacity=capacity, strata=strata, publication=publication)
        )

    # -- the decision log --------------------------------------------------------------
    @app.get(
        "/v1/policies/{policy}/log/head",
        tags=["log"],
        response_class=JSONDoc,
        responses=_problems(
            409,
        ),
    )
    async def head(policy: str, caller: Reader) -> Response:
        """The log's tree head, to publish and to check receipts against."""
        return JSONDoc(await run(svc.head, served(caller, policy)))

    @app.get(
        "/v1/policies/{policy}/log/records",
        tags=["log"],
        response_class=JSONDoc,
        responses=_problems(
            409,
        ),
    )
    async def records(policy: str, caller: Admin) -> Response:
        """Every record of the log (commitments, never residents' rows)."""
        return JSONDoc({"records": await run(svc.records, served(caller, policy))})

    @app.post(
        "/v1/policies/{policy}/log/register",
        tags=["log"],
        response_class=JSONDoc,
        responses=_problems(400, 413, 415, 409),
    )
    async def register(policy: str, body: RegisterBody, caller: Admin) -> Response:
        """Record the served policy's version, who approved it and when."""
        s = served(caller, policy)
        return JSONDoc(
            await run(
                svc.register,
                s,
                approved_by=body.approved_by,
                approved_at=body.approved_at,
                until=body.until,
                operator=body.operator,
            )
        )

    @app.post(
        "/v1/policies/{policy}/log/freeze",
        tags=["log"],
        response_class=JSONDoc,
        responses=_problems(400, 413, 415, 409),
    )
    async def freeze(policy: str, body: FreezeBody, caller: Decider) -> Response:
        """Freeze the applicant list (the residents given, or the pool) before any draw."""
        caller.check_not_resident()
        s = served(caller, policy)
        batch(body.residents, caller, s)
        return JSONDoc(await run(svc.freeze, s, body.residents, operator=body.operator))

    @app.post(
        "/v1/policies/{policy}/log/draw",
        tags=["log"],
        response_class=JSONDoc,
        responses=_problems(400, 413, 415, 409),
    )
    async def draw(policy: str, body: DrawBody, caller: Decider) -> Response:
        """Record the lottery seed drawn after a freeze."""
        caller.check_not_resident()
        s = served(caller, policy)
        return JSONDoc(
            await run(
                svc.draw,
                s,
                freeze=body.freeze,
                seed=body.seed,
                public_randomness=body.public_randomness,
                how=body.how,
                operator=body.operator,
            )
        )

    @app.post(
        "/v1/policies/{policy}/log/decide",
        tags=["log"],
        response_class=JSONDoc,
        responses=_problems(400, 413, 415, 409),
    )
    async def decide(policy: str, body: DecideBody, caller: Decider) -> Response:
        """Allocate over the frozen list with its recorded seed, and record the decision."""
        caller.check_not_resident()
        s = served(caller, policy)
        batch(body.residents, caller, s)
        return JSONDoc(
            await run(
                svc.decide,
                s,
                body.residents,
                freeze=body.freeze,
                seed=body.seed,
                capacity=body.capacity,
                as_of=body.as_of,
                operator=body.operator,
            )
        )

    @app.post(
        "/v1/policies/{policy}/log/receipt",
        tags=["log"],
        response_class=JSONDoc,
        responses=_problems(400, 413, 415, 409),
    )
    async def receipt(policy: str, body: ReceiptBody, caller: Reader) -> Response:
        """A resident's receipt for a recorded decision: their outcome and the proofs."""
        caller.check_resident(body.resident, "body.resident")
        if body.residents is not None:
            caller.check_not_resident()
        s = served(caller, policy)
        batch(body.residents, caller, s)
        return JSONDoc(
            await run(
                svc.receipt, s, body.residents, decision=body.decision, resident=body.resident
            )
        )

    @app.post(
        "/v1/policies/{policy}/log/verify",
        tags=["log"],
        response_class=JSONDoc,
        responses=_problems(400, 413, 415, 409),
    )
    async def verify(policy: str, body: VerifyBody, caller: Admin) -> Response:
        """Check the log (chain, proofs, seeds) and re-run its decisions."""
        s = served(caller, policy)
        batch(body.residents, caller, s)
        return JSONDoc(await run(svc.verify, s, body.residents))

    @app.post(
        "/v1/policies/{policy}/log/round",
        tags=["log"],
        response_class=JSONDoc,
        responses=_problems(400, 413, 415, 409),
    )
    async def round_(policy: str, body: RoundBody, caller: Decider) -> Response:
        """Run and record the next round of the rotation; returns the state to keep."""
        caller.check_not_resident()
        s = served(caller, policy)
        batch(body.residents, caller, s)
        return JSONDoc(
            await run(
                svc.round,
                s,
                body.residents,
                freeze=body.freeze,
                seed=body.seed,
                state=body.state,
                capacity=body.capacity,
                as_of=body.as_of,
                operator=body.operator,
            )
        )

    @app.post(
        "/v1/policies/{policy}/review/open",
        tags=["review"],
        response_class=JSONDoc,
        responses=_problems(400, 413, 415, 409),
    )
    async def review_open(policy: str, body: ReviewOpenBody, caller: Reviewer) -> Response:
        """Open a review case on a recorded decision; keep the case returned to answer it."""
        caller.check_not_resident()
        s = served(caller, policy)
        batch(body.residents, caller, s)
        return JSONDoc(
            await run(
                svc.review_open,
                s,
                body.residents,
                decision=body.decision,
                case=body.case,
                resident=body.resident,
                grounds=body.grounds,
                corrections=[(c.attribute, c.value, c.evidence) for c in body.corrections],
                filed=body.filed,
                operator=body.operator,
            )
        )

    @app.post(
        "/v1/policies/{policy}/review/answer",
        tags=["review"],
        response_class=JSONDoc,
        responses=_problems(400, 413, 415, 409),
    )
    async def review_answer(policy: str, body: ReviewAnswerBody, caller: Reviewer) -> Response:
        """Review a case as opened and record the answer; returns the complainant's answer."""
        caller.check_not_resident()
        s = served(caller, policy)
        batch(body.residents, caller, s)
        return JSONDoc(
            await run(
                svc.review_answer,
                s,
                body.residents,
                case=body.case,
                on=body.on,
                lang=body.lang,
                operator=body.operator,
            )
        )

    @app.get(
        "/v1/policies/{policy}/review/cases",
        tags=["review"],
        response_class=JSONDoc,
        responses=_problems(
            409,
        ),
    )
    async def cases(policy: str, caller: Reviewer, as_of: dt.date | None = None) -> Response:
        """Every review case and its state (filed, answered, overdue) on `as_of` (today)."""
        caller.check_not_resident()
        s = served(caller, policy)
        day = as_of or dt.datetime.now(dt.UTC).date()
        return JSONDoc({"cases": await run(svc.cases, s, day)})

    return app


def _id_name(s: Served) -> str:
    """The name of the policy's id attribute."""
    for name, attr in s.policy.attributes.items():
        if getattr(attr, "role", None) == "id":
            return name
    return "id"
