"""A private Dovecot on 127.0.0.1 for tests and benchmarks.

Its own config, run folder, log and passwd-file in a throw-away folder; Maildirs written directly
(fast: no APPEND); a plaintext listener and an implicit-TLS listener whose certificate comes from a
throw-away certificate authority (`ca_file`). Folders named in `SPECIAL_USE` carry that attribute
for every user; an account that uses none of those names is a server without SPECIAL-USE.
Needs the Debian package dovecot-imapd.
"""

from __future__ import annotations

import datetime as dt
import os
import pwd
import shutil
import socket
import subprocess
import tempfile
import time
from collections.abc import Iterable, Mapping
from dataclasses import dataclass
from pathlib import Path

from imapclient.imap_utf7 import encode as utf7

HOST = "127.0.0.1"
DOVECOT = shutil.which("dovecot") or "/usr/sbin/dovecot"
DOVEADM = shutil.which("doveadm") or "/usr/bin/doveadm"
# Dutch names, so that a test shows folders are chosen by attribute, not by English name.
SPECIAL_USE = {
    "Verzonden": "\\Sent",
    "Archief": "\\Archive",
    "Ongewenst": "\\Junk",
    "Prullenbak": "\\Trash",
    "Concepten": "\\Drafts",
    "Alle berichten": "\\All",
}
# A message as written into a Maildir: its bytes, or (bytes, Maildir flags such as "S", "RS").
# With no flags at all it lands in new/ (unseen, just delivered).
Mail = bytes | tuple[bytes, str]


@dataclass(frozen=True)
class Account:
    user: str
    password: str
    home: Path


def free_port() -> int:
    with socket.socket() as probe:
        probe.bind((HOST, 0))
        return int(probe.getsockname()[1])


