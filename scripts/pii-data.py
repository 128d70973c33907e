#!/usr/bin/env python3
"""Labelled PII and secret data for loom-guard's PII detector (crates/loom-guard/src/inspect/pii).

Writes target/test-data/pii/pii-test.jsonl, one text a line:

    {"text": ..., "spans": [{"start": s, "end": e, "kind": "email"}, ...], "group": ...}

with byte offsets into the UTF-8 text and kinds named as `PiiKind::as_str` names them.
Texts are sentences in several locales (en_US, en_GB, de_DE, fr_FR, en_IN, es_ES, it_IT,
nl_NL) holding values made by Faker (pinned: faker==40.63.0) and by this script:
e-mail addresses, phone numbers, payment cards (Luhn-valid), IBANs (valid check digits),
US SSNs, IPv4/IPv6 addresses, and fake credentials in the real formats (OpenAI and
Anthropic keys, AWS access key ids, GitHub and Slack tokens, JWTs, PEM private keys,
passwords and secrets assigned in code and configuration). About a third of the texts are
look-alike negatives with no spans: order and invoice numbers, timestamps, ISO and local
dates, version strings, UUIDs, git SHAs, phone-like product codes, 16-digit numbers that
fail Luhn, amounts, ISBNs, and secret-named settings whose values are not secrets.

Deterministic (fixed seeds): the same Faker gives the same file. No third-party labelled
data is used. Run from anywhere: `.venv/bin/python scripts/pii-data.py`; another seed and
output directory (fresh values in the same templates, to check the figures do not hang
on the values): `scripts/pii-data.py SEED DIR`.
"""

import base64
import datetime
import json
import os
import random
import string
import sys

# Some Faker providers draw from sets of strings, whose order follows the hash seed.
if os.environ.get("PYTHONHASHSEED") != "0":
    os.execve(sys.executable, [sys.executable, *sys.argv], {**os.environ, "PYTHONHASHSEED": "0"})

from faker import Faker  # noqa: E402

SEED = int(sys.argv[1]) if len(sys.argv) > 1 else 19
ROOT = os.path.dirname(os.path.dirname(os.path.abspath(__file__)))
OUT_DIR = sys.argv[2] if len(sys.argv) > 2 else os.path.join(ROOT, "target", "test-data", "pii")
OUT = os.path.join(OUT_DIR, "pii-test.jsonl")
PER_KIND = 160
NEGATIVES = 1200
MIXED = 200

rng = random.Random(SEED)
Faker.seed(SEED)
LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "en_IN", "es_ES", "it_IT", "nl_NL"]
fakers = {locale: Faker(locale) for locale in LOCALES}
for index, fake in enumerate(fakers.values()):
    fake.seed_instance(SEED + index)
PHONE_LOCALES = ["en_US", "en_GB", "de_DE", "fr_FR", "en_IN"]
IBAN_LOCALES = ["de_DE", "en_GB", "fr_FR", "es_ES", "it_IT", "nl_NL"]
ALNUM = string.ascii_letters + string.digits
# Dates end here, not now: the file must not depend on the day it is made.
START = datetime.datetime(2020, 1, 1)
END = datetime.datetime(2026, 1, 1)


def fake(locale=None):
    return fakers[locale or rng.choice(LOCALES)]


def random_string(alphabet, length):
    return "".join(rng.choice(alphabet) for _ in range(length))


def mixed_token(alphabet, length):
    """A random token with at least one digit, one upper and one lower case letter."""
    while True:
        token = random_string(alphabet, length)
        if any(c.isdigit() for c in token) and any(c.isupper() for c in token) and any(c.islower() for c in token):
            return token


# Values: each returns the value text.


def email():
    locale = rng.choice(LOCALES)
    return rng.choice([fake(locale).email, fake(locale).free_email, fake(locale).company_email])()


