# Nexus: the API (and, with another command, the worker or the migrations) in one slim image.
#   docker build -t nexus .
#   docker run --env-file .env -p 8000:8000 nexus                      # the API (python -m api.serve)
#   docker run --env-file .env nexus python -m api.worker              # the worker
#   docker run --env-file .env nexus python -m api.migrate             # the migrations (a one-shot job)

FROM python:3.11-slim AS build
WORKDIR /app
COPY pyproject.toml ./
COPY api ./api
RUN python -m venv /venv && /venv/bin/pip install --no-cache-dir .

FROM python:3.11-slim
RUN useradd --system --uid 10001 --home-dir /app --no-create-home nexus
WORKDIR /app
COPY --from=build /venv /venv
COPY api ./api
COPY sql ./sql
COPY migrations ./migrations
RUN mkdir -p /app/media && chown nexus /app/media
ENV PATH=/venv/bin:$PATH \
    PYTHONUNBUFFERED=1 \
    PYTHONDONTWRITEBYTECODE=1
USER 10001
EXPOSE 8000
HEALTHCHECK --interval=10s --timeout=3s --start-period=10s --retries=3 \
  CMD ["python", "-c", "import sys, urllib.request; sys.exit(urllib.request.urlopen('http://127.0.0.1:8000/readyz', timeout=2).status != 200)"]
CMD ["python", "-m", "api.serve", "--host", "0.0.0.0", "--port", "8000"]
