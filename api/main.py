"""The process entry point: `uvicorn api.main:app`."""

import logging

from api.app import create_app
from api.settings import settings

logging.basicConfig(level=settings.log_level.upper(), format="%(message)s")
app = create_app(settings)
