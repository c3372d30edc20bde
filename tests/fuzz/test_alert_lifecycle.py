"""A state machine over report -> incident -> verification -> alert, driven through the
real actions (intake, incidents, dispatch, alerts) in random orders.

The model below is written from the documented rules, not read from the code:

- incidents: new -> verifying -> verified | unverified | false -> closed; unverified may
  go back to verifying; any open state may close. Verified needs
  RR_CONFIRMATIONS_REQUIRED distinct responders who reported it verified. Offers move a
  new or unverified incident to verifying.
- alerts (R24): an alert needs a verified incident (rumour control: a false one), is
  approved by a dispatcher other than its author, and only an approved alert has
  outbox rows; cancelling before it is sent means nothing of it is ever sent; closing
  the incident cancels a live alert.
- anything refused raises the domain error and changes nothing.
"""

from __future__ import annotations

import itertools
from typing import Any

import pytest
from django.db import transaction
from hypothesis import strategies as st
from hypothesis.stateful import (
    Bundle,
    RuleBasedStateMachine,
    initialize,
    invariant,
    multiple,
    rule,
    run_state_machine_as_test,
)

from accounts.models import Role, User
from alerts import actions as alert_actions
from alerts.models import Alert, AlertKind, AlertStatus
from alerts.tests.factories import subscriber
from conftest import FRUITVALE, make_user
from core.models import AuditEvent
from dispatch import actions as dispatch_actions
from dispatch.models import Finding, Offer
from dispatch.tests.factories import responder
from incidents import actions as incident_actions
from incidents.models import IllegalTransition, Incident, IncidentStatus, TimelineEntry
from intake.tests.factories import web_report
from messaging.models import OutboxMessage, OutboxStatus
from tests.fuzz.settings import FUZZ_MACHINE

S = IncidentStatus
SPEC: dict[str, set[str]] = {
    S.NEW: {S.VERIFYING, S.CLOSED},
    S.VERIFYING: {S.VERIFIED, S.UNVERIFIED, S.FALSE, S.CLOSED},
    S.UNVERIFIED: {S.VERIFYING, S.CLOSED},
    S.VERIFIED: {S.CLOSED},
    S.FALSE: {S.CLOSED},
    S.CLOSED: set(),
}
LIVE = {AlertStatus.AWAITING_APPROVAL, AlertStatus.SENDING, AlertStatus.PAUSED}
SENDABLE = {OutboxStatus.QUEUED, OutboxStatus.SENDING, OutboxStatus.HELD}
CONFIRMATIONS_REQUIRED = 1
_where = itertools.count()


