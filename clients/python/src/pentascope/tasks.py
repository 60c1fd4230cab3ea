"""Celery task objects for pentascope workers (needs the ``[celery]`` extra).

The app's broker is ``$CELERY_BROKER_URL`` (default
``redis://127.0.0.1:6379/0``) and its result backend ``$CELERY_RESULT_BACKEND``
(default: the broker), as the original service read them; tasks go to
Celery's default queue ``celery``, which ``pentascope worker`` consumes::

    from pentascope.tasks import heavy_pca
    heavy_pca.delay(image_id="image_1", n_components=3).get(timeout=600)
"""

from __future__ import annotations

import os
from typing import Any

try:
    from celery import Celery
except ImportError as e:  # pragma: no cover - depends on the environment
    raise ImportError("pentascope.tasks needs Celery: pip install 'pentascope[celery]'") from e

from .client import Image
from .functions import default_client

broker_url = os.environ.get("CELERY_BROKER_URL") or "redis://127.0.0.1:6379/0"
result_backend = os.environ.get("CELERY_RESULT_BACKEND") or broker_url

app = Celery("pentascope", broker=broker_url, backend=result_backend)


@app.task(name="heavy_pca")  # type: ignore[untyped-decorator]
def heavy_pca(image_id: str, n_components: int = 2) -> dict[str, Any]:
    """PCA of ``image_id``: the ``POST /analyze`` document.

    ``pentascope worker`` processes run it; should a Python Celery worker
    take it instead, it asks the service at ``$PENTASCOPE_URL``.
    """
    return Image(default_client(), image_id).analyze(n_components)
