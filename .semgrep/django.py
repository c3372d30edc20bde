# Samples for `semgrep --test .semgrep`: each `ruleid:` line must be flagged by that
# rule and each `ok:` line must not (make security runs this before the scan).
# ruff: noqa
from django.http import HttpResponse, HttpResponseRedirect
from django.shortcuts import redirect
from django.utils.html import format_html
from django.utils.http import url_has_allowed_host_and_scheme
from django.utils.safestring import mark_safe
from django.views.decorators.csrf import csrf_exempt


def sql(cursor, table, name, Report):
    # ruleid: django-raw-sql-formatted
    cursor.execute(f"SELECT * FROM report WHERE name = '{name}'")
    # ruleid: django-raw-sql-formatted
    cursor.execute("SELECT * FROM report WHERE name = '%s'" % name)
    # ruleid: django-raw-sql-formatted
    Report.objects.raw("SELECT * FROM intake_report WHERE text = '{}'".format(name))
    # ok: django-raw-sql-formatted
    cursor.execute("SELECT * FROM report WHERE name = %s", [name])
    # ruleid: django-queryset-extra
    Report.objects.extra(where=[f"text = '{name}'"])


def html(request, text):
    # ruleid: django-mark-safe-non-literal
    mark_safe(text)
    # ok: django-mark-safe-non-literal
    mark_safe("<br>")
    # ruleid: django-format-html-preformatted
    format_html(f"<b>{text}</b>")
    # ok: django-format-html-preformatted
    format_html("<b>{}</b>", text)
    # ruleid: django-response-from-request
    return HttpResponse(request.GET.get("q"))


def go(request):
    # ruleid: django-open-redirect
    return redirect(request.GET.get("next"))


def go_checked(request):
    target = request.POST.get("next", "")
    if target and url_has_allowed_host_and_scheme(target, allowed_hosts={request.get_host()}):
        # ok: django-open-redirect
        return redirect(target)
    return HttpResponseRedirect("/")


# ruleid: django-csrf-exempt
@csrf_exempt
def webhook(request):
    return HttpResponse("")


def logs(logger, request):
    # ruleid: django-logging-request-data
    logger.info("report from %s", request.POST["From"])
    # ok: django-logging-request-data
    logger.info("report %s stored", 42)


# ruleid: django-debug-true
DEBUG = True
# ruleid: django-insecure-setting
SESSION_COOKIE_SECURE = False
# ruleid: django-password-hasher-weak
PASSWORD_HASHERS = ["django.contrib.auth.hashers.MD5PasswordHasher"]