def phone():
    if rng.random() < 0.7:
        return fake(rng.choice(PHONE_LOCALES)).phone_number()
    # Formats Faker does not write: E.164 compact and spaced, US with spaces, UK London,
    # DE with a slash, FR with dots, Indian mobiles.
    d = lambda count: random_string(string.digits, count)  # noqa: E731
    area = rng.choice("23456789") + d(2)
    return rng.choice(
        [
            f"+1{area}{rng.choice('23456789')}{d(6)}",
            f"+44 20 {d(4)} {d(4)}",
            f"+33 6 {d(2)} {d(2)} {d(2)} {d(2)}",
            f"+91-{rng.choice('6789')}{d(4)}-{d(5)}",
            f"{area} {rng.choice('23456789')}{d(2)} {d(4)}",
            f"020 {d(4)} {d(4)}",
            f"0{rng.choice('3456789')}{d(1)}/{d(7)}",
            f"0{rng.randint(1, 9)}.{d(2)}.{d(2)}.{d(2)}.{d(2)}",
            f"+49 {rng.choice('3456789')}{d(1)} {d(8)}",
        ]
    )


def luhn_check_digit(digits):
    total = 0
    for position, digit in enumerate(reversed(digits)):
        value = int(digit)
        if position % 2 == 0:
            value *= 2
            if value > 9:
                value -= 9
        total += value
    return str((10 - total % 10) % 10)


def card():
    number = fake("en_US").credit_card_number(
        card_type=rng.choice(["visa16", "visa13", "visa19", "mastercard", "amex", "discover", "diners", "jcb16", "jcb15"])
    )
    style = rng.random()
    if style < 0.45:
        return number
    separator = " " if style < 0.8 else "-"
    if len(number) == 15:
        groups = [number[:4], number[4:10], number[10:]]
    else:
        groups = [number[i : i + 4] for i in range(0, len(number), 4)]
    return separator.join(groups)


def iban():
    value = fake(rng.choice(IBAN_LOCALES)).iban()
    if rng.random() < 0.5:
        return " ".join(value[i : i + 4] for i in range(0, len(value), 4))
    return value


def ssn():
    return fake("en_US").ssn()


def ip():
    f = fake("en_US")
    return rng.choice([f.ipv4_public, f.ipv4_private, f.ipv4, f.ipv6, f.ipv6])()


def api_key():
    kind = rng.random()
    if kind < 0.4:
        return "sk-proj-" + mixed_token(ALNUM + "_-", rng.choice([48, 74, 120, 156]))
    if kind < 0.6:
        return "sk-" + mixed_token(ALNUM, 20) + "T3BlbkFJ" + mixed_token(ALNUM, 20)
    return "sk-ant-api03-" + mixed_token(ALNUM + "_-", 93) + "AA"


def aws_key():
    return rng.choice(["AKIA", "ASIA"]) + random_string(string.ascii_uppercase + "234567", 16)


def github_token():
    if rng.random() < 0.75:
        return rng.choice(["ghp_", "gho_", "ghs_", "ghu_"]) + mixed_token(ALNUM, 36)
    return "github_pat_" + mixed_token(ALNUM, 22) + "_" + mixed_token(ALNUM, 59)


def slack_token():
    prefix = rng.choice(["xoxb", "xoxp", "xoxa", "xoxs"])
    numbers = "-".join(random_string(string.digits, rng.randint(10, 13)) for _ in range(rng.choice([2, 3])))
    return f"{prefix}-{numbers}-{mixed_token(ALNUM, rng.choice([24, 32]))}"


def b64url(data):
    return base64.urlsafe_b64encode(data).rstrip(b"=").decode()


def jwt():
    f = fake("en_US")
    header = {"alg": rng.choice(["HS256", "RS256", "ES256"]), "typ": "JWT"}
    if rng.random() < 0.3:
        header["kid"] = f.uuid4()
    payload = {"sub": str(f.random_int(1, 10**9)), "name": f.name(), "iat": int(f.unix_time(start_datetime=START, end_datetime=END))}
    if rng.random() < 0.5:
        payload["email"] = f.email()
        payload["roles"] = ["user", rng.choice(["admin", "editor", "viewer"])]
    signature = bytes(rng.getrandbits(8) for _ in range(rng.choice([32, 64, 256])))
    return ".".join(
        [b64url(json.dumps(header, separators=(",", ":")).encode()), b64url(json.dumps(payload).encode()), b64url(signature)]
    )


