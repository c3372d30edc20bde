from __future__ import annotations

import os
import signal
import subprocess
import sys
from argparse import ArgumentParser
from typing import Any

import uvicorn
from django.conf import settings
from django.core.management.base import BaseCommand


class Command(BaseCommand):
    help = (
        "Start the web server (ASGI, for the console's live updates) and a task worker "
        "together, for development and demos. Production runs them as separate services."
    )

    def add_arguments(self, parser: ArgumentParser) -> None:
        parser.add_argument("--host", default="127.0.0.1")
        parser.add_argument("--port", type=int, default=8000)

    def handle(self, *args: Any, **options: Any) -> None:
        base = f"http://{options['host']}:{options['port']}"
        worker = subprocess.Popen(
            [sys.executable, "manage.py", "run_worker"],
            env=os.environ.copy(),
        )
        self.stdout.write(f"Rapid Response on {base}/")
        self.stdout.write(f"  dispatcher console: {base}/console/")
        self.stdout.write(f"  public report form: {base}/report/")
        if settings.RR_SMS_PROVIDER == "console":
            self.stdout.write(f"  test phone:         {base}/test-phone/")
        self.stdout.write("Press Ctrl+C to stop.")
        try:
            uvicorn.run(
                "rapidresponse.asgi:application",
                host=options["host"],
                port=options["port"],
                access_log=False,
                log_config=None,
                lifespan="off",
            )
        finally:
            worker.send_signal(signal.SIGTERM)
            try:
                worker.wait(timeout=10)
            except subprocess.TimeoutExpired:
                worker.kill()
