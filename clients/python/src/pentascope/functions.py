"""The original Python service's functions, on a client configured from the environment."""

from __future__ import annotations

import os
from typing import Any

import numpy as np

from .client import Client, Image, PathLike

_default: tuple[tuple[str | None, str | None], Client] | None = None


def default_client() -> Client:
    """A :class:`Client` for ``$PENTASCOPE_URL`` and ``$PENTASCOPE_TOKEN``
    (made again when either changes)."""
    global _default
    key = (os.environ.get("PENTASCOPE_URL"), os.environ.get("PENTASCOPE_TOKEN"))
    if _default is None or _default[0] != key:
        _default = (key, Client())
    return _default[1]


def upload_image(path: PathLike) -> str:
    """Uploads the TIFF at ``path``; returns its image id (``image_<n>``)."""
    return default_client().upload(path, progress=None).id


def get_slice(image_id: str, z: int = 0, t: int = 0, channel: int = 0) -> np.ndarray[Any, Any]:
    """The exact (Y, X) plane of ``image_id`` at ``z``, time ``t``, ``channel``."""
    return Image(default_client(), image_id).slice(z=z, t=t, c=channel)


def analyze_image(image_id: str, components: int = 3) -> dict[str, Any]:
    """PCA of ``image_id`` with ``components`` components (the ``POST /analyze`` document)."""
    return Image(default_client(), image_id).analyze(components)
