"""Secrets from systemd credentials (``$CREDENTIALS_DIRECTORY``) or, outside systemd, the environment.

Under systemd a secret is a credential (``LoadCredential=ID:PATH``): a file readable by the
service user only, never visible in ``systemctl show`` as ``Environment=`` is. The shipped unit
pairs each ``LoadCredential=`` with a blank ``SetCredential=`` fallback, so a credential whose
file is absent reaches the daemon empty: an empty (or whitespace-only) credential counts as not
set, as does an empty environment variable.
"""

from __future__ import annotations

import os
from collections.abc import Mapping
from pathlib import Path


def read_secret(credential_id: str | None, env_var: str | None,
                environ: Mapping[str, str] | None = None) -> str | None:
    """The secret from the credential ``credential_id``, else from ``$env_var``; None if neither.

    Surrounding whitespace (the trailing newline of a file written with ``cat``) is dropped.
    """
    env = os.environ if environ is None else environ
    value = credential(credential_id, env) if credential_id else None
    if not value and env_var:
        value = (env.get(env_var) or "").strip()
    return value or None


def credential(credential_id: str, environ: Mapping[str, str] | None = None) -> str | None:
    """The stripped text of ``$CREDENTIALS_DIRECTORY/credential_id``; None when absent or blank."""
    env = os.environ if environ is None else environ
    folder = env.get("CREDENTIALS_DIRECTORY")
    if not folder:
        return None
    try:
        text = (Path(folder) / credential_id).read_text(encoding="utf-8").strip()
    except (OSError, UnicodeDecodeError):
        return None
    return text or None
