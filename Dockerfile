# tijdig — the same two steps as the Makefile: install, then `tijdig run`.
# Build:  docker build -t tijdig .
# Run:    docker run -p 8000:8000 -v tijdig-data:/app/.tijdig tijdig
FROM python:3.11-slim

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    OMP_NUM_THREADS=1 \
    TIJDIG_DATA_DIR=/app/.tijdig

# libgomp: LightGBM's OpenMP runtime
RUN apt-get update && apt-get install -y --no-install-recommends libgomp1 \
    && rm -rf /var/lib/apt/lists/*

WORKDIR /app
COPY pyproject.toml README.md ./
COPY requirements/lock.txt ./requirements/lock.txt
COPY features ./features
COPY models ./models
COPY training ./training
COPY service ./service
COPY cli ./cli
# The versions of `make setup`: the lock (without its dev tools, hence a constraint)
RUN pip install --constraint requirements/lock.txt . && pip check

RUN useradd --create-home tijdig && mkdir -p /app/.tijdig && chown tijdig /app/.tijdig
USER tijdig
VOLUME ["/app/.tijdig"]
EXPOSE 8000
HEALTHCHECK --interval=30s --timeout=3s --start-period=600s CMD python -c "import urllib.request,sys; sys.exit(0 if urllib.request.urlopen('http://127.0.0.1:8000/healthz').status==200 else 1)"

# first start: simulate, ingest, train, promote (a few minutes); later starts serve at once
CMD ["tijdig", "run", "--host", "0.0.0.0", "--port", "8000", "--workers", "2"]
