from __future__ import annotations

from django_tasks import task

from dispatch import actions


@task()
def run_responder_import(job_id: int) -> None:
    actions.run_import(job_id)
