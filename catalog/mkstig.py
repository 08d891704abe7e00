#!/usr/bin/env python3
"""Write the STIG hardening components of the catalog from one rule table.

    catalog/mkstig.py           write catalog/stig-build-linux-{low,medium,high}/1.0.0/
    catalog/mkstig.py --check   exit 1 when the written files differ (make check)

The rules are a documented subset of the DISA STIG for Canonical Ubuntu
22.04 LTS (V1; rule ids UBTU-22-*), the STIG nearest to Debian, which has no
DISA STIG of its own; they apply to Debian 12 and Ubuntu guests. As in EC2
Image Builder, "low" applies the CAT III rules, "medium" CAT III and II,
"high" CAT III, II and I. Each rule is one build step named by its STIG id,
idempotent, that either applies the setting or records why it was skipped
(in /etc/stig-hardening/rules/<id>); a last step writes the report
/etc/stig-hardening/report-<level>.txt and prints it. The test document
checks, on a fresh boot of the image, every setting the report says was
applied, and that every skip has its reason.
"""
import os
import sys

HERE = os.path.dirname(os.path.abspath(__file__))
DIR = "/etc/stig-hardening"

# Shell run first in every step: the rule's id and helpers.
PRELUDE = """set -eu
RULE={id}
D=%s/rules
mkdir -p "$D"
skip() {{ printf 'skipped: %%s\\n' "$1" >"$D/$RULE"; echo "SKIPPED $RULE: $1"; exit 0; }}
applied() {{ printf 'applied\\n' >"$D/$RULE"; echo "APPLIED $RULE: {title}"; }}
. /etc/os-release
case " ${{ID:-}} ${{ID_LIKE:-}} " in
*" debian "*|*" ubuntu "*) ;;
*) skip "this subset's rules are for Debian and Ubuntu; this is ${{ID:-an unknown system}}" ;;
esac
installed() {{ dpkg-query -W -f '${{db:Status-Abbrev}}' "$1" 2>/dev/null | grep -q '^ii'; }}
sshd_dropin() {{ mkdir -p /etc/ssh/sshd_config.d; printf '%%s\\n' "$@" >/etc/ssh/sshd_config.d/00-stig-$RULE.conf; }}
set_login_defs() {{ if grep -qE "^[[:space:]]*$1[[:space:]]" /etc/login.defs; then
  sed -i -E "s/^[[:space:]]*$1[[:space:]].*/$1 $2/" /etc/login.defs; else echo "$1 $2" >>/etc/login.defs; fi; }}
""" % DIR

# Shell for the checks (test phase): the same helpers, no skip.
CHECK_PRELUDE = """installed() { dpkg-query -W -f '${db:Status-Abbrev}' "$1" 2>/dev/null | grep -q '^ii'; }
sshd_value() { /usr/sbin/sshd -T 2>/dev/null | awk -v k="$1" 'tolower($1) == k {print $2; exit}'; }
"""

