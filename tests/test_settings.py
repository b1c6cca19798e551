"""syncproject.settings: safe with nothing set (no debug, no shared key, local names only)."""

from __future__ import annotations

import json
import os
import subprocess
import sys
from pathlib import Path

import pytest
from django.core.exceptions import ImproperlyConfigured
from django.test import Client

from syncproject.secret_key import secret_key_from_file
from tests.conftest import PROJECT_DIR

SETTINGS_AS_JSON = """
import json
from django.conf import settings
print(json.dumps({name: getattr(settings, name) for name in (
    "DEBUG", "SECRET_KEY", "ALLOWED_HOSTS", "SECURE_SSL_REDIRECT", "SESSION_COOKIE_SECURE",
    "CSRF_COOKIE_SECURE", "SECURE_HSTS_SECONDS")}))
"""


def settings_with(tmp_path: Path, **variables: str) -> dict[str, object]:
    """The settings a new process gets with none of our variables set but `variables`."""
    env = {k: v for k, v in os.environ.items() if not k.startswith(("DJANGO_", "BATCHSYNC_"))}
    env.update(
        DJANGO_SETTINGS_MODULE="syncproject.settings",
        DJANGO_SECRET_KEY_FILE=str(tmp_path / "secret_key"),
        DATABASE_URL=os.environ.get("DATABASE_URL", "postgres://postgres@127.0.0.1:5432/postgres"),
        **variables,
    )
    done = subprocess.run(
        [sys.executable, "-c", SETTINGS_AS_JSON],
        env=env,
        cwd=PROJECT_DIR,
        capture_output=True,
        text=True,
        timeout=60,
        check=True,
    )
    settings: dict[str, object] = json.loads(done.stdout)
    return settings


def test_with_nothing_set_there_is_no_debug_no_shared_key_and_only_local_host_names(tmp_path: Path) -> None:
    first = settings_with(tmp_path)
    assert first["DEBUG"] is False
    assert first["ALLOWED_HOSTS"] == ["localhost", "127.0.0.1", "[::1]"]
    key = first["SECRET_KEY"]
    assert isinstance(key, str) and len(key) >= 50 and "insecure" not in key
    # Made once for this install and kept: the next process signs with the same key.
    assert (tmp_path / "secret_key").read_text().strip() == key
    assert (tmp_path / "secret_key").stat().st_mode & 0o777 == 0o600
    assert settings_with(tmp_path)["SECRET_KEY"] == key
    # HTTPS-only behaviour is for a site that says it is served over HTTPS.
    assert (first["SECURE_SSL_REDIRECT"], first["SESSION_COOKIE_SECURE"], first["SECURE_HSTS_SECONDS"]) == (
        False,
        False,
        0,
    )


def test_debug_hosts_key_and_https_come_from_the_environment(tmp_path: Path) -> None:
    settings = settings_with(
        tmp_path,
        DJANGO_DEBUG="1",
        DJANGO_ALLOWED_HOSTS="a.example.com, b.example.com",
        DJANGO_SECRET_KEY="k" * 10 + "from-the-environment" + "x" * 30,
        DJANGO_HTTPS="1",
    )
    assert settings["DEBUG"] is True
    assert settings["ALLOWED_HOSTS"] == ["a.example.com", "b.example.com"]
    assert settings["SECRET_KEY"] == "k" * 10 + "from-the-environment" + "x" * 30
    assert not (tmp_path / "secret_key").exists()
    assert (
        settings["SECURE_SSL_REDIRECT"],
        settings["CSRF_COOKIE_SECURE"],
        settings["SECURE_HSTS_SECONDS"],
    ) == (
        True,
        True,
        365 * 24 * 3600,
    )


def test_processes_starting_together_share_one_new_key(tmp_path: Path) -> None:
    path = tmp_path / "state" / "secret_key"
    script = (
        "import sys, pathlib; from syncproject.secret_key import secret_key_from_file; "
        "print(secret_key_from_file(pathlib.Path(sys.argv[1])))"
    )
    starts = [
        subprocess.Popen(
            [sys.executable, "-c", script, str(path)], cwd=PROJECT_DIR, stdout=subprocess.PIPE, text=True
        )
        for _ in range(6)
    ]
    keys = {start.communicate(timeout=60)[0].strip() for start in starts}
    assert keys == {path.read_text().strip()}
    assert sorted(p.name for p in path.parent.iterdir()) == ["secret_key"]  # no temporary left


def test_an_unwritable_key_file_says_to_set_the_key(tmp_path: Path) -> None:
    blocked = tmp_path / "a-file"
    blocked.write_text("")
    with pytest.raises(ImproperlyConfigured, match="set DJANGO_SECRET_KEY"):
        secret_key_from_file(blocked / "secret_key")


def test_static_files_are_served_without_collectstatic_in_the_quick_start(client: Client) -> None:
    """Before `collectstatic` (nothing in STATIC_ROOT) whitenoise finds the files in the apps."""
    response = client.get("/static/batchsync/batchsync.css")
    assert response.status_code == 200
    served = b"".join(response.streaming_content)  # type: ignore[attr-defined]
    assert served == (PROJECT_DIR / "batchsync" / "static" / "batchsync" / "batchsync.css").read_bytes()
