"""The coordinators' retention page: every rule, its period, its bounds."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_http_methods

from core import retention
from core.models import RetentionPolicy


@login_required
@permission_required("core.manage_retention", raise_exception=True)
@require_http_methods(["GET", "POST"])
@cache_control(private=True, no_store=True)
def retention_rules(request: HttpRequest) -> HttpResponse:
    errors: dict[str, str] = {}
    if request.method == "POST":
        rule = request.POST.get("rule", "")
        try:
            days = int(request.POST.get("days", ""))
        except ValueError:
            errors[rule] = _("Enter a whole number of days.")
        else:
            try:
                retention.set_period(actor=request.user, rule=rule, days=days)
            except retention.RetentionRefused as exc:
                errors[rule] = str(exc)
            else:
                messages.success(request, _("Retention period saved."))
                return redirect("retention:rules")
        if rule not in retention.RULES_BY_KEY:
            return HttpResponse(_("Unknown retention rule."), status=422)
    periods = retention.periods()
    due = {outcome.rule.key: outcome.total for outcome in retention.purge(dry_run=True)}
    saved = {policy.rule: policy for policy in RetentionPolicy.objects.select_related("updated_by")}
    rows = [
        {
            "rule": rule,
            "days": request.POST.get("days", "") if rule.key in errors else periods[rule.key],
            "policy": saved.get(rule.key),
            "due": due[rule.key],
            "error": errors.get(rule.key, ""),
        }
        for rule in retention.RULES
    ]
    return render(request, "core/retention.html", {"rows": rows}, status=422 if errors else 200)
