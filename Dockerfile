# speclet on a lab's shared server:
#   docker build -t speclet .
#   docker run -p 8501:8501 -v speclet-data:/data speclet
FROM python:3.11.7-slim-bookworm

# g++ lets PyTensor compile PyMC's sampler fallback and model graphs to C (without it they run in slow pure Python);
# tini runs as PID 1 so signals reach `serve` and finished fit processes are reaped.
RUN apt-get update \
    && apt-get install -y --no-install-recommends g++=4:12.2.0-3 tini=0.19.0-1 \
    && rm -rf /var/lib/apt/lists/*

ENV PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    PIP_NO_CACHE_DIR=1 \
    PIP_DISABLE_PIP_VERSION_CHECK=1 \
    SPECLET_DATA_DIR=/data \
    SPECLET_PORT=8501 \
    HOME=/home/speclet \
    NUMBA_CACHE_DIR=/data/.cache/numba \
    PYTENSOR_FLAGS=base_compiledir=/data/.cache/pytensor \
    MPLCONFIGDIR=/tmp/matplotlib

WORKDIR /app
COPY requirements.txt .
RUN pip install --no-cache-dir -r requirements.txt

RUN groupadd --gid 1000 speclet \
    && useradd --uid 1000 --gid speclet --create-home speclet \
    && mkdir -p /data \
    && chown speclet:speclet /data
COPY --chown=root:root app.py run_app.py ./
COPY --chown=root:root .streamlit ./.streamlit
COPY --chown=root:root pages ./pages
COPY --chown=root:root speclet_core ./speclet_core
COPY --chown=root:root model_store ./model_store

USER 1000:1000
VOLUME ["/data"]
EXPOSE 8501
HEALTHCHECK --interval=30s --timeout=5s --start-period=60s --retries=3 \
    CMD ["python", "-c", "import sys, urllib.request; r = urllib.request.urlopen('http://127.0.0.1:8501/_stcore/health', timeout=4); sys.exit(0 if r.status == 200 else 1)"]
ENTRYPOINT ["tini", "--", "python", "-m", "speclet_core", "serve"]
