# guestchat-harness: one image for the Locust master, its workers and the rehearsal simulator.
# Build: docker build -t guestchat-harness .   (docs/scaling.md#container-image)
FROM python:3.11-slim

ENV PYTHONUNBUFFERED=1 PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /app
COPY pyproject.toml README.md ./
COPY harness ./harness
RUN pip install .
COPY locustfiles ./locustfiles
COPY examples ./examples
COPY deploy/locust.conf ./deploy/locust.conf

# Run as a non-root user; the run directories go to /app/reports (a volume on the master).
RUN useradd --create-home --uid 10001 harness && mkdir -p /app/reports && chown harness /app/reports
USER harness
EXPOSE 8089 5557
CMD ["locust", "-f", "locustfiles/guest.py"]
