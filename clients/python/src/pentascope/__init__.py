"""Python client for pentascope, the HTTP service for 5D (TZCYX) TIFF images.

>>> from pentascope import Client
>>> image = Client("http://127.0.0.1:5000").upload("stack.tif")
>>> image.slice(z=5, t=0, c=0)          # numpy array, exact samples

The original service's functions are kept: :func:`upload_image`,
:func:`get_slice`, :func:`analyze_image` (using a client configured from
``PENTASCOPE_URL`` and ``PENTASCOPE_TOKEN``), and the Celery task
``pentascope.tasks.heavy_pca`` (extra ``[celery]``).
"""

from __future__ import annotations

from .client import DEFAULT_URL, Client, Dataset, Image, Job, Listing
from .errors import (
    BadRequest,
    Forbidden,
    JobFailed,
    NotFound,
    PayloadTooLarge,
    PentascopeError,
    ServiceUnavailable,
    Unauthorized,
    Unprocessable,
    UnsupportedMediaType,
)
from .functions import analyze_image, default_client, get_slice, upload_image

__version__ = "0.1.0"

__all__ = [
    "DEFAULT_URL",
    "BadRequest",
    "Client",
    "Dataset",
    "Forbidden",
    "Image",
    "Job",
    "JobFailed",
    "Listing",
    "NotFound",
    "PayloadTooLarge",
    "PentascopeError",
    "ServiceUnavailable",
    "Unauthorized",
    "UnsupportedMediaType",
    "Unprocessable",
    "analyze_image",
    "default_client",
    "get_slice",
    "upload_image",
]