class AlertLifecycle(RuleBasedStateMachine):
    dispatchers: list[User]
    subscribers: list[Any]
    alerts = Bundle("alerts")

    def __init__(self) -> None:
        super().__init__()
        # Each example in a savepoint of its own, rolled back at the end, so examples
        # cannot match each other's reports or count each other's alerts.
        self.savepoint = transaction.atomic()
        self.savepoint.__enter__()
        self.incident: Incident | None = None
        self.status: str = ""
        self.confirmations = 0
        # alert pk -> (model status, author pk, approver pk or None, approved while the
        # incident was fit for it, cancelled before any send)
        self.model: dict[int, dict[str, Any]] = {}

    def teardown(self) -> None:
        transaction.set_rollback(True)
        self.savepoint.__exit__(None, None, None)

    # helpers

    def _fresh(self) -> Incident:
        assert self.incident is not None
        return Incident.objects.get(pk=self.incident.pk)

    def _footprint(self) -> tuple[int, int, int, int, int]:
        """What a refused action must leave as it was."""
        return (
            TimelineEntry.objects.count(),
            AuditEvent.objects.count(),
            Alert.objects.count(),
            OutboxMessage.objects.count(),
            Offer.objects.count(),
        )

    def _fit(self, state: dict[str, Any]) -> bool:
        return (state["kind"] == AlertKind.ALERT and self.status == S.VERIFIED) or (
            state["kind"] == AlertKind.RUMOUR and self.status == S.FALSE
        )

    # rules

    @initialize()
    def report(self) -> None:
        report = web_report(
            "agents in vests at the bus stop", at=FRUITVALE, where=f"bus stop {next(_where)}"
        )
        assert report.incident is not None
        self.incident = report.incident
        self.status = S.NEW

    @rule()
    def another_report(self) -> None:
        report = web_report("two more vans now", at=FRUITVALE, where="same corner")
        if self.status == S.CLOSED:
            assert report.incident_id != self.incident_pk
        else:
            assert report.incident_id == self.incident_pk

    @property
    def incident_pk(self) -> int:
        assert self.incident is not None
        return self.incident.pk

    @rule(to=st.sampled_from(list(S)), dispatcher=st.integers(0, 1))
    def change_status(self, to: str, dispatcher: int) -> None:
        before = self._footprint()
        legal = to in SPEC[self.status]
        gated = to == S.VERIFIED and self.confirmations < CONFIRMATIONS_REQUIRED
        try:
            incident_actions.change_status(
                actor=self.dispatchers[dispatcher],
                incident=self._fresh(),
                status=S(to),
                reason="fuzz",
            )
        except IllegalTransition:
            assert not legal, f"{self.status} -> {to} was refused"
            assert self._footprint() == before
            return
        except incident_actions.ActionRefused:
            assert legal and gated, f"{self.status} -> {to} was refused by a gate"
            assert self._footprint() == before
            return
        assert legal and not gated, f"{self.status} -> {to} was allowed"
        self.status = to
        if to == S.CLOSED:
            for state in self.model.values():
                if state["status"] in LIVE and state["kind"] == AlertKind.ALERT:
                    state["status"] = AlertStatus.CANCELLED
                    state["cancelled_unsent"] = not state["sent"]

    @rule(finding=st.sampled_from(list(Finding)))
    def responder_reports(self, finding: str) -> None:
        person = responder(at=FRUITVALE)
        before = self._footprint()
        try:
            (offer,) = dispatch_actions.send_offers(
                actor=self.dispatchers[0], incident=self._fresh(), responders=[person]
            )
        except incident_actions.ActionRefused:
            assert self.status not in {S.NEW, S.VERIFYING, S.UNVERIFIED}
            assert self._footprint() == before
            return
        assert self.status in {S.NEW, S.VERIFYING, S.UNVERIFIED}
        self.status = S.VERIFYING
        dispatch_actions.answer_offer(offer=offer, accept=True)
        dispatch_actions.save_field_report(
            offer=offer, data=dispatch_actions.FieldData(finding=finding)
        )
        if finding == Finding.VERIFIED:
            self.confirmations += 1

    @rule(dispatcher=st.integers(0, 1))
    def verify(self, dispatcher: int) -> None:
        """A responder on the scene confirms it, then a dispatcher marks it verified."""
        self.responder_reports(Finding.VERIFIED)
        self.change_status(S.VERIFIED, dispatcher)

    @rule(to=st.sampled_from([S.FALSE, S.UNVERIFIED]), dispatcher=st.integers(0, 1))
    def reject(self, to: str, dispatcher: int) -> None:
        """A responder finds nothing or something else; a dispatcher decides so."""
        self.responder_reports(Finding.FALSE if to == S.FALSE else Finding.NOT_VERIFIED)
        self.change_status(to, dispatcher)

    @rule(target=alerts, kind=st.sampled_from(list(AlertKind)), author=st.integers(0, 1))
    def compose(self, kind: str, author: int) -> Any:
        before = self._footprint()
        fit = (kind == AlertKind.ALERT and self.status == S.VERIFIED) or (
            kind == AlertKind.RUMOUR and self.status == S.FALSE
        )
        try:
            alert = alert_actions.compose(
                actor=self.dispatchers[author],
                incident=self._fresh(),
                kind=AlertKind(kind),
                radius_m=1000,
                bodies={"en": "Verified: agents at the bus stop.", "es": "Verificado: agentes."},
            )
        except alert_actions.AlertRefused:
            assert not fit, f"a {kind} was refused for a {self.status} incident"
            assert self._footprint() == before
            return multiple()
        assert fit, f"a {kind} was composed for a {self.status} incident"
        self.model[alert.pk] = {
            "status": AlertStatus.AWAITING_APPROVAL,
            "kind": kind,
            "author": self.dispatchers[author].pk,
            "approver": None,
            "sent": False,
            "cancelled_unsent": False,
        }
        return alert.pk

    @rule(alert_pk=alerts, approver=st.integers(0, 1))
    def approve(self, alert_pk: int, approver: int) -> None:
        state = self.model[alert_pk]
        actor = self.dispatchers[approver]
        fit = self._fit(state)
        allowed = (
            state["status"] == AlertStatus.AWAITING_APPROVAL and actor.pk != state["author"] and fit
        )
        before = self._footprint()
        try:
            alert_actions.approve(actor=actor, alert=Alert.objects.get(pk=alert_pk))
        except alert_actions.AlertRefused:
            assert not allowed, f"approval refused: {state}, incident {self.status}"
            assert self._footprint() == before
            return
        assert allowed, f"approval allowed: {state}, approver {actor.pk}, incident {self.status}"
        state["status"] = AlertStatus.SENDING
        state["approver"] = actor.pk

    @rule(alert_pk=alerts)
    def cancel(self, alert_pk: int) -> None:
        state = self.model[alert_pk]
        before = self._footprint()
        try:
            alert_actions.cancel(actor=self.dispatchers[0], alert=Alert.objects.get(pk=alert_pk))
        except alert_actions.AlertRefused:
            assert state["status"] not in LIVE
            assert self._footprint() == before
            return
        assert state["status"] in LIVE
        state["status"] = AlertStatus.CANCELLED
        state["cancelled_unsent"] = not state["sent"]

    @rule(alert_pk=alerts)
    def worker_fans_out(self, alert_pk: int) -> None:
        """The worker's task, which may run late, twice, or after a cancel."""
        state = self.model[alert_pk]
        if state["status"] in {AlertStatus.SENDING, AlertStatus.PAUSED} and not self._fit(state):
            # Too late: the incident is no longer what the alert was approved for.
            state["status"] = AlertStatus.CANCELLED
            state["cancelled_unsent"] = not state["sent"]
        alert_actions.fan_out(alert_pk)
        alert_actions.fan_out(alert_pk)
        rows = OutboxMessage.objects.filter(batch=Alert.objects.get(pk=alert_pk).batch)
        if state["status"] == AlertStatus.SENDING:
            assert rows.filter(status=OutboxStatus.QUEUED).count() == len(self.subscribers)
        else:
            assert not rows.filter(status__in=SENDABLE).exists()

    # invariants

    @invariant()
    def incident_is_where_the_model_says(self) -> None:
        if self.incident is not None:
            assert self._fresh().status == self.status

    @invariant()
    def alerts_are_where_the_model_says(self) -> None:
        for pk, state in self.model.items():
            alert = Alert.objects.get(pk=pk)
            assert alert.status == state["status"], (pk, alert.status, state)
            assert alert.approved_by_id == state["approver"]

    @invariant()
    def outbox_rows_only_after_verification_and_two_people(self) -> None:
        """R24."""
        for alert in Alert.objects.filter(pk__in=self.model):
            rows = OutboxMessage.objects.filter(batch=alert.batch)
            if not rows.exists():
                continue
            assert alert.approved_by_id is not None
            assert alert.approved_by_id != alert.composed_by_id
            assert self.model[alert.pk]["approver"] is not None
            if alert.status == AlertStatus.CANCELLED:
                assert not rows.filter(status__in=SENDABLE).exists()
            if self.model[alert.pk]["cancelled_unsent"]:
                assert not rows.filter(
                    status__in=[OutboxStatus.SENT, OutboxStatus.DELIVERED]
                ).exists()


@pytest.mark.django_db
def test_report_incident_verification_alert(service_area: Any, settings: Any) -> None:
    settings.RR_CONFIRMATIONS_REQUIRED = CONFIRMATIONS_REQUIRED
    settings.RR_ALERT_SECOND_APPROVAL = True
    # The circuit breaker counts approvals across examples; it has tests of its own.
    settings.RR_ALERTS_PER_AREA_PER_HOUR = 1_000_000
    AlertLifecycle.dispatchers = [
        make_user(Role.DISPATCHER, "fuzz-dani"),
        make_user(Role.DISPATCHER, "fuzz-alex"),
    ]
    AlertLifecycle.subscribers = [
        subscriber(at=(FRUITVALE[0] + i * 0.0005, FRUITVALE[1])) for i in range(3)
    ]
    run_state_machine_as_test(AlertLifecycle, settings=FUZZ_MACHINE)
