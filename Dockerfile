# One image for every Lifecycle Ledger service: the API, the relay, the worker, and the Ray
# nodes (so that Ray and Python match exactly between the driver and the cluster).
FROM python:3.11-slim
ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
RUN apt-get update && apt-get install -y --no-install-recommends git \
    && rm -rf /var/lib/apt/lists/*
WORKDIR /app
COPY pyproject.toml README.md ./
COPY src ./src
RUN pip install ".[examples]"
COPY examples ./examples
CMD ["ledger", "--help"]
