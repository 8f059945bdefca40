#!/usr/bin/env python3
"""Converts the Anubis bot policy rules (TecharoHQ/anubis, data/, MIT) into ja4-platform's
crawler-rule and known-bot tables. Data only: names, regexes, address ranges, actions.

usage: convert.py ANUBIS_DATA_DIR OUT_DIR COMMIT

Writes (TSV with a header row):
  crawler_ua_rules.tsv  name, action, category, regexp   (user-agent rules)
  crawler_ip_rules.tsv  network, name, action, category  (address-only rules)
  bot_ips.tsv           network, bot_name, category, verified  (published crawler ranges)
  SOURCE                where it came from and what was skipped
A rule with a user-agent regex *and* address ranges is a crawler that is only what it claims
from those addresses: its regex becomes a `verify` rule and its ranges known-bot addresses.
Rules that need Anubis's expression language, path or header regexes are skipped (counted),
and so are the `common` user-agent rules (policy such as "anything saying Mozilla", which
identifies no client). Rules are written most specific first: verifiable crawlers, then
crawlers, services, clients and bots (the rule dictionary reports the first match).
"""
import os
import sys

import yaml

ACTIONS = {"ALLOW": "allow", "DENY": "deny", "CHALLENGE": "challenge", "WEIGH": "observe"}
CATEGORY = {"crawlers": "crawler", "bots": "bot", "clients": "client", "common": "common",
            "apps": "app", "services": "service"}


def rules(data_dir):
    for top in sorted(CATEGORY):
        base = os.path.join(data_dir, top)
        for root, _, files in sorted(os.walk(base)):
            for f in sorted(files):
                if f.endswith((".yaml", ".yml")):
                    with open(os.path.join(root, f), encoding="utf-8") as fh:
                        doc = yaml.safe_load(fh) or []
                    for r in doc if isinstance(doc, list) else [doc]:
                        yield CATEGORY[top], os.path.relpath(os.path.join(root, f), data_dir), r


def clean(s):
    return " ".join(str(s).split())


def main():
    data_dir, out, commit = sys.argv[1:4]
    ua, ip, bots, skipped = [], [], [], []
    seen_ua = set()
    for cat, path, r in rules(data_dir):
        if not isinstance(r, dict) or "import" in r:
            continue
        name, action = r.get("name"), ACTIONS.get(str(r.get("action", "")).upper())
        unsupported = [k for k in ("expression", "path_regex", "headers_regex", "asns", "geoip") if k in r]
        regex = r.get("user_agent_regex")
        addrs = r.get("remote_addresses") or []
        if not name or not action or unsupported or not (regex or addrs):
            skipped.append(f"{path}:{name}:{','.join(unsupported) or 'no user agent or address'}")
            continue
        if regex and cat == "common":
            skipped.append(f"{path}:{name}:policy, not identification")
            continue
        if regex:
            regex = clean(regex)
            rule_action = "verify" if addrs and action == "allow" else action
            if (regex, name) not in seen_ua:
                seen_ua.add((regex, name))
                ua.append((name, rule_action, cat, regex))
            for a in addrs:
                bots.append((a, name, cat, 1))
        else:
            for a in addrs:
                ip.append((a, name, action, cat))
    order = {"crawler": 0, "service": 1, "client": 2, "app": 3, "bot": 4}
    ua.sort(key=lambda r: (r[1] != "verify", order.get(r[2], 9)))
    os.makedirs(out, exist_ok=True)

    def write(fname, header, rows):
        with open(os.path.join(out, fname), "w", encoding="utf-8") as fh:
            fh.write("\t".join(header) + "\n")
            for row in rows:
                fh.write("\t".join(str(v) for v in row) + "\n")

    write("crawler_ua_rules.tsv", ("name", "action", "category", "regexp"), ua)
    write("crawler_ip_rules.tsv", ("network", "name", "action", "category"), ip)
    write("bot_ips.tsv", ("network", "bot_name", "category", "verified"), bots)
    with open(os.path.join(out, "SOURCE"), "w", encoding="utf-8") as fh:
        fh.write(f"https://github.com/TecharoHQ/anubis data/ at commit {commit} (MIT, see LICENSE)\n")
        fh.write(f"converted by refdata/anubis/convert.py: {len(ua)} user-agent rules, "
                 f"{len(ip)} address rules, {len(bots)} crawler ranges\n")
        fh.write(f"skipped {len(skipped)} rules that need Anubis's expression language, path, "
                 "header, ASN or GeoIP matching:\n")
        for s in skipped:
            fh.write(f"  {s}\n")


main()
