"""``stockstream apikey create|list|revoke``: API keys of ``stockstream serve``.

Writes need a Redis user allowed to write ``API_KEYS_PREFIX*`` (an operator's, never the
materializer's or the API's); the token is printed once, only its argon2 hash is stored.
Exit 1 for an unknown key or an unreachable Redis, 2 for invalid input.
"""

from __future__ import annotations

import json
from collections.abc import Callable
from typing import TYPE_CHECKING, Annotated, TypeVar

import typer
from rich.table import Table
from rich.text import Text

from stockstream.console import console

apikey_app = typer.Typer(help="Create, list and revoke API keys of the query API and dashboard.",
                         no_args_is_help=True)
out = console()
err = console(stderr=True)
if TYPE_CHECKING:
    from stockstream.api.keys import KeyStore

T = TypeVar("T")
AsJson = Annotated[bool, typer.Option("--json", help="Print JSON.")]


def _store() -> KeyStore:
    from processors.materialize.settings import redis_client
    from stockstream.api.keys import KeyStore
    from stockstream.api.settings import ApiSettings

    settings = ApiSettings()
    settings.register_secrets()
    return KeyStore(redis_client(settings, settings.redis_socket_timeout_s), settings.api_keys_prefix)


def _guarded(action: Callable[[], T]) -> T:
    """Run ``action``; an invalid request exits 2, an unknown key or an unreachable Redis 1."""
    import redis

    from stockstream.api.keys import ApiKeyError, UnknownKeyError

    try:
        return action()
    except UnknownKeyError as error:
        err.print(Text(f"apikey: {error}"))
        raise typer.Exit(1) from None
    except ApiKeyError as error:
        err.print(Text(f"apikey: {error}"))
        raise typer.Exit(2) from None
    except (redis.RedisError, OSError) as error:
        err.print(Text(f"apikey: Redis unavailable ({type(error).__name__})"))
        raise typer.Exit(1) from None


@apikey_app.command("create")
def create(
    name: Annotated[str, typer.Option("--name", help="Who or what uses the key (shown in list).")],
    scope: Annotated[list[str] | None, typer.Option("--scope", help="read or admin; repeatable.", show_default="read")] = None,
    as_json: AsJson = False,
) -> None:
    """Create a key; prints the token once (store it now: it cannot be shown again)."""
    record, token = _guarded(lambda: _store().create(name, scope or ["read"]))
    if as_json:
        print(json.dumps({**record.public(), "token": token}))
        return
    out.print(Text(f"key {record.key_id} ({', '.join(sorted(record.scopes))}) for {record.name}"))
    out.print(Text(token), soft_wrap=True)
    err.print("Shown once: give it as 'Authorization: Bearer <token>' or sign in to the dashboard with it.")


@apikey_app.command("list")
def list_keys(as_json: AsJson = False) -> None:
    """Every key: id, name, scopes, created, revoked (never a secret)."""
    records = _guarded(lambda: _store().list())
    if as_json:
        print(json.dumps([record.public() for record in records]))
        return
    table = Table("id", "name", "scopes", "created", "revoked")
    for record in records:
        table.add_row(Text(record.key_id), Text(record.name), Text(",".join(sorted(record.scopes))),
                      Text(record.created_at), Text(record.revoked_at or "-"))
    out.print(table)


@apikey_app.command("revoke")
def revoke(key_id: Annotated[str, typer.Argument(help="The key id (from list).")]) -> None:
    """Revoke a key: requests and dashboard sessions with it are refused from the next request on."""
    record = _guarded(lambda: _store().revoke(key_id))
    out.print(Text(f"revoked {record.key_id} ({record.name}) at {record.revoked_at}"))


def register(app: typer.Typer) -> None:
    app.add_typer(apikey_app, name="apikey")
