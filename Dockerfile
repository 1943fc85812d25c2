# speclet on a lab's shared server (see the README):
#   docker build -t speclet .
#   docker run -d --restart unless-stopped -p 127.0.0.1:8501:8501 -v speclet-data:/data speclet
# BASE_IMAGE is for the image test (tests/docker/), which builds this file unmodified on a stand-in made from Debian
# packages; users keep the default.
ARG BASE_IMAGE=python:3.11.7-slim-bookworm
FROM ${BASE_IMAGE}

# g++ lets PyTensor compile PyMC's sampler fallback and model graphs to C (without it they run in slow pure Python);
# tini runs as PID 1 so signals reach `serve` and finished fit processes are reaped.
# Apt pins are the exact versions Debian bookworm ships now; Debian drops a superseded version from its archive, and
# then tests/test_dockerfile.py (apt-cache madison) and the image test fail and name the version to pin instead.
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++=4:12.2.0-3 tini=0.19.0-1+b3 \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

RUN groupadd --gid 1000 speclet \
    && useradd --uid 1000 --gid speclet --create-home speclet \
    && mkdir -p /data \
    && chown speclet:speclet /data

# Defaults users may change (`docker run -e`, or edit here): after the pip layer, so editing one rebuilds seconds,
# not the 1 GB of wheels.
ENV SPECLET_DATA_DIR=/data \
    SPECLET_PORT=8501 \
    HOME=/home/speclet \
    NUMBA_CACHE_DIR=/data/.cache/numba \
    PYTENSOR_FLAGS=base_compiledir=/data/.cache/pytensor \
    MPLCONFIGDIR=/tmp/matplotlib

COPY --chown=root:root app.py run_app.py ./
COPY --chown=root:root .streamlit ./.streamlit
COPY --chown=root:root pages ./pages
COPY --chown=root:root speclet_core ./speclet_core
COPY --chown=root:root model_store ./model_store

USER 1000:1000
VOLUME ["/data"]
EXPOSE 8501
# The port is read when the check runs, so `-e SPECLET_PORT=…` stays healthy.
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import os, sys, urllib.request; port = os.environ.get('SPECLET_PORT') or '8501'; r = urllib.request.urlopen(f'http://127.0.0.1:{port}/_stcore/health', timeout=4); sys.exit(0 if r.status == 200 else 1)"]
ENTRYPOINT ["tini", "--", "python", "-m", "speclet_core", "serve"]
