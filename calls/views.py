"""Staff pages of the voice hotline: the console's phone section, a call's page,
the dispatchers' phone roster and the prompts. Thin: parse, check, one action."""

from __future__ import annotations

from collections.abc import Callable
from typing import Any

from django.contrib import messages
from django.contrib.auth import get_user_model
from django.contrib.auth.decorators import login_required, permission_required
from django.core.paginator import Paginator
from django.db.models import Prefetch
from django.http import FileResponse, Http404, HttpRequest, HttpResponse
from django.shortcuts import get_object_or_404, redirect, render
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.translation import gettext as _
from django.views.decorators.cache import cache_control
from django.views.decorators.http import require_GET, require_http_methods, require_POST

from accounts.models import Role
from calls import actions, flow, prompts, routing, selectors
from calls.forms import CallbackForm, CallReportForm, LanguageForm, LineForm, PromptForm, ShiftForm
from calls.models import (
    Call,
    CallLeg,
    DispatcherLine,
    DispatcherShift,
    PromptKey,
    VoiceLanguage,
    VoicePrompt,
)
from core import audit
from core.models import AuditAction
from incidents.actions import ActionRefused
from intake.actions import CallReport
from messaging.providers import ProviderUnavailable, active_voice_provider

ROSTER_PAGE_SIZE = 50


def _perm(name: str) -> Callable[[Any], Any]:
    def decorate(view: Any) -> Any:
        return login_required(permission_required(name, raise_exception=True)(view))

    return decorate


def _back(request: HttpRequest, default: str) -> HttpResponse:
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        return redirect(target)
    return redirect(default)


@_perm("calls.view_calls")
@require_GET
def console_section(request: HttpRequest) -> HttpResponse:
    """The phone section alone, which the console refreshes every few seconds."""
    context = selectors.console_context(request)
    return render(request, "calls/console_section.html", {"section": context})


@_perm("calls.take_calls")
@require_POST
def my_shift(request: HttpRequest) -> HttpResponse:
    line = selectors.line_of(request.user)
    if line is None:
        messages.error(request, _("A coordinator must add your phone before calls can ring it."))
        return _back(request, "incidents:console")
    on = request.POST.get("on_shift") == "1"
    try:
        actions.set_on_shift(actor=request.user, line=line, on_shift=on)
    except ActionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(
            request,
            _("You are on shift: hotline calls ring your phone.")
            if on
            else _("You are off shift: hotline calls no longer ring your phone."),
        )
    return _back(request, "incidents:console")


def _call_or_404(call_uuid: Any) -> Call:
    return get_object_or_404(
        Call.objects.select_related("answered_by", "report").prefetch_related(
            Prefetch("legs", queryset=CallLeg.objects.select_related("line__user")),
            "callbacks__by",
        ),
        uuid=call_uuid,
    )


def _render_call(
    request: HttpRequest,
    call: Call,
    *,
    report_form: CallReportForm | None = None,
    status: int = 200,
) -> HttpResponse:
    return render(
        request,
        "calls/call_detail.html",
        {
            "call": call,
            "reason": flow.describe_reason(call.voicemail_reason) if call.voicemail_reason else "",
            "callable": flow.is_callable(call.caller),
            "callback_form": CallbackForm(),
            "report_form": report_form or CallReportForm(),
            "language_name": {
                language.code: language.name for language in prompts.menu_languages()
            }.get(call.language, call.language),
        },
        status=status,
    )


@_perm("calls.view_calls")
@require_GET
def call_detail(request: HttpRequest, call_uuid: Any) -> HttpResponse:
    call = _call_or_404(call_uuid)
    # The page can show a transcript of what the caller said.
    audit.record(actor=request.user, action=AuditAction.CALL_VIEWED, target=call)
    return _render_call(request, call)


@_perm("calls.view_calls")
@require_POST
def call_number(request: HttpRequest, call_uuid: Any) -> HttpResponse:
    """Reveal the caller's number to call back; every reveal is audited."""
    call = _call_or_404(call_uuid)
    if not flow.is_callable(call.caller):
        raise Http404(_("This caller's number is hidden."))
    number = actions.reveal_caller(actor=request.user, call=call)
    return render(request, "calls/number.html", {"number": number, "call": call})