# (id, severity, title, fix, check). fix runs after the prelude and ends by
# calling applied (or skip); check exits 0 when the setting holds.
RULES = [
    ("UBTU-22-213010", "low", "restrict access to the kernel message buffer",
     """printf 'kernel.dmesg_restrict = 1\\n' >/etc/sysctl.d/60-stig-dmesg-restrict.conf
sysctl -q -w kernel.dmesg_restrict=1 || true
applied""",
     """grep -q '^kernel.dmesg_restrict = 1$' /etc/sysctl.d/60-stig-dmesg-restrict.conf && [ "$(sysctl -n kernel.dmesg_restrict)" = 1 ]"""),
    ("UBTU-22-214010", "low", "APT refuses unauthenticated packages",
     """printf 'APT::Get::AllowUnauthenticated "false";\\n' >/etc/apt/apt.conf.d/99-stig-authenticated
applied""",
     """apt-config dump | grep -qx 'APT::Get::AllowUnauthenticated "false";'"""),
    ("UBTU-22-215025", "low", "the ntp package is not installed",
     """if installed ntp; then DEBIAN_FRONTEND=noninteractive apt-get purge -y ntp; fi
applied""",
     """! installed ntp"""),
    ("UBTU-22-412010", "low", "four seconds between logon prompts after a failed logon",
     """grep -qE '^auth[[:space:]]+required[[:space:]]+pam_faildelay.so[[:space:]]+delay=4000000' /etc/pam.d/common-auth ||
  sed -i '1i auth     required     pam_faildelay.so     delay=4000000' /etc/pam.d/common-auth
applied""",
     """grep -qE '^auth[[:space:]]+required[[:space:]]+pam_faildelay.so[[:space:]]+delay=4000000' /etc/pam.d/common-auth"""),
    ("UBTU-22-412015", "low", "the date and time of the last logon shown at logon",
     """ls /lib/*/security/pam_lastlog.so /usr/lib/*/security/pam_lastlog.so >/dev/null 2>&1 ||
  skip "pam_lastlog.so is not on this system (removed from newer PAM releases)"
grep -qE '^session[[:space:]]+required[[:space:]]+pam_lastlog.so[[:space:]]+showfailed' /etc/pam.d/login ||
  sed -i '1i session     required     pam_lastlog.so     showfailed' /etc/pam.d/login
applied""",
     """grep -qE '^session[[:space:]]+required[[:space:]]+pam_lastlog.so[[:space:]]+showfailed' /etc/pam.d/login"""),
    ("UBTU-22-412020", "low", "at most ten concurrent sessions per account",
     """grep -qE '^\\*[[:space:]]+hard[[:space:]]+maxlogins[[:space:]]+10$' /etc/security/limits.conf ||
  sed -i '1i * hard maxlogins 10' /etc/security/limits.conf
applied""",
     """grep -qE '^\\*[[:space:]]+hard[[:space:]]+maxlogins[[:space:]]+10$' /etc/security/limits.conf"""),

    ("UBTU-22-213015", "medium", "kernel core dumps disabled (kdump masked)",
     """systemctl mask kdump.service >/dev/null 2>&1 || ln -sf /dev/null /etc/systemd/system/kdump.service
applied""",
     """[ "$(readlink /etc/systemd/system/kdump.service)" = /dev/null ]"""),
    ("UBTU-22-215010", "medium", "the libpam-pwquality package is installed",
     """if ! installed libpam-pwquality; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -o APT::Update::Error-Mode=any
  apt-get install -y --no-install-recommends libpam-pwquality
fi
applied""",
     """installed libpam-pwquality"""),
    ("UBTU-22-611035", "medium", "passwords of at least 15 characters",
     """[ -f /etc/security/pwquality.conf ] || skip "no /etc/security/pwquality.conf (libpam-pwquality, UBTU-22-215010, is not installed)"
if grep -qE '^[[:space:]]*minlen[[:space:]]*=' /etc/security/pwquality.conf; then
  sed -i -E 's/^[[:space:]]*minlen[[:space:]]*=.*/minlen = 15/' /etc/security/pwquality.conf
else echo 'minlen = 15' >>/etc/security/pwquality.conf; fi
applied""",
     """grep -qE '^minlen = 15$' /etc/security/pwquality.conf"""),
    ("UBTU-22-232025", "medium", "/var/log of mode 755 or less permissive",
     """chmod go-w /var/log
applied""",
     """[ $(( 0$(stat -c %a /var/log) & 022 )) = 0 ]"""),
    ("UBTU-22-232030", "medium", "/var/log/syslog of mode 640 or less permissive",
     """[ -f /var/log/syslog ] || skip "no /var/log/syslog on this system (logs in the journal only)"
chmod u-x,g-wx,o-rwx /var/log/syslog
applied""",
     """[ $(( 0$(stat -c %a /var/log/syslog) & 0137 )) = 0 ]"""),
    ("UBTU-22-255030", "medium", "SSH sessions end when the client stops answering",
     """sshd_dropin 'ClientAliveCountMax 1'
applied""",
     """[ "$(sshd_value clientalivecountmax)" = 1 ]"""),
    ("UBTU-22-255035", "medium", "SSH sessions end after 10 minutes of inactivity",
     """sshd_dropin 'ClientAliveInterval 600'
applied""",
     """[ "$(sshd_value clientaliveinterval)" = 600 ]"""),
    ("UBTU-22-255045", "medium", "the SSH daemon's X11 proxy display bound to localhost",
     """sshd_dropin 'X11UseLocalhost yes'
applied""",
     """[ "$(sshd_value x11uselocalhost)" = yes ]"""),
    ("UBTU-22-411010", "medium", "no direct login into the root account",
     """passwd -l root >/dev/null
applied""",
     """passwd -S root | awk '{exit !($2 == "L")}'"""),
    ("UBTU-22-411025", "medium", "a minimum password lifetime of one day",
     """set_login_defs PASS_MIN_DAYS 1
applied""",
     """grep -qE '^PASS_MIN_DAYS[[:space:]]+1$' /etc/login.defs"""),
    ("UBTU-22-411030", "medium", "a maximum password lifetime of 60 days",
     """set_login_defs PASS_MAX_DAYS 60
applied""",
     """grep -qE '^PASS_MAX_DAYS[[:space:]]+60$' /etc/login.defs"""),
    ("UBTU-22-412035", "medium", "default permissions 077 for new files of users (UMASK)",
     """set_login_defs UMASK 077
applied""",
     """grep -qE '^UMASK[[:space:]]+077$' /etc/login.defs"""),

    ("UBTU-22-211015", "high", "the Ctrl-Alt-Delete key sequence disabled",
     """systemctl mask ctrl-alt-del.target >/dev/null 2>&1 || ln -sf /dev/null /etc/systemd/system/ctrl-alt-del.target
applied""",
     """[ "$(readlink /etc/systemd/system/ctrl-alt-del.target)" = /dev/null ]"""),
    ("UBTU-22-212010", "high", "authentication to boot single-user and maintenance modes",
     """skip "needs a boot loader password chosen by the site (grub-mkpasswd-pbkdf2); a generic image cannot set one\"""",
     "true"),
    ("UBTU-22-215030", "high", "the rsh-server package is not installed",
     """if installed rsh-server; then DEBIAN_FRONTEND=noninteractive apt-get purge -y rsh-server; fi
applied""",
     """! installed rsh-server"""),
    ("UBTU-22-215035", "high", "no telnet server installed",
     """for p in telnetd inetutils-telnetd telnetd-ssl; do
  if installed $p; then DEBIAN_FRONTEND=noninteractive apt-get purge -y $p; fi
done
applied""",
     """! installed telnetd && ! installed inetutils-telnetd && ! installed telnetd-ssl"""),
    ("UBTU-22-255010", "high", "SSH installed",
     """if ! installed openssh-server; then
  export DEBIAN_FRONTEND=noninteractive
  apt-get update -o APT::Update::Error-Mode=any
  apt-get install -y --no-install-recommends openssh-server
fi
applied""",
     """installed openssh-server"""),
    ("UBTU-22-255025", "high", "no unattended or automatic login through SSH",
     """sshd_dropin 'PermitEmptyPasswords no' 'PermitUserEnvironment no'
applied""",
     """[ "$(sshd_value permitemptypasswords)" = no ] && [ "$(sshd_value permituserenvironment)" = no ]"""),
    ("UBTU-22-255040", "high", "X11 forwarding through SSH disabled",
     """sshd_dropin 'X11Forwarding no'
applied""",
     """[ "$(sshd_value x11forwarding)" = no ]"""),
    ("UBTU-22-611060", "high", "no logon with a blank password (no nullok in PAM)",
     """sed -i -E 's/[[:space:]]+nullok(_secure)?\\b//g' /etc/pam.d/common-auth /etc/pam.d/common-password
applied""",
     """! grep -qE '\\bnullok' /etc/pam.d/common-auth /etc/pam.d/common-password"""),
    ("UBTU-22-611065", "high", "no account with a blank password",
     """awk -F: '$2 == "" {print $1}' /etc/shadow | while read -r u; do passwd -l "$u" >/dev/null; done
applied""",
     """[ -z "$(awk -F: '$2 == "" {print $1}' /etc/shadow)" ]"""),
]

