# Validation, wildcard constraints and targets. Everything else the rules need comes from xai_ssl.plan.Plan
# (pure functions of the config, tested without Snakemake).
from pathlib import Path

from snakemake.exceptions import WorkflowError

from xai_ssl.config import ConfigError, startup_problems, validate_config
from xai_ssl.hardware import nvidia_gpu_visible, torch_job_resources
from xai_ssl.plan import Plan, alternatives, read_checksums

try:
    validate_config(config, Path(workflow.basedir) / "config" / "config.schema.yaml")
except ConfigError as exc:
    raise WorkflowError(f"Invalid configuration: {exc}") from None


# What only a real run needs (a dry run may show the DAG first): CUDA when device is cuda and the jobs run here
# (with a cluster executor the compute nodes have the GPU, and a job without one says so), the ImageNet data.
onstart:
    problems = startup_problems(config, local=workflow.local_exec)
    if problems:
        raise WorkflowError("Invalid configuration for this run:\n  " + "\n  ".join(problems))


PLAN = Plan(
    config,
    checksums=read_checksums(Path(workflow.basedir) / "config" / "checksums.yaml"),
    reference_csv=str(Path(workflow.basedir) / "config" / "reference_sammani.csv"),
)

# Torch jobs (attributions, metrics, feature visualisation, training) hold the GPU when there is one: gpu=1 each,
# one at a time under `--resources gpu=1`. Without a GPU they request none and `cpu_threads` threads each, so
# `--cores all` runs several at once. The SLURM profile requests gpu=1 on these rules whatever the submitting
# host has. Torch's own thread count comes from the config (torch_threads), never from --cores.
TORCH_GPUS, TORCH_THREADS = torch_job_resources(config["device"], config["cpu_threads"], nvidia_gpu_visible())


wildcard_constraints:
    dataset=alternatives(config["datasets"]),
    model=alternatives(config["models"]),
    method=alternatives(config["methods"]),
    shard=r"\d+",
