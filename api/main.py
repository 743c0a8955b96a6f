"""The process entry point: `uvicorn api.main:app`."""

from api import logs
from api.app import create_app
from api.settings import settings

logs.setup(settings.log_level)  # every logger's records as JSON lines (api/logs.py), uvicorn's too
app = create_app(settings)