LEVELS = {"low": ("low",), "medium": ("low", "medium"), "high": ("low", "medium", "high")}
CAT = {"low": "CAT III", "medium": "CAT II", "high": "CAT I"}


def block(text, indent):
    pad = " " * indent
    return "\n".join((pad + l) if l else "" for l in text.split("\n"))


def document(level):
    rules = [r for r in RULES if r[1] in LEVELS[level]]
    cats = ", ".join(CAT[s] for s in LEVELS[level])
    out = [f"""# Generated by catalog/mkstig.py from its rule table: edit that, then run it.
name: stig-build-linux-{level}
description: "STIG hardening, {level} ({cats}): a documented subset of the DISA STIG for Ubuntu 22.04 LTS (rule ids UBTU-22-*), for Debian and Ubuntu guests. Each step is one rule, named by its STIG id and idempotent; it applies the setting or records why not in {DIR}/rules/. The report is {DIR}/report-{level}.txt. {len(rules)} rules."
schemaVersion: 1.0
phases:
  - name: build
    steps:"""]
    for rid, sev, title, fix, _check in rules:
        body = PRELUDE.format(id=rid, title=title.replace("'", "")) + fix
        out.append(f"""      - name: {rid}
        action: ExecuteBash
        inputs:
          commands:
            - |
{block(body, 14)}""")
    ids = " ".join(r[0] for r in rules)
    out.append(f"""      - name: Report
        action: ExecuteBash
        inputs:
          commands:
            - |
              set -eu
              r={DIR}/report-{level}.txt
              {{
                echo "STIG hardening, {level} ({cats}): {len(rules)} rules of the DISA STIG for Ubuntu 22.04 LTS"
                for id in {ids}; do printf '%s %s\\n' "$id" "$(cat {DIR}/rules/$id)"; done
              }} >"$r.tmp"
              mv "$r.tmp" "$r"
              cat "$r"
              echo "applied: $(grep -c ' applied$' "$r"), skipped: $(grep -c ' skipped: ' "$r")"
""")
    return "\n".join(out)