def private_key():
    label = rng.choice(["RSA PRIVATE KEY", "PRIVATE KEY", "EC PRIVATE KEY", "OPENSSH PRIVATE KEY", "ENCRYPTED PRIVATE KEY"])
    body = base64.b64encode(bytes(rng.getrandbits(8) for _ in range(rng.choice([121, 300, 600, 1190])))).decode()
    lines = [body[i : i + 64] for i in range(0, len(body), 64)]
    return f"-----BEGIN {label}-----\n" + "\n".join(lines) + f"\n-----END {label}-----"


def password():
    if rng.random() < 0.5:
        return fake().password(length=rng.choice([12, 16, 20]), special_chars=rng.random() < 0.5)
    return mixed_token(ALNUM + "_-", rng.choice([24, 32, 40]))


# Templates: `{v}` is the labelled value; other fields are filled with unlabelled text.

TEMPLATES = {
    "email": [
        "Contact {name} at {v} for details.",
        "Mon adresse e-mail est {v}, merci de me répondre.",
        "Bitte schreiben Sie an {v} bis {date_de}.",
        "Please cc {v} on the thread about ticket #{n5}.",
        "From: {name} <{v}>\nSubject: Invoice INV-{n8}",
        "Escríbeme a {v} cuando puedas.",
        "{name}, {v}, {city}",
        "Stuur de offerte naar {v}.",
        "Reply to <{v}> or mailto:{v}",
        "({v})",
    ],
    "phone": [
        "Call me at {v} after 5pm.",
        "Meine Telefonnummer ist {v}.",
        "Vous pouvez me joindre au {v} demain.",
        "You can reach {name} on {v}.",
        "Phone: {v}\nEmail us anytime.",
        "Please text {v} when the delivery for order ORD-{n6} arrives.",
        "Tel. {v} (Büro), erreichbar Mo-Fr.",
        "{name} ({city}) - {v}",
        "For support dial {v} or visit our site.",
        "My mobile number is {v}.",
    ],
    "payment_card": [
        "Please charge my card {v}, expiry {exp}.",
        "Karte: {v} gültig bis {exp}",
        "Numéro de carte {v} exp {exp} cryptogramme {n3}.",
        "The customer paid with {v} on {date_iso}.",
        "card_number: {v}",
        "Use {v} for the subscription, not the old one.",
    ],
    "iban": [
        "Transfer the money to IBAN {v}.",
        "Überweisung bitte an {v} (Verwendungszweck: Rechnung {n6}).",
        "Mon IBAN : {v}",
        "Cuenta para el reembolso: {v}",
        "Bank details - IBAN: {v}, BIC: {bic}",
        "Il bonifico va sul conto {v} entro il {date_it}.",
    ],
    "us_ssn": [
        "My SSN is {v}.",
        "SSN: {v}, DOB {date_us}",
        "Employee {name}, social security number {v}, started {date_iso}.",
        "Please verify {v} against the W-2.",
    ],
    "ip_address": [
        "Server {v} refused the connection at {time}.",
        "Login from {v} on {date_iso} was blocked.",
        "Set the upstream to {v} and restart.",
        "Die Anfrage kam von {v}.",
        "listen_address: {v}",
        "ping {v} returned 4 packets",
        "upstream: \"{v}\"  # replica {n3}",
        "Blocked {v} after {n3} failed attempts (rule {n5}).",
    ],
    "api_key": [
        "Here is my OpenAI key: {v}",
        "OPENAI_API_KEY={v}",
        "client = Anthropic(api_key=\"{v}\")",
        "I accidentally pasted {v} in the chat, please rotate it.",
        "headers = {{'Authorization': 'Bearer {v}'}}",
    ],
    "aws_access_key": [
        "aws_access_key_id = {v}",
        "The leaked key {v} belongs to the CI user.",
        "export AWS_ACCESS_KEY_ID={v}",
        "Access key: {v}",
    ],
    "github_token": [
        "git clone https://{v}@github.com/acme/app.git",
        "GITHUB_TOKEN={v}",
        "Use token {v} for the release workflow.",
        "Mein Token lautet {v}.",
    ],
    "slack_token": [
        "SLACK_BOT_TOKEN={v}",
        "The bot authenticates with {v}.",
        "slack:\n  token: {v}",
        "Revoke {v} please.",
    ],
    "jwt": [
        "Authorization: Bearer {v}",
        "Cookie: session={v}; Path=/",
        "The id_token was {v}",
        "curl -H 'Authorization: Bearer {v}' https://api.example.com/me",
    ],
    "private_key": [
        "Here is the deploy key:\n{v}\nKeep it safe.",
        "{v}",
        "ssh_key: |\n{v}",
        "Voici la clé privée :\n{v}",
    ],
    "high_entropy_secret": [
        "DB_PASSWORD={v}",
        "\"client_secret\": \"{v}\",",
        "export API_SECRET='{v}'",
        "password: {v}",
        "SECRET_KEY = \"{v}\"",
        "auth_token={v}&user={username}",
        "Das Passwort ist {v}",
    ],
}

