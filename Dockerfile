# dagrun's container image: `docker build -t dagrun .`
# One image for every role; the command picks it:
#   docker run dagrun schedule --executor queue --listen 0.0.0.0:8080   (scheduler, HTTP face)
#   docker run dagrun worker                                           (queue worker)
# Settings come from the environment as in /etc/dagrun/dagrun.env (DAGRUN_DB, DAGRUN_DAGS, ...).
# The build stage uses the same scripts as the tests (scripts/install-deps.sh, without the browser
# tests' Chromium, and scripts/package.sh), and the image installs the Debian package they make,
# postinst and all.

FROM debian:12 AS build
WORKDIR /src
COPY . .
RUN DAGRUN_NO_BROWSER_TESTS=1 ./scripts/install-deps.sh \
 && ./scripts/package.sh /out build/release

FROM debian:12-slim
COPY --from=build /out/dagrun_*.deb /tmp/
RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends /tmp/dagrun_*.deb \
 && rm -rf /var/lib/apt/lists/* /tmp/dagrun_*.deb
# The package's defaults, for a container: a SQLite file and task logs in the volume, the HTTP
# face on every interface (a token is then required: set DAGRUN_API_TOKEN).
ENV DAGRUN_DB=sqlite:/var/lib/dagrun/dagrun.db \
    DAGRUN_DAGS=/var/lib/dagrun/dags \
    DAGRUN_LOGS=/var/log/dagrun/tasks
VOLUME ["/var/lib/dagrun", "/var/log/dagrun"]
USER dagrun
WORKDIR /var/lib/dagrun
EXPOSE 8080
# No curl in the slim image: bash's /dev/tcp asks /health, which answers 200 only when healthy.
HEALTHCHECK --interval=15s --timeout=3s --start-period=10s --retries=3 \
  CMD ["bash", "-c", "exec 3<>/dev/tcp/127.0.0.1/8080 && printf 'GET /health HTTP/1.0\\r\\nHost: localhost\\r\\n\\r\\n' >&3 && head -1 <&3 | grep -q ' 200 '"]
ENTRYPOINT ["dagrun"]
CMD ["schedule", "--listen", "0.0.0.0:8080"]
