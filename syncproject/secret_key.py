"""SECRET_KEY: `DJANGO_SECRET_KEY` when set, else a random key made once per install and kept in a file.

There is no development default: a key in the code would be the same on every install, so a
deployment that forgot the variable would sign its sessions with a key anyone can read.
"""

from __future__ import annotations

import contextlib
import os
from pathlib import Path

from django.core.exceptions import ImproperlyConfigured
from django.core.management.utils import get_random_secret_key


def secret_key_from_file(path: Path) -> str:
    """Read the key in `path`, creating it (random, readable by its owner only) on first use."""
    try:
        try:
            return _read_key(path)
        except FileNotFoundError:
            _create_key(path)
        return _read_key(path)
    except OSError as error:
        raise ImproperlyConfigured(
            f"DJANGO_SECRET_KEY is not set and the key file {path} cannot be read or created "
            f"({error.strerror}); set DJANGO_SECRET_KEY, or DJANGO_SECRET_KEY_FILE to a writable path"
        ) from None


def _create_key(path: Path) -> None:
    """Write a new key next to `path` and link it into place.

    Processes starting at the same moment all end up with the one key that was linked first,
    never with an empty or torn one.
    """
    path.parent.mkdir(parents=True, exist_ok=True)
    temporary = path.with_name(f"{path.name}.{os.getpid()}.tmp")
    descriptor = os.open(temporary, os.O_WRONLY | os.O_CREAT | os.O_TRUNC, 0o600)
    try:
        with os.fdopen(descriptor, "w") as handle:
            handle.write(get_random_secret_key() + "\n")
        with contextlib.suppress(FileExistsError):  # another process made it first: use its key
            os.link(temporary, path)
    finally:
        temporary.unlink()


def _read_key(path: Path) -> str:
    key = path.read_text().strip()
    if not key:
        raise ImproperlyConfigured(f"The secret key file {path} is empty; delete it or set DJANGO_SECRET_KEY")
    return key


def secret_key(base_dir: Path) -> str:
    """The key from the environment, else from `DJANGO_SECRET_KEY_FILE` [`<project>/.secret_key`]."""
    key = os.environ.get("DJANGO_SECRET_KEY", "").strip()
    if key:
        return key
    return secret_key_from_file(Path(os.environ.get("DJANGO_SECRET_KEY_FILE") or base_dir / ".secret_key"))
