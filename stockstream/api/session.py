"""Dashboard sign-in (``/session``) and the admin route (``/admin/keys``).

``POST /session`` with ``{"key": "ssk_…"}`` (JSON only: a cross-site form cannot send it
without a CORS preflight, which this API never grants) checks the key and sets the session
cookie — ``HttpOnly`` (no script reads it), ``Secure`` (browsers treat http://127.0.0.1 and
localhost as secure origins, so it also works on loopback), ``SameSite=Strict`` (never sent on a
cross-site request) — holding only a signed key id and expiry. ``GET /session`` tells the
dashboard whether it must sign in (always 200, so no console error); ``DELETE /session``
clears the cookie. Revoking the key ends every session made with it.
"""

from __future__ import annotations

import logging

from fastapi import APIRouter, HTTPException, Request, Response
from pydantic import BaseModel, Field, ValidationError
from starlette.concurrency import run_in_threadpool

from stockstream.api.auth import SESSION_COOKIE, Authenticator, Principal
from stockstream.api.keys import KeyStore

log = logging.getLogger(__name__)


class SignIn(BaseModel):
    key: str = Field(max_length=200)


class SessionState(BaseModel):
    auth: bool
    signed_in: bool
    key_id: str | None = None
    scopes: list[str] = []


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

    @router.get("/session", include_in_schema=False)
    def session_state(request: Request) -> SessionState:
        principal = principal_of(request)
        if authenticator is None:
            return SessionState(auth=False, signed_in=True)
        if principal is None:
            return SessionState(auth=True, signed_in=False)
        return SessionState(auth=True, signed_in=True, key_id=principal.key_id, scopes=sorted(principal.scopes))

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
        if principal is None:
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
