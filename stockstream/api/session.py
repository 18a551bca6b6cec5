"""Dashboard sign-in (``/session``) and the admin route (``/admin/keys``).

``POST /session`` with ``{"key": "ssk_…"}`` (JSON only: a cross-site form cannot send it
without a CORS preflight, which this API never grants) checks the key and sets the session
cookie — ``HttpOnly`` (no script reads it), ``Secure`` (browsers treat http://127.0.0.1 and
localhost as secure origins, so it also works on loopback), ``SameSite=Strict`` (never sent on a
cross-site request) — holding only a signed key id and expiry. ``GET /session`` tells the
dashboard whether it must sign in (always 200, so no console error); ``DELETE /session``
clears the cookie. Revoking the key ends every session made with it.

With OIDC sign-in configured (:mod:`stockstream.api.oidc`), ``GET /session/oidc`` sends the browser
to the identity provider (authorization code, PKCE, state and nonce kept in a signed, HttpOnly
``ss_oidc`` cookie that lives ten minutes, ``SameSite=Lax`` so that it comes back on the provider's
redirect) and ``GET /session/oidc/callback`` checks the state, exchanges the code, checks the ID
token and sets the same session cookie, holding the identity's id and scopes, then sends the
browser to ``/``. An identity without a stockstream scope gets 403 and no session.
"""

from __future__ import annotations

import hmac
import logging

from fastapi import APIRouter, HTTPException, Request, Response
from fastapi.responses import RedirectResponse
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from stockstream.api.auth import SESSION_COOKIE, Authenticator, Principal
from stockstream.api.keys import KeyStore
from stockstream.api.oidc import OidcProvider, OidcUnavailableError

LOGIN_COOKIE = "ss_oidc"
LOGIN_PATH = "/session/oidc"
LOGIN_LIFETIME_S = 600

log = logging.getLogger(__name__)


class SignIn(BaseModel):
    key: str = Field(max_length=200)


class SessionState(BaseModel):
    auth: bool
    signed_in: bool
    key_id: str | None = None
    scopes: list[str] = []
    oidc_login: bool = False  # the dashboard may offer "sign in with the identity provider" (GET /session/oidc)


class KeyInfo(BaseModel):
    key_id: str
    name: str
    scopes: list[str]
    created_at: str
    revoked_at: str | None


class KeyList(BaseModel):
    keys: list[KeyInfo]


def build_session_router(authenticator: Authenticator | None, store: KeyStore, lifetime_s: float) -> APIRouter:
    router = APIRouter()

    def principal_of(request: Request) -> Principal | None:
        return request.scope.get("state", {}).get("principal")  # type: ignore[no-any-return]

    provider = authenticator.oidc if authenticator is not None else None
    oidc_login = provider is not None and provider.config.login_enabled

    @router.get("/session", include_in_schema=False)
    def session_state(request: Request) -> SessionState:
        principal = principal_of(request)
        if authenticator is None:
            return SessionState(auth=False, signed_in=True)
        if principal is None:
            return SessionState(auth=True, signed_in=False, oidc_login=oidc_login)
        return SessionState(auth=True, signed_in=True, key_id=principal.key_id, scopes=sorted(principal.scopes),
                            oidc_login=oidc_login)

    if authenticator is not None and provider is not None and oidc_login:
        _add_oidc_routes(router, authenticator, provider, lifetime_s)

    @router.post("/session", include_in_schema=False)
    async def sign_in(request: Request, response: Response) -> SessionState:
        if not request.headers.get("content-type", "").startswith("application/json"):
            raise HTTPException(415, "send the key as JSON")
        try:
            body = SignIn.model_validate_json(await request.body())
        except ValidationError:
            raise HTTPException(422, 'the body is {"key": "ssk_…"}') from None
        origin = request.headers.get("origin")
        if origin is not None and origin != f"{request.url.scheme}://{request.headers.get('host', '')}":
            raise HTTPException(403, "cross-origin sign-in refused")
        if authenticator is None:
            return SessionState(auth=False, signed_in=True)
        principal = await run_in_threadpool(authenticator.from_bearer, body.key.strip())
        if principal is None or principal.via != "bearer":  # an API key; an identity provider's token is not one
            raise HTTPException(401, "unknown, revoked or malformed key")
        response.set_cookie(SESSION_COOKIE, authenticator.sessions.issue(principal.key_id), max_age=int(lifetime_s),
                            path="/", secure=True, httponly=True, samesite="strict")
        log.info("session opened for key %s", principal.key_id)
        return SessionState(auth=True, signed_in=True, key_id=principal.key_id, scopes=sorted(principal.scopes))

    @router.delete("/session", include_in_schema=False)
    def sign_out(response: Response) -> SessionState:
        response.delete_cookie(SESSION_COOKIE, path="/", secure=True, httponly=True, samesite="strict")
        return SessionState(auth=authenticator is not None, signed_in=authenticator is None)

    @router.get("/admin/keys", response_model=KeyList, tags=["admin"],
                summary="Every API key (ids, names, scopes, dates; never a secret or hash). Needs the admin scope")
    def list_keys() -> KeyList:
        return KeyList(keys=[KeyInfo.model_validate(record.public()) for record in store.list()])

    return router


