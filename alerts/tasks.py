from __future__ import annotations

from django_tasks import task

from alerts import actions


@task()
def fan_out_alert(alert_id: int) -> None:
    actions.fan_out(alert_id)
