"""Demo data for `make run`: a fictional network over hand-drawn Oakland neighbourhoods,
one user per role, and a few incidents in different states, all created through the
same actions the product uses."""

from __future__ import annotations

import uuid
from argparse import ArgumentParser
from datetime import timedelta
from pathlib import Path
from typing import Any

from allauth.mfa.models import Authenticator
from allauth.mfa.recovery_codes.internal.auth import RecoveryCodes
from allauth.mfa.totp.internal.auth import TOTP
from django.conf import settings
from django.core.management.base import BaseCommand, CommandError
from django.db import transaction
from django.utils import timezone

from accounts.models import Role, User
from alerts import subscriptions
from alerts.models import AreaKind
from alerts.zipcodes import load_zip_codes, parse_zip_csv
from core.areas import load_service_area, parse_geojson
from core.geo import Point
from core.models import Neighbourhood, ServiceArea
from dispatch import actions as dispatch_actions
from dispatch.models import Finding, Responder
from incidents import actions as incident_actions
from incidents.models import IncidentStatus, Level
from intake import actions as intake_actions
from intake.models import Report
from messaging.actions import receive_sms

AREA_NAME = "Demo network"
AREA_FILE = Path(settings.BASE_DIR) / "demo" / "neighbourhoods.geojson"
ZIP_FILE = Path(settings.BASE_DIR) / "demo" / "zip_codes.csv"
DEMO_SUBSCRIBERS = 60

DEMO_USERS = [
    ("coordinator", "Cora", "Coordinator", Role.COORDINATOR),
    ("dispatcher", "Dani", "Dispatcher", Role.DISPATCHER),
    ("dispatcher2", "Alex", "Second-Dispatcher", Role.DISPATCHER),
    ("verifier", "Vero", "Verifier", Role.VERIFIER),
    ("family", "Fran", "Family-Support", Role.FAMILY_SUPPORT),
]
DEMO_DISPATCHER_PHONES = [
    ("dispatcher", "+15105550401", True),
    ("dispatcher2", "+15105550402", False),
]
DEMO_PASSWORD = "rapid-response-demo"  # noqa: S105 - printed for the demo, refused without DEBUG
# Every demo user's authenticator-app secret (MFA is required for staff). Demo only:
# `manage.py demo_totp <username>` prints the current code, and only with DEBUG.
DEMO_TOTP_SECRET = "RAPIDRESPONSEDEMOTOTPSECRET23456"  # noqa: S105 - demo only, as above


