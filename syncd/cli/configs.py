"""Loading the config file for ``run`` and ``check-config``, and saying what is wrong with it.

Every problem is one line that says where it is: in the file (the file is named once, above
its problems) or in a ``SYNCD_*`` environment variable (named as the variable, since it is
not in the file). Paths the daemon will open must exist, so a typo in ``slurm.conf`` fails
here rather than as a Slurm error on every pass.
"""

from __future__ import annotations

import os
import re
import sys
from collections.abc import Mapping
from pathlib import Path

from syncd.config import ENV_PREFIX, ConfigError, load_file
from syncd.settings import Settings

#: Variables the command line reads itself; they are not config overrides.
CLI_VARIABLES = frozenset({"SYNCD_CONFIG", "SYNCD_URL", "SYNCD_TOKEN_FILE"})
_KEY = re.compile(r"^([a-z0-9_.\[\]]+): (.*)$")


def overrides(env: Mapping[str, str]) -> dict[str, str]:
    """The config overrides among ``env``: ``SYNCD_POLICY__DRAIN_AFTER`` -> policy.drain_after."""
    return {k: v for k, v in env.items() if k.startswith(ENV_PREFIX) and k not in CLI_VARIABLES}


def _key_of(variable: str) -> str:
    return ".".join(p.lower() for p in variable[len(ENV_PREFIX):].split("__"))


def where(problem: str, variables: Mapping[str, str]) -> tuple[str, str]:
    """``(variable, text)`` for a problem an override caused, else ``("", problem)``."""
    m = _KEY.match(problem)
    if m:
        key = re.sub(r"\[\d+\]", "", m.group(1))
        for variable in sorted(variables, key=len, reverse=True):
            k = _key_of(variable)
            if key == k or key.startswith(k + "."):
                return variable, problem
    for variable in variables:
        if problem.startswith(variable + ":"):
            return variable, problem.removeprefix(variable + ": ")
    return "", problem


def path_problems(s: Settings) -> list[str]:
    """Paths in the settings that syncd will read but that do not exist (the rest backend
    reads no slurm.conf and runs no Slurm command, but reads its token file)."""
    rest = s.slurm.backend == "rest"
    files = {
        "kubernetes.kubeconfig": s.kubernetes.kubeconfig,
        "daemon.operator_token_file": s.daemon.operator_token_file,
        **({"slurm.rest.token_file": s.slurm.rest.token_file} if rest
           else {"slurm.conf": s.slurm.conf}),
    }
    if s.events.mqtt.enabled:
        files |= {"events.mqtt.ca_file": s.events.mqtt.ca_file,
                  "events.mqtt.cert_file": s.events.mqtt.cert_file,
                  "events.mqtt.key_file": s.events.mqtt.key_file}
    out = [f"{key}: {path} does not exist" for key, path in files.items()
           if path and not Path(path).is_file()]
    if s.slurm.bin_dir and not rest and not Path(s.slurm.bin_dir).is_dir():
        out.append(f"slurm.bin_dir: {s.slurm.bin_dir} is not a directory")
    return out


def load_or_report(path: str, env: Mapping[str, str] | None = None) -> Settings | None:
    """The settings of ``path``; or None after printing every problem to stderr."""
    env = os.environ if env is None else env
    variables = overrides(env)
    problems: list[str]
    try:
        settings = load_file(path, variables)
        problems = path_problems(settings)
    except ConfigError as exc:
        settings, problems = None, list(exc.problems)
    if not problems:
        return settings
    report(path, problems, variables)
    return None


def report(path: str, problems: list[str], variables: Mapping[str, str]) -> None:
    in_file: list[str] = []
    in_env: list[str] = []
    for problem in problems:
        problem = problem.removeprefix(f"{path}: ")
        variable, text = where(problem, variables)
        if variable:
            in_env.append(f"{variable} (environment variable): {text}")
        else:
            in_file.append(text)
    if len(in_file) == 1 and not in_env:
        print(f"{path}: {in_file[0]}", file=sys.stderr)
        return
    n = len(problems)
    print(f"{path}: {n} problem{'s' if n != 1 else ''}"
          + (f" ({len(in_env)} in the environment)" if in_env else ""), file=sys.stderr)
    for line in (*in_file, *in_env):
        print(f"  {line}", file=sys.stderr)