@_perm("calls.view_calls")
@require_GET
@cache_control(private=True, no_store=True)
def call_recording(request: HttpRequest, call_uuid: Any) -> HttpResponse:
    """The voicemail's audio, fetched from the provider; every play is audited."""
    call = _call_or_404(call_uuid)
    if not call.recording_reference:
        raise Http404(_("This call has no voicemail."))
    try:
        audio, content_type = active_voice_provider().fetch_recording(
            reference=call.recording_reference
        )
    except ProviderUnavailable:
        return HttpResponse(
            _("The recording cannot be fetched right now. Try again in a minute."),
            status=503,
            content_type="text/plain",
        )
    audit.record(actor=request.user, action=AuditAction.VOICEMAIL_PLAYED, target=call)
    response = HttpResponse(audio, content_type=content_type)
    response["Content-Disposition"] = "inline"
    return response


@_perm("calls.view_calls")
@require_POST
def call_callback(request: HttpRequest, call_uuid: Any) -> HttpResponse:
    call = _call_or_404(call_uuid)
    form = CallbackForm(request.POST)
    if not form.is_valid():
        messages.error(request, _("Choose how the call back went."))
        return _back(request, "incidents:console")
    try:
        actions.log_callback(actor=request.user, call=call, outcome=form.cleaned_data["outcome"])
    except ActionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Call back logged."))
    return _back(request, "incidents:console")


@_perm("calls.take_calls")
@require_POST
def call_report(request: HttpRequest, call_uuid: Any) -> HttpResponse:
    call = _call_or_404(call_uuid)
    form = CallReportForm(request.POST)
    if not form.is_valid():
        return _render_call(request, call, report_form=form, status=422)
    data = form.cleaned_data
    report = actions.write_call_report(
        actor=request.user,
        call=call,
        submission_key=data["submission"],
        data=CallReport(
            text=data["text"],
            language=call.language or request.LANGUAGE_CODE,
            location_text=data["location_text"],
            salute={"size": data["salute_size"], "uniform": data["salute_uniform"]},
        ),
    )
    messages.success(request, _("Report filed from the call."))
    return redirect("incidents:report", report_uuid=report.uuid)


# --- coordinators: the roster of dispatcher phones ----------------------------------------


def _staff_who_take_calls() -> Any:
    return (
        get_user_model()
        .objects.filter(is_active=True, role__in=[Role.DISPATCHER, Role.COORDINATOR])
        .select_related("dispatcher_line")
        .order_by("username")
    )


@_perm("calls.manage_roster")
@require_GET
def roster(request: HttpRequest) -> HttpResponse:
    page = Paginator(_staff_who_take_calls(), ROSTER_PAGE_SIZE).get_page(request.GET.get("page"))
    on_shift = set(routing.lines_on_shift().values_list("pk", flat=True))
    return render(request, "calls/roster.html", {"page": page, "on_shift": on_shift})


@_perm("calls.manage_roster")
@require_http_methods(["GET", "POST"])
def roster_line(request: HttpRequest, user_uuid: Any) -> HttpResponse:
    person = get_object_or_404(_staff_who_take_calls(), uuid=user_uuid)
    line = DispatcherLine.objects.filter(user=person).first()
    form = LineForm(request.POST if request.method == "POST" else None, initial={"active": True})
    if request.method == "POST" and form.is_valid():
        try:
            actions.save_line(
                actor=request.user,
                user=person,
                phone=form.cleaned_data["phone"],
                active=form.cleaned_data["active"],
            )
        except ActionRefused as exc:
            form.add_error("phone", str(exc))
        else:
            messages.success(request, _("Saved."))
            return redirect("calls:roster-line", user_uuid=person.uuid)
    status = 422 if request.method == "POST" else 200
    return render(
        request,
        "calls/roster_line.html",
        {
            "person": person,
            "line": line,
            "form": form,
            "shift_form": ShiftForm(),
            "shifts": line.shifts.all() if line else [],
            "on_shift": selectors.is_on_shift(line),
        },
        status=status,
    )


