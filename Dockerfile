# syncd image: Python 3.11 on Debian slim, Debian's Slurm client commands, non-root, and
# happy on a read-only root filesystem (the chart mounts /var/lib/syncd and /tmp writable).
#
#   docker build -t registry.example.com/syncd:0.1.0 .
#
# Slurm version: scontrol/sbatch/squeue/scancel speak Slurm's RPC protocol. A slurmctld accepts
# commands of its own release and of the few releases before it (the "Compatibility window" of
# https://slurm.schedmd.com/upgrades.html: 25.11 accepts 25.05, 24.11 and 24.05), never newer
# ones. Debian 13 (trixie) ships slurm-client 24.11, so this image suits slurmctld 24.11, 25.05
# and 25.11. For another Slurm, change DEBIAN_SUITE or install your site's Slurm packages.
ARG PYTHON_VERSION=3.11
ARG DEBIAN_SUITE=trixie

FROM python:${PYTHON_VERSION}-slim-${DEBIAN_SUITE} AS build
ENV PIP_NO_CACHE_DIR=1 PIP_DISABLE_PIP_VERSION_CHECK=1
WORKDIR /src
COPY pyproject.toml README.md ./
COPY syncd ./syncd
# pip byte-compiles at install time, so the read-only image never needs to write .pyc files.
RUN python -m venv /opt/syncd \
 && /opt/syncd/bin/pip install .

FROM python:${PYTHON_VERSION}-slim-${DEBIAN_SUITE}
# Slinky's SlurmUser (see below).
ARG SLURM_UID=401
# slurm-client brings scontrol, sbatch, squeue, scancel and, as a dependency, munge (the client
# library for AuthType=auth/munge); auth/slurm is built into Slurm since 23.11.
# In Slinky's slurmctld pod syncd runs as uid 401 (the pod's SlurmUser, so slurmctld lets it
# drain and resume nodes); that uid gets a name too, so Slurm's client commands can resolve it.
RUN apt-get update \
 && apt-get install -y --no-install-recommends slurm-client \
 && rm -rf /var/lib/apt/lists/* \
 && groupadd --system --gid 10001 syncd \
 && useradd --system --uid 10001 --gid syncd --no-create-home --home-dir /var/lib/syncd \
      --shell /usr/sbin/nologin syncd \
 && groupadd --system --gid "${SLURM_UID}" slinky \
 && useradd --system --uid "${SLURM_UID}" --gid slinky --no-create-home \
      --home-dir /var/lib/syncd --shell /usr/sbin/nologin slinky \
 && install -d -o 10001 -g 10001 -m 0770 /var/lib/syncd /etc/syncd
COPY --from=build /opt/syncd /opt/syncd
ENV PATH=/opt/syncd/bin:$PATH \
    PYTHONDONTWRITEBYTECODE=1 \
    PYTHONUNBUFFERED=1 \
    HOME=/var/lib/syncd \
    SLURM_CONF=/etc/slurm/slurm.conf
USER 10001:10001
WORKDIR /var/lib/syncd
VOLUME ["/var/lib/syncd"]
EXPOSE 8080
# syncd is PID 1: it handles SIGTERM itself (finish the batch, flush, release the Lease) and
# awaits every scontrol/sbatch child it starts. No HEALTHCHECK: Kubernetes probes /livez.
ENTRYPOINT ["syncd"]
CMD ["run", "--config", "/etc/syncd/syncd.yaml"]
