# syntax=docker/dockerfile:1
#
# Icecast 2.4.4 (Debian bookworm's icecast2, the version jars is tested against) for
# deploy/compose.yaml. Build context: deploy/. The configuration is not baked in: compose mounts
# icecast-examples/icecast.xml at /etc/icecast2/icecast.xml, and icecast-entrypoint.sh points its
# callback URLs at jars ($JARS_URL, default http://jars:8888/) before starting Icecast.
FROM debian:bookworm-slim

RUN apt-get update \
 && DEBIAN_FRONTEND=noninteractive apt-get install -y --no-install-recommends icecast2 \
 && rm -rf /var/lib/apt/lists/*

COPY --chmod=0755 icecast-entrypoint.sh /usr/local/bin/icecast-entrypoint

# The package's system user. Icecast started as root refuses to run without <changeowner>;
# started as icecast2 it needs none. It writes its logs to /var/log/icecast2 (owned by icecast2):
#   docker compose exec icecast tail -f /var/log/icecast2/error.log
USER icecast2
EXPOSE 8000
ENTRYPOINT ["icecast-entrypoint"]
CMD ["icecast2", "-c", "/etc/icecast2/icecast.xml"]
