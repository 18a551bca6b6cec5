"""``REDIS_PASSWORD_FILE``: the Redis password from a mounted Secret file (the manifests' way), never an env value."""

from __future__ import annotations

from pathlib import Path

import pytest
from pydantic import ValidationError

from processors.runtime.settings import RedisSettings


def test_redis_password_from_a_file(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "password"
    secret.write_text("s3cret-from-file\n")
    monkeypatch.delenv("REDIS_PASSWORD", raising=False)
    monkeypatch.setenv("REDIS_PASSWORD_FILE", str(secret))
    monkeypatch.setenv("REDIS_USERNAME", "serve")
    settings = RedisSettings(_env_file=None)
    _url, kwargs = settings.redis_connection()
    assert (kwargs["username"], kwargs["password"]) == ("serve", "s3cret-from-file")
    assert "s3cret" not in repr(settings)

    monkeypatch.setenv("REDIS_PASSWORD", "another")
    with pytest.raises(ValidationError, match="not both"):
        RedisSettings(_env_file=None)
    monkeypatch.delenv("REDIS_PASSWORD")
    secret.write_text("\n")
    with pytest.raises(ValidationError, match="is empty"):
        RedisSettings(_env_file=None)
    monkeypatch.setenv("REDIS_PASSWORD_FILE", str(tmp_path / "missing"))
    with pytest.raises(ValidationError, match="cannot read"):
        RedisSettings(_env_file=None)
    monkeypatch.setenv("REDIS_PASSWORD_FILE", "")
    assert RedisSettings(_env_file=None).redis_password is None


def _redis_clients() -> list[type[RedisSettings]]:
    from processors.materialize.settings import MaterializeSettings
    from processors.notify.settings import NotifySettings
    from spark_jobs.settings import SparkJobSettings
    from stockstream.api.settings import ApiSettings

    return [MaterializeSettings, NotifySettings, ApiSettings, SparkJobSettings]


@pytest.mark.parametrize("settings_class", _redis_clients(), ids=lambda cls: cls.__name__)
def test_every_redis_client_reads_the_password_file(settings_class, tmp_path: Path,
                                                    monkeypatch: pytest.MonkeyPatch) -> None:
    secret = tmp_path / "password"
    secret.write_text("from-the-file")
    monkeypatch.delenv("REDIS_PASSWORD", raising=False)
    monkeypatch.setenv("REDIS_PASSWORD_FILE", str(secret))
    settings = settings_class(_env_file=None)
    assert settings.redis_connection()[1]["password"] == "from-the-file"