def _add_oidc_routes(router: APIRouter, authenticator: Authenticator, provider: OidcProvider, lifetime_s: float) -> None:
    """``GET /session/oidc`` and its callback (only when OIDC sign-in is configured)."""

    @router.get(LOGIN_PATH, include_in_schema=False)
    async def oidc_start() -> Response:
        try:
            start = await run_in_threadpool(provider.start_login)
        except OidcUnavailableError as error:
            log.warning("%s", error)
            raise HTTPException(503, "the identity provider is unavailable; retry shortly") from None
        response = RedirectResponse(start.url, status_code=303)
        response.set_cookie(LOGIN_COOKIE, authenticator.sessions.seal(
            "oidc-login", {"s": start.state, "o": start.nonce, "v": start.verifier}, LOGIN_LIFETIME_S),
            max_age=LOGIN_LIFETIME_S, path=LOGIN_PATH, secure=True, httponly=True, samesite="lax")
        return response

    @router.get(f"{LOGIN_PATH}/callback", include_in_schema=False)
    async def oidc_callback(request: Request, code: str = "", state: str = "") -> Response:
        pending = authenticator.sessions.unseal("oidc-login", request.cookies.get(LOGIN_COOKIE, ""))
        if pending is None or not state or not hmac.compare_digest(str(pending.get("s", "")), state):
            raise HTTPException(400, "sign-in expired or was not started here: start again from the dashboard")
        if not code or len(code) > 2048:
            raise HTTPException(400, f"the identity provider sent no code ({request.query_params.get('error', '')[:100]})")
        try:
            identity = await run_in_threadpool(provider.finish_login, code, str(pending["v"]), str(pending["o"]))
        except OidcUnavailableError as error:
            log.warning("%s", error)
            raise HTTPException(503, "the identity provider is unavailable; retry shortly") from None
        if identity is None:
            raise HTTPException(401, "the identity provider's answer was refused: start again from the dashboard")
        if not identity.scopes:
            raise HTTPException(403, "your identity has no stockstream scope: ask for one at your identity provider")
        response = RedirectResponse("/", status_code=303)
        response.delete_cookie(LOGIN_COOKIE, path=LOGIN_PATH, secure=True, httponly=True, samesite="lax")
        response.set_cookie(SESSION_COOKIE, authenticator.sessions.issue(identity.subject_id, identity.scopes),
                            max_age=int(lifetime_s), path="/", secure=True, httponly=True, samesite="strict")
        log.info("session opened for identity %s (%s) through the identity provider", identity.subject_id,
                 ",".join(sorted(identity.scopes)))
        return response