def _mail_owner() -> tuple[str, int, int]:
    """The system user mail processes run as: Dovecot refuses root for mail."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid())
        return me.pw_name, me.pw_uid, me.pw_gid
    nobody = pwd.getpwnam("nobody")
    return nobody.pw_name, nobody.pw_uid, nobody.pw_gid


def _service_users() -> tuple[str, str]:
    """(internal, login) users: those the Debian package creates when run as root."""
    if os.geteuid() != 0:
        me = pwd.getpwuid(os.geteuid()).pw_name
        return me, me
    return "dovecot", "dovenull"


class Dovecot:
    """One running Dovecot; `start()` it, add accounts while it runs, `stop()` it."""

    def __init__(self, root: Path | None = None) -> None:
        self.root = root or Path(tempfile.mkdtemp(prefix="syncd-dovecot-"))
        self.root.chmod(0o755)  # mail processes run as another user and must reach the homes
        self.port = free_port()
        self.tls_port = free_port()
        self.ca_file = self.root / "ca.pem"
        self.config = self.root / "dovecot.conf"
        self.log = self.root / "dovecot.log"
        # One passwd-file per user: Dovecot notices a new file at once, a changed one only when
        # its modification second changes.
        self.passwd = self.root / "passwd.d"
        self._process: subprocess.Popen[bytes] | None = None
        self._owner = _mail_owner()

    # --- running -----------------------------------------------------------------------------

    def start(self, timeout: float = 30.0) -> None:
        make_certificates(self.root)
        self.passwd.mkdir(exist_ok=True)
        self.config.write_text(self._config_text())
        self._process = subprocess.Popen(
            [DOVECOT, "-F", "-c", str(self.config)],
            stdout=subprocess.DEVNULL,
            stderr=(self.root / "stderr.log").open("wb"),
        )
        self._wait_for_ports(timeout)

    def stop(self) -> None:
        if self._process is not None:
            self._process.terminate()
            try:
                self._process.wait(timeout=15)
            except subprocess.TimeoutExpired:
                self._process.kill()
                self._process.wait()
            self._process = None
        shutil.rmtree(self.root, ignore_errors=True)

    def _wait_for_ports(self, timeout: float) -> None:
        deadline = time.monotonic() + timeout
        while time.monotonic() < deadline:
            if self._process is not None and self._process.poll() is not None:
                break
            if all(_accepts(port) for port in (self.port, self.tls_port)):
                return
            time.sleep(0.05)
        raise RuntimeError(f"Dovecot did not start:\n{self.log_text()}")

    def log_text(self) -> str:
        found = [path.read_text(errors="replace") for path in (self.log, self.root / "stderr.log")
                 if path.exists()]  # fmt: skip
        return "\n".join(found)[-4000:]

    def doveadm(self, *args: str) -> str:
        done = subprocess.run(
            [DOVEADM, "-c", str(self.config), *args], capture_output=True, text=True, check=False
        )
        if done.returncode != 0:
            raise RuntimeError(f"doveadm {' '.join(args)} failed: {done.stderr}")
        return done.stdout

    # --- accounts ----------------------------------------------------------------------------

    def add_account(
        self, user: str, folders: Mapping[str, Iterable[Mail]], password: str = "geheim-42"
    ) -> Account:
        """A user whose Maildir holds `folders` ("INBOX", "Verzonden", ...), written directly."""
        home = self.root / "home" / user
        for name, mails in folders.items():
            write_maildir(_folder_path(home / "Maildir", name), mails)
        _, uid, gid = self._owner
        (home / "Maildir").mkdir(parents=True, exist_ok=True)
        _chown_tree(home, uid, gid)
        self.passwd.mkdir(exist_ok=True)
        (self.passwd / user).write_text(f"{user}:{{PLAIN}}{password}:{uid}:{gid}::{home}::\n")
        return Account(user, password, home)

    def _config_text(self) -> str:
        internal, login = _service_users()
        _, uid, _ = self._owner
        mailboxes = "".join(
            f'  mailbox "{name}" {{\n    special_use = {use}\n  }}\n'
            for name, use in SPECIAL_USE.items()
        )
        return CONFIG.format(
            root=self.root, internal=internal, login=login, first_uid=min(uid, 100),
            port=self.port, tls_port=self.tls_port, host=HOST, mailboxes=mailboxes,
        )  # fmt: skip


CONFIG = """\
protocols = imap
listen = {host}
base_dir = {root}/run
state_dir = {root}/state
log_path = {root}/dovecot.log
default_internal_user = {internal}
default_login_user = {login}
ssl = yes
ssl_cert = <{root}/server.pem
ssl_key = <{root}/server.key
disable_plaintext_auth = no
auth_mechanisms = plain login
auth_failure_delay = 0
mail_location = maildir:~/Maildir
first_valid_uid = {first_uid}
passdb {{
  driver = passwd-file
  args = scheme=PLAIN {root}/passwd.d/%u
}}
userdb {{
  driver = passwd-file
  args = {root}/passwd.d/%u
}}
namespace inbox {{
  inbox = yes
  separator = /
{mailboxes}}}
service imap-login {{
  inet_listener imap {{
    address = {host}
    port = {port}
  }}
  inet_listener imaps {{
    address = {host}
    port = {tls_port}
    ssl = yes
  }}
}}
"""


def _accepts(port: int) -> bool:
    try:
        with socket.create_connection((HOST, port), timeout=0.5):
            return True
    except OSError:
        return False


def _folder_path(maildir: Path, name: str) -> Path:
    """Maildir++: the inbox at the root, "Archief/2023" as `.Archief.2023`, names in modified
    UTF-7 as Dovecot stores them."""
    if name.upper() == "INBOX":
        return maildir
    return maildir / ("." + ".".join(utf7(part).decode() for part in name.split("/")))


def write_maildir(folder: Path, mails: Iterable[Mail]) -> int:
    """Write messages as a deliverer would; the file time is the delivery time (INTERNALDATE)."""
    for part in ("cur", "new", "tmp"):
        (folder / part).mkdir(parents=True, exist_ok=True)
    count = 0
    for count, mail in enumerate(mails, start=1):
        data, flags = (mail, "") if isinstance(mail, bytes) else mail
        unique = f"{1_700_000_000 + count}.M{count}P{os.getpid()}.syncd-test,S={len(data)}"
        path = folder / "new" / unique if not flags else folder / "cur" / f"{unique}:2,{flags}"
        path.write_bytes(data)
        stamp = 1_700_000_000 + count * 60
        os.utime(path, (stamp, stamp))
    return count


def _chown_tree(top: Path, uid: int, gid: int) -> None:
    if os.geteuid() != 0:
        return
    os.chown(top.parent, uid, gid)
    for folder, dirs, files in os.walk(top):
        os.chown(folder, uid, gid)
        for name in dirs + files:
            os.chown(os.path.join(folder, name), uid, gid)


# --- a throw-away certificate authority ------------------------------------------------------


def make_certificates(folder: Path) -> None:
    """ca.pem (the authority to trust), server.pem and server.key for 127.0.0.1 and localhost."""
    try:
        _certificates_with_cryptography(folder)
    except ImportError:
        _certificates_with_openssl(folder)


def _certificates_with_cryptography(folder: Path) -> None:
    import ipaddress

    from cryptography import x509
    from cryptography.hazmat.primitives import hashes, serialization
    from cryptography.hazmat.primitives.asymmetric import ec
    from cryptography.x509.oid import NameOID

    now = dt.datetime.now(dt.UTC)

    def certificate(
        subject: str, key: ec.EllipticCurvePrivateKey, issuer: x509.Name | None,
        signer: ec.EllipticCurvePrivateKey, authority: bool,
    ) -> x509.Certificate:  # fmt: skip
        name = x509.Name([x509.NameAttribute(NameOID.COMMON_NAME, subject)])
        builder = (
            x509.CertificateBuilder()
            .subject_name(name)
            .issuer_name(issuer or name)
            .public_key(key.public_key())
            .serial_number(x509.random_serial_number())
            .not_valid_before(now - dt.timedelta(days=1))
            .not_valid_after(now + dt.timedelta(days=30))
            .add_extension(x509.BasicConstraints(ca=authority, path_length=None), critical=True)
        )
        if authority:
            builder = builder.add_extension(
                x509.KeyUsage(False, False, False, False, False, True, True, False, False), True
            ).add_extension(x509.SubjectKeyIdentifier.from_public_key(key.public_key()), False)
        else:
            names = [x509.DNSName("localhost"), x509.IPAddress(ipaddress.ip_address(HOST))]
            builder = builder.add_extension(x509.SubjectAlternativeName(names), critical=False)
        return builder.sign(signer, hashes.SHA256())

    ca_key = ec.generate_private_key(ec.SECP256R1())
    server_key = ec.generate_private_key(ec.SECP256R1())
    ca = certificate("syncd test CA", ca_key, None, ca_key, True)
    server = certificate("localhost", server_key, ca.subject, ca_key, False)
    pem = serialization.Encoding.PEM
    (folder / "ca.pem").write_bytes(ca.public_bytes(pem))
    (folder / "server.pem").write_bytes(server.public_bytes(pem))
    (folder / "server.key").write_bytes(
        server_key.private_bytes(
            pem, serialization.PrivateFormat.PKCS8, serialization.NoEncryption()
        )
    )


def _certificates_with_openssl(folder: Path) -> None:
    def openssl(*args: str) -> None:
        subprocess.run(["openssl", *args], cwd=folder, check=True, capture_output=True)

    key = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:P-256", "-nodes"]
    openssl("req", "-x509", *key, "-keyout", "ca.key", "-out", "ca.pem", "-subj", "/CN=test CA")
    openssl("req", *key, "-keyout", "server.key", "-out", "server.csr", "-subj", "/CN=localhost")
    (folder / "san.ext").write_text(f"subjectAltName=DNS:localhost,IP:{HOST}\n")
    openssl("x509", "-req", "-in", "server.csr", "-CA", "ca.pem", "-CAkey", "ca.key",
            "-CAcreateserial", "-out", "server.pem", "-days", "30",
            "-extfile", "san.ext")  # fmt: skip
