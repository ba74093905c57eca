# The project's one image: every deployable is a `cqrs` subcommand
# (`cqrs processor`, `cqrs project postgres|search`, `cqrs gateway`, `cqrs topics apply`).
# Configuration comes from CQRS_* environment variables only (see cqrs/settings.py).
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /src
COPY pyproject.toml README.md ./
COPY topics ./topics
COPY pipeline ./pipeline
COPY projections ./projections
COPY cqrs ./cqrs
RUN pip install . && rm -rf /src

# Non-root. Faust writes its `<app id>-data` directory into the working directory, so that is
# the user's own home.
RUN useradd --system --uid 10001 --create-home --home-dir /home/cqrs --shell /usr/sbin/nologin cqrs
USER cqrs
WORKDIR /home/cqrs

ENTRYPOINT ["cqrs"]
CMD ["--help"]
