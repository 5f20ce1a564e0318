"""Exit codes shared by every command, so scripts and on-call can rely on them."""

OK = 0
PROBLEM = 1  # the command ran and found a problem: drift, a refused resume, a failed check
USAGE = 2  # bad usage or bad config
UNREACHABLE = 3  # the daemon, Slurm, Kubernetes or a broker could not be reached
BROKEN_PIPE = 141  # the reader went away (``| head``): 128 + SIGPIPE, as the shell reports it
