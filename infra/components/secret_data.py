"""A Secret's content as `data` (base64), never `stringData`: the API server folds stringData into
data and never shows it again, so a stringData input would be a change (a replacement) on every
preview against the live object."""

from __future__ import annotations

import base64


def secret_data(settings: dict[str, str]) -> dict[str, str]:
    return {key: base64.b64encode(value.encode()).decode() for key, value in settings.items()}