class Command(BaseCommand):
    help = "Load demo users, the demo service area and example incidents (development only)."

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument(
            "--force", action="store_true", help="load even when DEBUG is off (never in production)"
        )

    def handle(self, *args: Any, **options: Any) -> None:
        if not settings.DEBUG and not options["force"]:
            raise CommandError("Demo data has known passwords: it loads only with DEBUG=1.")
        self._users()
        if not ServiceArea.objects.filter(name=AREA_NAME).exists():
            load_service_area(AREA_NAME, parse_geojson(AREA_FILE.read_text(encoding="utf-8")))
        load_zip_codes(parse_zip_csv(ZIP_FILE.read_text(encoding="utf-8")))
        if Report.objects.exists():
            self.stdout.write("Reports already exist; example incidents not added again.")
        else:
            self._incidents()
            self._subscribers()
            self._calls()
        self._dispatcher_phones()
        self._print_logins()

    def _users(self) -> None:
        for username, first, last, role in DEMO_USERS:
            user, created = User.objects.get_or_create(
                username=username,
                defaults={"first_name": first, "last_name": last.replace("-", " "), "role": role},
            )
            if created:
                user.set_password(DEMO_PASSWORD)
                user.save()
            # The public demo key only for an account that has the public demo password
            # and no factor yet: never for a real person named like a demo user.
            has_factor = Authenticator.objects.filter(user=user).exists()
            if not has_factor and user.check_password(DEMO_PASSWORD):
                TOTP.activate(user, DEMO_TOTP_SECRET)
                RecoveryCodes.activate(user)

    @transaction.atomic
    def _incidents(self) -> None:
        now = timezone.now()
        dispatcher = User.objects.get(username="dispatcher")

        def web(
            text: str, where: str, lat: float, lng: float, minutes_ago: int, **salute: str
        ) -> Report:
            return intake_actions.submit_web_report(
                intake_actions.WebReport(
                    text=text,
                    language="en",
                    submission_key=uuid.uuid4(),
                    observed_at=now - timedelta(minutes=minutes_ago),
                    location_text=where,
                    point=Point(lat, lng),
                    salute=salute,
                )
            )

        def sms(number: str, body: str) -> None:
            received = receive_sms(
                provider="console",
                provider_sid=f"DEMO{uuid.uuid4().hex}",
                sender=number,
                recipient=settings.RR_HOTLINE_NUMBER,
                body=body,
            )
            intake_actions.create_report_from_message(message_id=received.message.pk)

        # Fruitvale: verified, red; a second report by text joins it.
        raid = web(
            "Two unmarked SUVs and six agents in vests marked POLICE ICE outside the taqueria. "
            "They are stopping people at the bus stop.",
            "International Blvd & 35th Ave",
            37.7766,
            -122.2265,
            25,
            size="6 agents, 2 SUVs",
            activity="stopping people at the bus stop",
            uniform="vests marked POLICE ICE",
            equipment="dark grey SUVs, no plates visible",
        )
        sms("+15105550121", "ICE at International and 35th 37.7768,-122.2262 they took someone")
        assert raid.incident is not None  # noqa: S101 - demo data invariant
        team = self._responders()
        offers = dispatch_actions.send_offers(
            actor=dispatcher, incident=raid.incident, responders=[team["Vero"], team["Marisol"]]
        )
        for offer in offers:
            dispatch_actions.answer_offer(offer=offer, accept=True)
        dispatch_actions.save_field_report(
            offer=offers[0],
            data=dispatch_actions.FieldData(
                finding=Finding.VERIFIED,
                agencies="ICE ERO",
                officers=6,
                vehicles=2,
                detentions=1,
                salute={"activity": "One man put into the grey SUV at 3:52 pm."},
            ),
        )
        incident_actions.change_level(
            actor=dispatcher, incident=raid.incident, level=Level.RED, reason="Arrest seen."
        )
        incident_actions.change_status(
            actor=dispatcher,
            incident=raid.incident,
            status=IncidentStatus.VERIFIED,
            reason="Verifier on scene confirmed ICE officers and one detention.",
        )
        self._case(raid.incident, detained_at=now - timedelta(minutes=8))

        # San Antonio: a rumour that turned out to be fare inspectors.
        rumour = web(
            "People say la migra is checking papers on the bus at 14th Ave.",
            "14th Ave & E 12th St",
            37.7880,
            -122.2365,
            50,
        )
        assert rumour.incident is not None  # noqa: S101
        [check] = dispatch_actions.send_offers(
            actor=dispatcher, incident=rumour.incident, responders=[team["Tomás"]]
        )
        dispatch_actions.answer_offer(offer=check, accept=True)
        dispatch_actions.save_field_report(
            offer=check,
            data=dispatch_actions.FieldData(
                finding=Finding.FALSE,
                agencies="AC Transit fare inspectors",
                notes="Fare inspectors checking tickets on the 1 bus. No immigration agents.",
            ),
        )
        incident_actions.change_level(
            actor=dispatcher,
            incident=rumour.incident,
            level=Level.BLUE,
            reason="AC Transit fare inspectors, not ICE.",
        )
        incident_actions.change_status(
            actor=dispatcher,
            incident=rumour.incident,
            status=IncidentStatus.FALSE,
            reason="Fare inspectors checking tickets; no immigration agents.",
        )

        # Downtown: being checked.
        downtown = web(
            "Large group of federal agents gathering near the federal building, several vans.",
            "Clay St & 13th St",
            37.8040,
            -122.2735,
            8,
            size="about 15",
            equipment="white vans",
        )
        assert downtown.incident is not None  # noqa: S101
        dispatch_actions.send_offers(
            actor=dispatcher, incident=downtown.incident, responders=[team["Kim"], team["Jamal"]]
        )

        # Eastlake: new, not yet looked at.
        web(
            "Car with two men in tactical vests parked outside the school for an hour.",
            "E 18th St & 5th Ave",
            37.7985,
            -122.2500,
            3,
        )

        # Texts without a location wait in the unplaced queue; HELP is answered, not filed.
        sms("+15105550142", "La migra está en la escuela de mi hijo, por favor ayuda")
        sms("+15105550163", "agents knocking on doors on my street right now")
        sms("+15105550184", "HELP")

    def _case(self, incident: Any, *, detained_at: Any) -> None:
        """The man taken at the Fruitvale incident: a family-support case, with his
        sister (Spanish, texts allowed; her number is on the test phone), the
        facility directory and two legal partners."""
        from cases import actions as case_actions
        from cases.models import Facility, PartnerOrganisation

        annex, _ = Facility.objects.get_or_create(
            name="Golden State Annex",
            defaults={"address": "611 Frontage Rd, McFarland, CA", "phone": "+16617920960"},
        )
        Facility.objects.get_or_create(
            name="Mesa Verde ICE Processing Center",
            defaults={"address": "425 Golden State Ave, Bakersfield, CA"},
        )
        Facility.objects.get_or_create(
            name="ICE San Francisco Field Office (630 Sansome)",
            defaults={"address": "630 Sansome St, San Francisco, CA"},
        )
        PartnerOrganisation.objects.get_or_create(
            name="East Bay Immigrant Legal Defense",
            defaults={"languages": "en,es", "capacity": 4, "contact": "Intake line, weekdays"},
        )
        PartnerOrganisation.objects.get_or_create(
            name="Bay Area Asylum Clinic",
            defaults={"languages": "en,es,pt", "capacity": 0},
        )
        family = User.objects.get(username="family")
        case = case_actions.open_case(
            actor=family,
            incident=incident,
            person=case_actions.PersonData(
                person_name="Ernesto Ramírez",
                person_birth_date=None,
                a_number="",
                detained_at=detained_at,
                detained_place="International Blvd & 35th Ave",
            ),
            facility=annex,
            assigned_to=family,
        )
        case_actions.save_contact(
            actor=family,
            case=case,
            data=case_actions.ContactData(
                name="Lucía Ramírez",
                relation="hermana",
                phone="+15105550121",
                language="es",
                sms_consent=True,
            ),
        )
        case_actions.add_task(
            actor=family,
            case=case,
            title="Call Lucía back about the bond",
            assignee=family,
            due_on=timezone.localdate(),
        )
        self._hearing(case, family)

    def _hearing(self, case: Any, family: Any) -> None:
        """His first master-calendar hearing in five days: Lucía gets the reminders on
        the test phone, and accompaniment volunteers can sign up (ACCOMPANY <code>)."""
        from datetime import datetime, time

        from cases import hearings
        from cases.models import HearingKind
        from cases.reminders import network_zone

        day = timezone.localdate(timezone=network_zone()) + timedelta(days=5)
        hearings.add_hearing(
            actor=family,
            case=case,
            data=hearings.HearingData(
                kind=HearingKind.HEARING,
                starts_at=datetime.combine(day, time(9, 0), network_zone()),
                place="San Francisco Immigration Court, 630 Sansome St, 4th floor",
                notes="Master calendar hearing; ask the judge for time to find a lawyer.",
                language_needed="es",
            ),
        )

    def _responders(self) -> dict[str, Responder]:
        """Volunteers with home areas; some available, one sharing a location."""
        hoods = {h.name: h for h in Neighbourhood.objects.all()}
        people = [
            (
                "Vero",
                "+15105550301",
                ["verifier", "legal_observer"],
                ["es", "en"],
                "Fruitvale",
                True,
            ),
            ("Marisol", "+15105550302", ["verifier"], ["es"], "San Antonio", True),
            ("Tomás", "+15105550303", ["verifier"], ["es", "en"], "San Antonio", True),
            ("Kim", "+15105550304", ["verifier", "accompaniment"], ["en", "ko"], "Downtown", True),
            ("Jamal", "+15105550305", ["legal_observer"], ["en"], "West Oakland", True),
            ("Rosa", "+15105550306", ["verifier"], ["es"], "Eastlake", True),
            ("Lena", "+15105550307", ["attorney"], ["en", "es"], "Downtown", False),
        ]
        team = {}
        for name, phone, roles, languages, hood, available in people:
            person = dispatch_actions.save_responder(
                actor=None,
                data=dispatch_actions.ResponderData(
                    name=name,
                    phone=phone,
                    roles=roles,
                    languages=languages,
                    home_neighbourhood=hoods.get(hood),
                ),
            )
            if available:
                dispatch_actions.set_availability(responder=person, available=True)
            team[name] = person
        dispatch_actions.share_location(responder=team["Rosa"], point=Point(37.7990, -122.2480))
        return team

    def _subscribers(self) -> None:
        """Neighbours subscribed to alerts around Fruitvale and San Antonio (fictional
        555 numbers), so an alert for the verified incident has someone to reach."""
        hoods = list(Neighbourhood.objects.filter(name__in=["Fruitvale", "San Antonio"]))
        for i in range(DEMO_SUBSCRIBERS):
            area = (
                subscriptions.AreaSpec(AreaKind.NEIGHBOURHOOD, neighbourhood=hoods[i % len(hoods)])
                if hoods and i % 3 == 0
                else subscriptions.AreaSpec(
                    AreaKind.RADIUS,
                    point=Point(37.7700 + (i % 10) * 0.002, -122.2350 + (i // 10) * 0.003),
                    radius_m=500,
                )
            )
            person = subscriptions.subscribe(
                phone=f"+1510555{5000 + i:04d}", language="es" if i % 2 else "en", areas=[area]
            )
            subscriptions.confirm_or_restart(phone_hash=person.phone_hash)

    def _dispatcher_phones(self) -> None:
        """Both demo dispatchers take hotline calls (fictional 555 numbers); dispatcher is
        on shift, so a call from the test phone rings their phone there."""
        from calls import actions as call_actions
        from calls.models import DispatcherLine

        for username, number, on_shift in DEMO_DISPATCHER_PHONES:
            user = User.objects.get(username=username)
            if DispatcherLine.objects.filter(user=user).exists():
                continue
            line = call_actions.save_line(actor=None, user=user, phone=number)
            if on_shift:
                call_actions.set_on_shift(actor=user, line=line, on_shift=True)

    def _calls(self) -> None:
        """A voicemail left overnight, waiting for a call back."""
        from calls import flow

        flow.answer_call(provider="console", provider_sid="CADEMOVOICEMAIL", caller="+15105550177")
        call = flow.find_call_by_sid(provider="console", provider_sid="CADEMOVOICEMAIL")
        flow.choose_language(call_uuid=str(call.uuid), digits="2")
        if call.state != "voicemail":
            flow.hold_key(call_uuid=str(call.uuid), digits="1")
        flow.save_recording(
            call_uuid=str(call.uuid),
            recording_sid="REDEMOVOICEMAIL",
            reference="console:REDEMOVOICEMAIL",
            seconds="23",
        )
        flow.call_status(
            provider="console", provider_sid="CADEMOVOICEMAIL", status="completed", duration="41"
        )

    def _print_logins(self) -> None:
        self.stdout.write("")
        self.stdout.write(self.style.SUCCESS(f"Demo logins (password for all: {DEMO_PASSWORD})"))
        self.stdout.write(
            "Then the second step: `python manage.py demo_totp <username>` prints the "
            f"authenticator code (or add the key {DEMO_TOTP_SECRET} to an authenticator app)."
        )
        for username, _first, _last, role in DEMO_USERS:
            self.stdout.write(f"  {username:<12} {Role(role).label}")
        self.stdout.write(
            "Responders answer offers from the test phone: text as +15105550301 (Vero), "
            "+15105550304 (Kim) or +15105550305 (Jamal)."
        )
        self.stdout.write(
            "Hotline calls: the test phone's Call mode rings dispatcher (on shift, "
            "+15105550401); a Spanish voicemail waits for a call back on the console."
        )
        self.stdout.write(
            f"{DEMO_SUBSCRIBERS} neighbours subscribe to alerts; text JOIN Fruitvale from the "
            "test phone to be one, and write an alert from the verified Fruitvale incident "
            "(a second dispatcher, dispatcher2, approves it)."
        )
        self.stdout.write(
            "Family support (family) has a case from the Fruitvale incident at /cases/; his "
            "sister texts from +15105550121 on the test phone."
        )
        self.stdout.write("")