@_perm("calls.manage_roster")
@require_POST
def roster_shift(request: HttpRequest, user_uuid: Any) -> HttpResponse:
    line = get_object_or_404(DispatcherLine, user__uuid=user_uuid)
    if "on_shift" in request.POST:
        try:
            actions.set_on_shift(
                actor=request.user, line=line, on_shift=request.POST["on_shift"] == "1"
            )
        except ActionRefused as exc:
            messages.error(request, str(exc))
        return redirect("calls:roster-line", user_uuid=user_uuid)
    form = ShiftForm(request.POST)
    if form.is_valid():
        try:
            actions.add_shift(
                actor=request.user,
                line=line,
                starts_at=form.cleaned_data["starts_at"],
                ends_at=form.cleaned_data["ends_at"],
            )
        except ActionRefused as exc:
            messages.error(request, str(exc))
        else:
            messages.success(request, _("Shift added."))
    else:
        messages.error(request, _("Enter when the shift starts and ends."))
    return redirect("calls:roster-line", user_uuid=user_uuid)


@_perm("calls.manage_roster")
@require_POST
def roster_shift_remove(request: HttpRequest, user_uuid: Any, shift_id: int) -> HttpResponse:
    shift = get_object_or_404(DispatcherShift, pk=shift_id, line__user__uuid=user_uuid)
    actions.remove_shift(actor=request.user, shift=shift)
    messages.success(request, _("Shift removed."))
    return redirect("calls:roster-line", user_uuid=user_uuid)


# --- coordinators: what callers hear -----------------------------------------------------


@_perm("calls.manage_prompts")
@require_http_methods(["GET", "POST"])
def prompt_list(request: HttpRequest) -> HttpResponse:
    language_form = LanguageForm(request.POST if request.method == "POST" else None)
    if request.method == "POST" and language_form.is_valid():
        language_form.save()
        messages.success(request, _("Language saved. Type or record its prompts below."))
        return redirect("calls:prompts")
    own = {(p.language, p.key): p for p in VoicePrompt.objects.all()}
    languages = prompts.menu_languages()
    offered = {language.code for language in languages}
    pending = list(VoiceLanguage.objects.exclude(code__in=offered).values_list("code", flat=True))
    rows = []
    for code in [language.code for language in languages] + pending:
        items = [
            {
                "key": key,
                "own": own.get((code, key.value)),
                "built_in": prompts.built_in_text(key, code, position=2, digit=1, name=code),
            }
            for key in PromptKey
        ]
        rows.append({"code": code, "offered": code in offered, "items": items})
    return render(
        request,
        "calls/prompts.html",
        {
            "rows": rows,
            "languages": languages,
            "language_form": language_form,
        },
        status=422 if request.method == "POST" else 200,
    )


@_perm("calls.manage_prompts")
@require_POST
def prompt_save(request: HttpRequest, language: str, key: str) -> HttpResponse:
    known = {lang.code for lang in prompts.menu_languages()} | set(
        VoiceLanguage.objects.values_list("code", flat=True)
    )
    if language not in known or key not in PromptKey.values:
        raise Http404(_("No such prompt."))
    if "reset" in request.POST:
        prompt = VoicePrompt.objects.filter(language=language, key=key).first()
        if prompt is not None:
            actions.reset_prompt(actor=request.user, prompt=prompt)
        messages.success(request, _("Back to the built-in words."))
        return redirect("calls:prompts")
    form = PromptForm(request.POST, request.FILES)
    if not form.is_valid():
        messages.error(
            request,
            " ".join(str(e) for e in form.errors.get("__all__", [])) or _("Check the prompt."),
        )
        return redirect("calls:prompts")
    upload = form.cleaned_data.get("audio")
    if upload is not None and upload.size > actions.MAX_PROMPT_AUDIO_BYTES:
        messages.error(request, _("The recording is too large (2 MB at most)."))
        return redirect("calls:prompts")
    try:
        actions.save_prompt(
            actor=request.user,
            language=language,
            key=key,
            text=form.cleaned_data.get("text", ""),
            audio=upload.read() if upload else None,
            audio_type=getattr(upload, "content_type", "") if upload else "",
        )
    except ActionRefused as exc:
        messages.error(request, str(exc))
    else:
        messages.success(request, _("Prompt saved."))
    return redirect("calls:prompts")


@require_GET
@cache_control(public=True, max_age=300)
def prompt_audio(request: HttpRequest, prompt_uuid: Any) -> FileResponse:
    """A recorded prompt, public: the telephone provider fetches it to play to callers,
    and it holds nothing about anyone."""
    prompt = get_object_or_404(VoicePrompt, uuid=prompt_uuid)
    if not prompt.audio:
        raise Http404
    return FileResponse(prompt.audio.open("rb"), content_type=prompt.audio_type)