VALUES = {
    "email": email,
    "phone": phone,
    "payment_card": card,
    "iban": iban,
    "us_ssn": ssn,
    "ip_address": ip,
    "api_key": api_key,
    "aws_access_key": aws_key,
    "github_token": github_token,
    "slack_token": slack_token,
    "jwt": jwt,
    "private_key": private_key,
    "high_entropy_secret": password,
}


def digits(count, first="123456789"):
    return rng.choice(first) + random_string(string.digits, count - 1)


def fields():
    """Unlabelled filler for templates (no PII of the detected kinds)."""
    f = fake()
    when = fake("en_US").date_time_between(start_date=START, end_date=END)
    return {
        "name": f.name(),
        "city": f.city(),
        "username": f.user_name(),
        "n3": digits(3),
        "n5": digits(5),
        "n6": digits(6),
        "n8": digits(8),
        "exp": f"{rng.randint(1, 12):02d}/{rng.randint(25, 31)}",
        "date_iso": when.strftime("%Y-%m-%d"),
        "date_de": when.strftime("%d.%m.%Y"),
        "date_it": when.strftime("%d/%m/%Y"),
        "date_us": when.strftime("%m/%d/%Y"),
        "time": when.strftime("%H:%M:%S"),
        "bic": fake("de_DE").swift(length=rng.choice([8, 11])),
    }


def render(template, kind, value_fn):
    """Fills `template`; returns (text, spans) with byte offsets of every `{v}`."""
    filler = fields()
    parts = template.split("{v}")
    text = ""
    spans = []
    for index, part in enumerate(parts):
        text += part.replace("{{", "\0").replace("}}", "\1").format(**filler).replace("\0", "{").replace("\1", "}")
        if index < len(parts) - 1:
            value = value_fn()
            start = len(text.encode())
            text += value
            spans.append({"start": start, "end": len(text.encode()), "kind": kind})
    return text, spans


def positives():
    for kind, templates in TEMPLATES.items():
        for index in range(PER_KIND):
            text, spans = render(templates[index % len(templates)], kind, VALUES[kind])
            yield {"text": text, "spans": spans, "group": kind}


def luhn_failing(length, first):
    while True:
        number = first + random_string(string.digits, length - len(first))
        if luhn_check_digit(number[:-1]) != number[-1]:
            return number


def ean13():
    body = rng.choice(["40", "41", "42", "43", "50", "76", "80", "90"]) + random_string(string.digits, 10)
    weighted = sum(int(digit) * (3 if index % 2 else 1) for index, digit in enumerate(body))
    return body + str((10 - weighted % 10) % 10)


def spaced(number):
    return " ".join(number[i : i + 4] for i in range(0, len(number), 4))


