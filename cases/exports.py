"""A case for a legal partner, as PDF (fpdf2) or CSV. The view checks re-authentication
and records the export (who, which case, the reason encrypted with the case's key);
nothing here logs or stores what the document says."""

from __future__ import annotations

import csv
import io
from dataclasses import dataclass, field
from pathlib import Path

from django.conf import settings
from django.http import HttpResponse
from django.utils import formats, timezone
from django.utils.translation import gettext as _

from cases.models import Case, Transfer

# A Unicode font, when the system has one; without it the PDF falls back to Latin-1.
NONE = "-"
FONT_CANDIDATES = (
    "/usr/share/fonts/truetype/dejavu/DejaVuSans.ttf",
    "/usr/share/fonts/truetype/liberation/LiberationSans-Regular.ttf",
)


@dataclass
class Section:
    title: str
    rows: list[tuple[str, str]] = field(default_factory=list)


def _when(value: object) -> str:
    if value is None:
        return NONE
    return str(formats.date_format(timezone.localtime(value), "DATETIME_FORMAT"))  # type: ignore[arg-type]


def case_document(case: Case) -> list[Section]:
    person = Section(
        _("Detained person"),
        [
            (_("Name"), case.person_name),
            (_("Date of birth"), case.person_birth_date or NONE),
            (_("A-number"), case.a_number or NONE),
            (_("Detained at"), _when(case.detained_at)),
            (_("Where detained"), case.detained_place or NONE),
            (_("Held at"), case.facility.name if case.facility else _("Not known")),
            (_("Legal help"), str(case.get_legal_stage_display())),
            (_("First consultation"), _when(case.consulted_at)),
            (_("Case status"), str(case.get_status_display())),
            (_("Case reference"), case.reference),
        ],
    )
    transfers = Section(
        _("Locations"),
        [
            (
                _when(t.moved_at),
                t.facility.name + (f", {t.facility.address}" if t.facility.address else ""),
            )
            for t in Transfer.objects.filter(case=case).select_related("facility")
        ],
    )
    contacts = Section(
        _("Family contacts"),
        [
            (
                contact.name,
                " · ".join(
                    part
                    for part in (contact.relation, contact.phone, contact.language.upper())
                    if part
                ),
            )
            for contact in case.contacts.all()
        ],
    )
    referrals = Section(
        _("Referrals"),
        [
            (r.organisation.name, f"{r.get_status_display()} · {_when(r.created_at)}")
            for r in case.referrals.select_related("organisation")
        ],
    )
    hearings = Section(
        _("Hearings and check-ins"),
        [
            (_when(h.starts_at), f"{h.get_kind_display()} · {h.place}")
            for h in case.hearings.filter(cancelled_at__isnull=True)
        ],
    )
    funds = Section(
        _("Bond and mutual aid"),
        [
            (
                str(f.get_kind_display()),
                _("requested %(r)s, raised %(s)s, paid %(p)s")
                % {"r": f.requested, "s": f.raised, "p": f.paid},
            )
            for f in case.funds.all()
        ],
    )
    return [person, transfers, contacts, referrals, hearings, funds]


def _filename(case: Case, extension: str) -> str:
    return f"case-{case.reference}-{timezone.localdate():%Y%m%d}.{extension}"


def _safe_cell(value: str) -> str:
    # A spreadsheet runs a cell that starts with these as a formula.
    return f"'{value}" if value[:1] in {"=", "+", "-", "@", "\t", "\r"} else value


def csv_response(case: Case, document: list[Section]) -> HttpResponse:
    buffer = io.StringIO()
    writer = csv.writer(buffer)
    writer.writerow([_("Section"), _("Item"), _("Value")])
    for section in document:
        for label, value in section.rows:
            writer.writerow([_safe_cell(section.title), _safe_cell(label), _safe_cell(value)])
    response = HttpResponse(buffer.getvalue(), content_type="text/csv; charset=utf-8")
    response["Content-Disposition"] = f'attachment; filename="{_filename(case, "csv")}"'
    return response


def _font_path() -> str | None:
    configured = getattr(settings, "RR_PDF_FONT", "")
    for candidate in (configured, *FONT_CANDIDATES):
        if candidate and Path(candidate).is_file():
            return str(candidate)
    return None


def pdf_bytes(document: list[Section], *, title: str) -> bytes:
    from fpdf import FPDF

    pdf = FPDF(format="Letter")
    pdf.set_auto_page_break(auto=True, margin=15)
    font = _font_path()
    if font:
        pdf.add_font("case", "", font)
        family = "case"

        def text(value: str) -> str:
            return value
    else:
        family = "helvetica"

        def text(value: str) -> str:
            return value.encode("latin-1", "replace").decode("latin-1")

    pdf.set_title(title)
    pdf.add_page()
    pdf.set_font(family, size=15)
    pdf.multi_cell(0, 9, text(title), new_x="LMARGIN", new_y="NEXT")
    pdf.set_font(family, size=9)
    pdf.multi_cell(
        0,
        5,
        text(
            _("Confidential. Prepared %(when)s for a legal partner.")
            % {"when": _when(timezone.now())}
        ),
        new_x="LMARGIN",
        new_y="NEXT",
    )
    for section in document:
        pdf.ln(3)
        pdf.set_font(family, size=12)
        pdf.multi_cell(0, 7, text(section.title), new_x="LMARGIN", new_y="NEXT")
        pdf.set_font(family, size=10)
        if not section.rows:
            pdf.multi_cell(0, 6, text(NONE), new_x="LMARGIN", new_y="NEXT")
        for label, value in section.rows:
            pdf.multi_cell(0, 6, text(f"{label}: {value}"), new_x="LMARGIN", new_y="NEXT")
    return bytes(pdf.output())


def pdf_response(case: Case, document: list[Section]) -> HttpResponse:
    title = _("Case %(reference)s") % {"reference": case.reference}
    response = HttpResponse(pdf_bytes(document, title=title), content_type="application/pdf")
    response["Content-Disposition"] = f'attachment; filename="{_filename(case, "pdf")}"'
    return response
