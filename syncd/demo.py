"""`syncd demo`: the bundled sample data, copied into a folder with a config that points at it."""

from __future__ import annotations

import shutil
import tempfile
from importlib import resources
from pathlib import Path

from rich.console import Console

# The sample data tells a year up to this moment; the demo's clock stands still here.
NOW = "2026-11-23T09:00:00+01:00"

CONFIG = """\
# The demo's config: Sanne Bakker, freelance UX designer in Utrecht.
[me]
name = "Sanne Bakker"
emails = ["sanne@bakkerontwerp.nl", "sanne.bakker@gmail.com"]
phones = ["+31 6 2345 6789"]
linkedin = "https://www.linkedin.com/in/sannebakker-ux"
timezone = "Europe/Amsterdam"

[state]
database = "syncd.sqlite"

[sources.contacts]
type = "vcard"
path = "contacts.vcf"

[sources.calendar]
type = "ics"
path = "calendar.ics"

[sources.mail]
type = "maildir"
path = "Mail"

[sources.archive]
type = "mbox"
path = "archive.mbox"

[sources.linkedin]
type = "linkedin"
path = "LinkedIn"

[sources.whatsapp]
type = "whatsapp"
path = "WhatsApp"

[sinks.followups]
type = "ics"
path = "followups.ics"

[cadence]
default = "90d"

[cadence.groups]
clients = "45d"
freelancers = "60d"
friends = "30d"
family = "14d"

[reminders]
per_day = 3
"""


def prepare(into: Path | None) -> tuple[Path, Path]:
    """Copy the sample data into `into` (or a new temporary folder); return it and its config."""
    folder = into or Path(tempfile.mkdtemp(prefix="syncd-demo-"))
    folder.mkdir(parents=True, exist_ok=True)
    with resources.as_file(resources.files("syncd") / "demo") as sample:
        shutil.copytree(sample, folder, dirs_exist_ok=True, ignore=shutil.ignore_patterns("*.md"))
    for mailbox in (folder / "Mail").iterdir():
        for part in ("cur", "new", "tmp"):
            (mailbox / part).mkdir(exist_ok=True)
    config_path = folder / "config.toml"
    config_path.write_text(CONFIG, encoding="utf-8")
    return folder, config_path


def explain(console: Console, folder: Path, config_path: Path) -> None:
    console.print(f"\nFollow-ups written to {folder / 'followups.ics'}")
    console.print("Look around:")
    for command in ("contacts", "contacts --due --json", 'show "Jan de Vries"', "sync"):
        console.print(f"  syncd --config {config_path} --now {NOW} {command}")
