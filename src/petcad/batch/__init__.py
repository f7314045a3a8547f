"""Cohort-scale batch runs: one task per study, resumable, split into shards, local or on Dask.

Every batch command (``suv`` over many studies, ``features``, ``predict --manifest``,
``segment --manifest``) is a list of :class:`StudyTask` run by :func:`run_tasks`:

* **streaming**: one study is read, processed and written at a time (per worker);
* **resume**: a task whose output files all exist is skipped, so a killed run or a
  failed array job is re-run with the same command;
* **shards**: ``--shard K/N`` runs only the studies that hash to shard K of N
  (:func:`in_shard`), so any scheduler (SLURM array jobs, Kubernetes indexed jobs)
  splits a cohort without coordination; the hash of the study key is stable when the
  cohort grows;
* **Dask**: ``--scheduler ADDRESS|local`` runs the same tasks on a Dask distributed
  cluster (``pip install petcad[dask]``); the outputs are the same files.

Per-study results that form one table (features, predictions) are written as part files
and merged by :func:`merge_parts` once every study of the cohort has its part.
"""

from petcad.batch.runner import BatchReport, StudyTask, run_tasks
from petcad.batch.shard import Shard, in_shard, parse_shard
from petcad.batch.tables import check_parts_settings, merge_parts, part_path

__all__ = ["BatchReport", "check_parts_settings", "Shard", "StudyTask", "in_shard", "merge_parts", "parse_shard", "part_path", "run_tasks"]
