# syncd image: syncd on top of the Slurm release it talks to, non-root, and happy on a read-only
# root filesystem (the chart mounts /var/lib/syncd and /tmp writable).
#
#   docker build -t registry.example.com/syncd:0.1.0 .                      # Slurm 26.05
#   docker build --build-arg SLURM_VERSION=25.11 -t ...:0.1.0-slurm25.11 .  # Slinky 1.0/1.1
#
# Slurm version: scontrol/sbatch/squeue/scancel speak Slurm's RPC protocol, and a slurmctld
# accepts commands of its own release and of the few releases before it, never newer ones
# (https://slurm.schedmd.com/upgrades.html); a client also aborts on slurm.conf keys newer than
# itself (Slinky writes MetricsType, a 25.11 key, with its metrics on). So the image builds on
# SchedMD Slinky's own slurmctld image of SLURM_VERSION: its scontrol is the very client of
# that release, and it names Slinky's SlurmUser (`slurm`, uid 401). docs/helm.md lists the
# Slurm release of each Slinky chart. For a site without Slinky, set SLURM_IMAGE to any
# Debian/Ubuntu image with Slurm's client, or to e.g. debian:trixie-slim with
# SLURM_PACKAGES=slurm-client (Debian 13's client is 24.11).
ARG SLURM_VERSION=26.05
ARG SLURM_IMAGE=ghcr.io/slinkyproject/slurmctld:${SLURM_VERSION}-ubuntu26.04

FROM ${SLURM_IMAGE} AS build
USER root
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1 DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 python3-venv \
 && rm -rf /var/lib/apt/lists/*
WORKDIR /src
COPY pyproject.toml README.md ./
COPY syncd ./syncd
# pip byte-compiles at install time, so the read-only image never needs to write .pyc files.
RUN python3 -m venv /opt/syncd \
 && /opt/syncd/bin/pip install .

FROM ${SLURM_IMAGE}
# Extra packages for a base without Slurm's client (e.g. slurm-client on Debian).
ARG SLURM_PACKAGES=""
# The uid syncd runs as: Slinky's SlurmUser, so slurmctld lets it drain and resume nodes (it
# accepts node updates only from root, SlurmUser and Operator-level users). Slurm's client
# commands must resolve the SlurmUser name of slurm.conf (`slurm` under Slinky) and their own
# uid, so both get a name when the base has none.
ARG SLURM_UID=401
USER root
ENV DEBIAN_FRONTEND=noninteractive
RUN apt-get update \
 && apt-get install -y --no-install-recommends python3 ${SLURM_PACKAGES} \
 && rm -rf /var/lib/apt/lists/* \
 && if ! getent group "${SLURM_UID}" >/dev/null; then \
      groupadd --system --gid "${SLURM_UID}" syncd; fi \
 && if ! getent passwd "${SLURM_UID}" >/dev/null; then \
      useradd --system --uid "${SLURM_UID}" --gid "${SLURM_UID}" --no-create-home \
        --home-dir /var/lib/syncd --shell /usr/sbin/nologin syncd; fi \
 && if ! getent passwd slurm >/dev/null; then \
      useradd --system --gid "${SLURM_UID}" --no-create-home --shell /usr/sbin/nologin \
        slurm; fi \
 && install -d -o "${SLURM_UID}" -g "${SLURM_UID}" -m 0770 /var/lib/syncd /etc/syncd
COPY --from=build /opt/syncd /opt/syncd
ENV PATH=/opt/syncd/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/syncd \
    SLURM_CONF=/etc/slurm/slurm.conf \
    SYNCD_CONFIG=/etc/syncd/syncd.yaml
# Numeric (= SLURM_UID), so the kubelet can check runAsNonRoot without reading /etc/passwd.
USER 401:401
WORKDIR /var/lib/syncd
VOLUME ["/var/lib/syncd"]
EXPOSE 8080
# syncd is PID 1: it handles SIGTERM itself (finish the batch, flush, release the Lease) and
# awaits every scontrol/sbatch child it starts. No HEALTHCHECK: Kubernetes probes /livez.
ENTRYPOINT ["syncd"]
CMD ["run", "--config", "/etc/syncd/syncd.yaml"]
