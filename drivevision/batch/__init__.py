"""Many inputs in one run: the jobs a command line names (``find_jobs``), which of them need
work by the manifest in the output folder (``plan_batch``), and running them
(``run_batch``) on local worker processes (``local_workers``) or Ray actors
(``drivevision.batch.ray_workers``, imported only when asked for)."""

from drivevision.batch.driver import Outcome, Plan, claim_out_dir, plan_batch, run_batch
from drivevision.batch.jobs import Job, find_jobs
from drivevision.batch.local import LocalWorkers, local_workers
from drivevision.batch.work import BatchSettings, Event, JobResult

__all__ = ["BatchSettings", "Event", "Job", "JobResult", "LocalWorkers", "Outcome", "Plan",
           "claim_out_dir", "find_jobs", "local_workers", "plan_batch", "run_batch"]
