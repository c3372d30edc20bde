"""How other apps add to the console without incidents importing them.

- ``panels``: sections on the incident page (dispatch: offers, responders, field
  reports). Each has a template and a function giving its context.
- ``report_panels``: sections on a report's page (calls: the call it came from, its
  voicemail), each with a template and a function of the request and the report.
- ``sections``: blocks on the console page itself (calls: the phone lines), each with
  a template and a function of the request giving its context.
- ``row_annotations``: extra columns for the console's incident query, so a row can
  show them without a query per row; ``row_templates`` render them in the row.
"""

from __future__ import annotations

from collections.abc import Callable
from dataclasses import dataclass
from typing import Any

from django.http import HttpRequest

from incidents.models import Incident
from intake.models import Report


@dataclass(frozen=True)
class Panel:
    name: str
    template: str
    context: Callable[[HttpRequest, Incident], dict[str, Any]]


@dataclass(frozen=True)
class ReportPanel:
    name: str
    template: str
    context: Callable[[HttpRequest, Report], dict[str, Any]]


@dataclass(frozen=True)
class Section:
    name: str
    template: str
    context: Callable[[HttpRequest], dict[str, Any]]


panels: list[Panel] = []
sections: list[Section] = []
report_panels: list[ReportPanel] = []
row_annotations: dict[str, Callable[[], Any]] = {}
row_templates: list[str] = []


def add_panel(panel: Panel) -> None:
    if all(p.name != panel.name for p in panels):
        panels.append(panel)


def add_report_panel(panel: ReportPanel) -> None:
    if all(p.name != panel.name for p in report_panels):
        report_panels.append(panel)


def add_console_section(section: Section) -> None:
    if all(s.name != section.name for s in sections):
        sections.append(section)


def add_row_annotation(name: str, expression: Callable[[], Any]) -> None:
    row_annotations[name] = expression


def add_row_template(template: str) -> None:
    if template not in row_templates:
        row_templates.append(template)