NEGATIVE_TEMPLATES = [
    lambda f: f"Order #{digits(rng.choice([8, 9, 10]))} was shipped on {f['date_iso']}.",
    lambda f: f"Your order ORD-{rng.randint(2019, 2026)}-{digits(6, '0123456789')} is ready for pickup.",
    lambda f: f"Invoice INV-{digits(8, '0123456789')} dated {f['date_de']} totals €{rng.randint(10, 9999)},{rng.randint(0, 99):02d}.",
    lambda f: f"Rechnung Nr. {rng.randint(2019, 2026)}/{digits(5)} vom {f['date_de']}",
    lambda f: f"Facture n° FA{digits(9)} du {f['date_it']}",
    lambda f: f"Job finished at {f['date_iso']}T{f['time']}Z in {rng.randint(1, 999)} ms.",
    lambda f: f"[{f['date_iso']} {f['time']},{digits(3, '0123456789')}] INFO worker-{rng.randint(1, 16)} started",
    lambda f: f"Created {f['date_it']} {f['time'][:5]}, updated {f['date_us']}.",
    lambda f: f"The timestamp {rng.randint(1_500_000_000, 1_800_000_000)} is in seconds, {rng.randint(1_500_000_000_000, 1_800_000_000_000)} in ms.",
    lambda f: f"Upgraded from v{rng.randint(0, 9)}.{rng.randint(0, 40)}.{rng.randint(0, 99)} to {rng.randint(1, 30)}.{rng.randint(0, 9)}.{rng.randint(0, 99)}.{rng.randint(1000, 99999)}.",
    lambda f: f"Windows build 10.0.{rng.randint(10000, 22999)}.{rng.randint(100, 9999)}; Python 3.{rng.randint(8, 13)}.{rng.randint(0, 12)}",
    lambda f: f"Request id {fake('en_US').uuid4()} failed; retry {rng.randint(1, 5)} of 5.",
    lambda f: f"Commit {random_string('0123456789abcdef', 40)} fixes issue #{rng.randint(1, 99999)}.",
    lambda f: f"Merged {random_string('0123456789abcdef', 7)} into main on {f['date_iso']}.",
    lambda f: f"Part no. {digits(4)}-{digits(3, '0123456789')}-{digits(3, '0123456789')}, SKU {digits(3)}.{digits(3, '0123456789')}.{digits(5, '0123456789')}",
    lambda f: f"Model {rng.choice(['XR', 'TX', 'QL'])}-{digits(3)}-{digits(4, '0123456789')} replaces {digits(2)}-{digits(6, '0123456789')}-{digits(2, '0123456789')}.",
    lambda f: f"Tracking number {luhn_failing(16, rng.choice(['4', '5', '1', '9']))} via {rng.choice(['DHL', 'UPS', 'La Poste'])}.",
    lambda f: f"Reference {spaced(luhn_failing(16, rng.choice(['4', '5', '3'])))}",
    lambda f: f"Account balance: ${rng.randint(1, 999)},{rng.randint(100, 999)}.{rng.randint(10, 99)} as of {f['date_us']}.",
    lambda f: f"ISBN 978-{rng.randint(0, 9)}-{digits(2)}-{digits(6, '0123456789')}-{rng.randint(0, 9)}",
    lambda f: f"Coordinates {rng.uniform(-90, 90):.4f}, {rng.uniform(-180, 180):.4f} near {f['city']}.",
    lambda f: f"Meeting in room {rng.randint(100, 999)} from {rng.randint(8, 17)}:00 to {rng.randint(9, 18)}:30, score {rng.randint(0, 5)}-{rng.randint(0, 5)}.",
    lambda f: f"let addr = std::net::Ipv6Addr::LOCALHOST; Vec::new(); a::b::c();",
    lambda f: f"token_count = {rng.randint(100, 100000)}\nmax_tokens: {rng.randint(256, 8192)}",
    lambda f: f"password = os.environ[\"DB_PASSWORD\"]\napi_key: ${{OPENAI_API_KEY}}",
    lambda f: f"password_min_length: {rng.randint(8, 16)}\nsecret_name: prod/db/credentials",
    lambda f: f"Use the sk-learn-tutorial branch and the AKIA prefix docs.",
    lambda f: f"{f['name']} from {f['city']} ordered {rng.randint(1, 20)} items for €{rng.randint(10, 999)}.",
    lambda f: f"Ticket JIRA-{digits(5)} assigned to {f['username']}, priority P{rng.randint(1, 4)}.",
    lambda f: f"Build #{digits(6)} of {f['username']}/app at {f['time']} took {rng.randint(1, 59)}m{rng.randint(1, 59)}s.",
    lambda f: f"Version {rng.randint(1, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}.{rng.randint(0, 9)}-beta ships on {f['date_iso']}.",
    lambda f: f"Checksum sha256:{random_string('0123456789abcdef', 64)}",
    lambda f: f"MAC {':'.join(random_string('0123456789abcdef', 2) for _ in range(6))} at {f['time']}",
    lambda f: f"Customer ID {digits(10)} placed order {digits(10)} on {f['date_de']}.",
    lambda f: f"Reference number {digits(9)}-{digits(2, '0123456789')}, case {digits(3)}-{digits(3, '0123456789')}-{digits(3, '0123456789')}.",
    lambda f: f"See section {rng.randint(1, 12)}.{rng.randint(1, 9)}.{rng.randint(1, 9)}.{rng.randint(1, 9)} of the specification.",
    lambda f: f"Firmware version {rng.randint(1, 9)}.{rng.randint(0, 20)}.{rng.randint(0, 99)}.{rng.randint(0, 255)} is installed on {f['username']}'s router.",
    lambda f: f"OID 1.3.6.1.4.1.{digits(5)}.{rng.randint(1, 9)} is registered.",
    lambda f: f"Elapsed {rng.randint(0, 23):02d}:{rng.randint(0, 59):02d}:{rng.randint(0, 59):02d}.{digits(3, '0123456789')}, pointer 0x{random_string('0123456789abcdef', 12)}.",
    lambda f: f"Released {rng.randint(1, 9)}.{rng.randint(0, 30)}.{rng.randint(0, 9)}-rc.{rng.randint(1, 5)}+build.{f['date_iso'].replace('-', '')} on {f['date_iso']}.",
    lambda f: f"Totals: {rng.randint(1, 9)} {digits(3, '0123456789')} {digits(3, '0123456789')},{rng.randint(10, 99)} € for {rng.randint(10, 99)} {digits(3, '0123456789')} units.",
    lambda f: f"EAN {ean13()} and GTIN {ean13()} are on the label.",
    lambda f: f"client_id = {fake('en_US').uuid4()}\nsession_token_ttl = {rng.randint(60, 86400)}\ntoken_type: Bearer",
    lambda f: f"auth_token_url = \"https://auth.example.com/oauth2/token\"\npassword_reset_path: /account/reset",
    lambda f: f"Dates: {f['date_iso'].replace('-', '/')} {f['time']}, {f['date_de']}, {rng.randint(1, 28)} March {rng.randint(2019, 2026)}.",
]


