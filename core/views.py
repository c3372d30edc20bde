"""The coordinators' pages: retention (every rule, its period, its bounds) and the audit
log search."""

from __future__ import annotations

from django.contrib import messages
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.http import HttpRequest, HttpResponse
from django.shortcuts import redirect, render
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_http_methods

from core import audit, retention
from core.forms import AuditFilterForm
from core.models import AuditAction, AuditEvent, RetentionPolicy

AUDIT_PAGE_SIZE = 50


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


@login_required
@permission_required("core.view_audit", raise_exception=True)
@require_GET
@cache_control(private=True, no_store=True)
def audit_log(request: HttpRequest) -> HttpResponse:
    form = AuditFilterForm(request.GET)
    valid = form.is_valid()
    events = audit.search(**form.cleaned_data) if valid else AuditEvent.objects.none()
    page = Paginator(events, AUDIT_PAGE_SIZE).get_page(request.GET.get("page"))
    rows = list(page)
    # Reading the log is itself recorded: the filters are identifiers, never content.
    used = {
        name: str(value) for name, value in (form.cleaned_data if valid else {}).items() if value
    }
    AuditEvent.objects.create(
        actor=request.user if request.user.is_authenticated else None,
        action=AuditAction.AUDIT_VIEWED,
        target_type=AuditEvent._meta.label_lower,
        target_id="search",
        detail={**used, "page": page.number, "shown": len(rows), "valid": valid},
    )
    query = request.GET.copy()
    query.pop("page", None)
    context = {"form": form, "page": page, "rows": rows, "query": query.urlencode()}
    return render(request, "core/audit.html", context, status=200 if valid else 422)