def test_document(level):
    rules = [r for r in RULES if r[1] in LEVELS[level]]
    out = [f"""# Generated by catalog/mkstig.py from its rule table: edit that, then run it.
name: stig-build-linux-{level}-test
description: "Checks stig-build-linux-{level} on a fresh boot of the image: every rule its report says was applied holds, every skipped rule says why."
schemaVersion: 1.0
phases:
  - name: test
    steps:
      - name: Report
        action: ExecuteBash
        inputs:
          commands:
            - test -s {DIR}/report-{level}.txt"""]
    for rid, sev, title, _fix, check in rules:
        body = f"""set -u
{CHECK_PRELUDE}s=$(cat {DIR}/rules/{rid} 2>/dev/null || echo missing)
case $s in
applied)
  if {check}; then echo "{rid}: holds"; else echo "{rid}: applied, but does not hold" >&2; exit 1; fi ;;
"skipped: "?*) echo "{rid}: $s" ;;
*) echo "{rid}: no status recorded ($s)" >&2; exit 1 ;;
esac"""
        out.append(f"""      - name: {rid}
        action: ExecuteBash
        inputs:
          commands:
            - |
{block(body, 14)}""")
    return "\n".join(out) + "\n"


def main():
    check = "--check" in sys.argv[1:]
    stale = []
    for level in LEVELS:
        d = os.path.join(HERE, f"stig-build-linux-{level}", "1.0.0")
        for name, text in (("document.yaml", document(level)), ("test.yaml", test_document(level))):
            path = os.path.join(d, name)
            old = open(path).read() if os.path.exists(path) else None
            if old == text:
                continue
            if check:
                stale.append(path)
                continue
            os.makedirs(d, exist_ok=True)
            with open(path, "w") as f:
                f.write(text)
    if stale:
        print("mkstig: out of date (run catalog/mkstig.py): " + " ".join(stale))
        return 1
    return 0


if __name__ == "__main__":
    sys.exit(main())
