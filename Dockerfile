# The escalation engine's image: the Temporal worker (`python worker.py`, the default command), the
# record store's migrations (`python -m activities.db.migrate upgrade`) and the web app
# (`python -m starter.web`). See docs/deploy.md.
#
# Built and run with docker-compose.yml; untested on the development machines, which have no Docker engine.

# ---- build: install the project and its dependencies into a virtualenv --------------------------------
FROM python:3.11.14-slim-bookworm AS build

ENV PIP_DISABLE_PIP_VERSION_CHECK=1 \
    PIP_NO_CACHE_DIR=1 \
    PYTHONDONTWRITEBYTECODE=1

RUN python -m venv /opt/venv
ENV PATH=/opt/venv/bin:$PATH

WORKDIR /src
# Only what `pip install .` needs: pyproject.toml (setuptools, with package-data for the protocols, the
# directories, the mail templates and the Alembic migrations) and the packages it lists.
COPY pyproject.toml worker.py ./
COPY activities ./activities
COPY protocols ./protocols
COPY schemas ./schemas
COPY starter ./starter
COPY workflows ./workflows
# Every dependency of this project ships as a wheel (psycopg2-binary included), so no compiler is needed.
RUN pip install . \
    && python -c "import activities, protocols, schemas, starter, workflows, worker"
# The web app's GOV.UK Frontend assets, from npm at the version package-lock.json pins (no dev packages);
# npm stays in this stage, only the compiled assets reach the image.
COPY package.json package-lock.json ./
RUN apt-get update \
    && apt-get install -y --no-install-recommends npm \
    && npm ci --omit=dev --no-audit --no-fund --loglevel=error \
    && test -f node_modules/govuk-frontend/dist/govuk/govuk-frontend.min.css \
    && test -f node_modules/bpmn-js/dist/bpmn-navigated-viewer.production.min.js \
    && rm -rf /var/lib/apt/lists/*

# ---- runtime --------------------------------------------------------------------------------------------
FROM python:3.11.14-slim-bookworm AS runtime

LABEL org.opencontainers.image.title="escalation-engine" \
      org.opencontainers.image.description="Durable escalation engine for children's services (Temporal worker)"

ENV PATH=/opt/venv/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    ESCALATION_DATA_DIR=/data

# A fixed, unprivileged user. /data (case-note files) belongs to it, so a fresh named volume mounted
# there is writable too (Docker copies the folder's ownership into an empty volume).
RUN groupadd --system --gid 10001 escalation \
    && useradd --system --uid 10001 --gid escalation --home-dir /app --no-create-home \
       --shell /usr/sbin/nologin escalation \
    && mkdir -p /app /data \
    && chown escalation:escalation /data

COPY --from=build /opt/venv /opt/venv

# The source as well as the installed package: `python worker.py` and `python -m activities.db.migrate`
# run from /app, and the default directory folder is /app/protocols/directories. Owned by root and
# read-only for the worker's user.
WORKDIR /app
COPY pyproject.toml worker.py ./
COPY activities ./activities
COPY protocols ./protocols
COPY schemas ./schemas
COPY starter ./starter
COPY workflows ./workflows
COPY --from=build /src/node_modules/govuk-frontend/dist ./node_modules/govuk-frontend/dist
COPY --from=build /src/node_modules/bpmn-js/dist/bpmn-navigated-viewer.production.min.js ./node_modules/bpmn-js/dist/
COPY --from=build /src/node_modules/bpmn-js/dist/assets/diagram-js.css /src/node_modules/bpmn-js/dist/assets/bpmn-js.css ./node_modules/bpmn-js/dist/assets/

USER escalation:escalation

CMD ["python", "worker.py"]