def negatives():
    for index in range(NEGATIVES):
        template = NEGATIVE_TEMPLATES[index % len(NEGATIVE_TEMPLATES)]
        yield {"text": template(fields()), "spans": [], "group": "negative"}


def mixed():
    """Texts holding several kinds, with look-alikes beside them."""
    for _ in range(MIXED):
        kinds = rng.sample(["email", "phone", "payment_card", "iban", "ip_address", "api_key", "jwt", "us_ssn"], 3)
        text = f"Order ORD-{rng.randint(2019, 2026)}-{digits(6)} ({fields()['date_iso']}): "
        spans = []
        for kind in kinds:
            lead = {"phone": "call ", "us_ssn": "SSN ", "iban": "IBAN ", "payment_card": "card ", "ip_address": "from "}.get(kind, "")
            text += lead
            value = VALUES[kind]()
            start = len(text.encode())
            text += value
            spans.append({"start": start, "end": len(text.encode()), "kind": kind})
            text += rng.choice([", ", "; ", " and ", " - v2.3.1 - "])
        text += f"updated {fields()['date_de']} {fields()['time']}."
        yield {"text": text, "spans": spans, "group": "mixed"}


def main():
    os.makedirs(os.path.dirname(OUT), exist_ok=True)
    rows = [*positives(), *mixed(), *negatives()]
    rng.shuffle(rows)
    with open(OUT, "w", encoding="utf-8") as out:
        for row in rows:
            out.write(json.dumps(row, ensure_ascii=False) + "\n")
    spans = sum(len(row["spans"]) for row in rows)
    print(f"pii: {len(rows)} texts, {spans} labelled spans -> {os.path.relpath(OUT, ROOT)}")


if __name__ == "__main__":
    main()
