#!/usr/bin/python
"""Ansible module: fetch files over HTTP and compare their SHA-256 with the expected ones.

``sha256sum`` is the output of ``sha256sum ./file …`` run in the data directory on the
source (one ``<sha256>  ./<path>`` line per file).  Read-only (never ``changed``).  Fails,
listing every mismatch, when a file is missing, differs, or when a response lacks the
expected headers (e.g. ``X-Served-By``).
"""

from __future__ import annotations

import hashlib
import time
import urllib.error
import urllib.parse
import urllib.request

from ansible.module_utils.basic import AnsibleModule


def _fetch(url: str, timeout: float) -> tuple[int, bytes, dict[str, str]]:
    try:
        with urllib.request.urlopen(url, timeout=timeout) as response:  # noqa: S310 (http only, see main)
            return response.status, response.read(), {k.lower(): v for k, v in response.headers.items()}
    except urllib.error.HTTPError as exc:
        return exc.code, b"", {k.lower(): v for k, v in exc.headers.items()}


def main() -> None:
    module = AnsibleModule(
        argument_spec={
            "base_url": {"type": "str", "required": True},
            "sha256sum": {"type": "list", "elements": "str", "required": True},
            "headers": {"type": "dict", "default": {}},  # header → expected value
            "timeout": {"type": "float", "default": 5.0},
            "retries": {"type": "int", "default": 10},  # the service may be starting
        },
        supports_check_mode=True,
    )
    p = module.params
    base = p["base_url"].rstrip("/") + "/"
    if urllib.parse.urlsplit(base).scheme not in {"http", "https"}:
        module.fail_json(msg=f"base_url must be http(s): {base}")
    expected: dict[str, str] = {}
    for line in p["sha256sum"]:
        sha, _sep, path = line.partition("  ")
        if len(sha) != 64 or not path:
            module.fail_json(msg=f"not a sha256sum line: {line!r}")
        expected[path[2:] if path.startswith("./") else path] = sha
    problems: list[str] = []
    checked = 0
    for attempt in range(p["retries"] + 1):
        problems, checked = [], 0
        try:
            for path, sha in sorted(expected.items()):
                status, body, headers = _fetch(base + urllib.parse.quote(path), p["timeout"])
                checked += 1
                if status != 200:
                    problems.append(f"{path}: HTTP {status}")
                    continue
                if hashlib.sha256(body).hexdigest() != sha:
                    problems.append(f"{path}: checksum differs")
                for name, value in p["headers"].items():
                    if headers.get(name.lower()) != value:
                        problems.append(f"{path}: header {name} is {headers.get(name.lower())!r}, not {value!r}")
        except OSError as exc:
            problems.append(f"{base}: {exc}")
            if attempt < p["retries"]:
                time.sleep(0.5)
                continue
        break
    if not expected:
        problems.append("no files to check")
    if problems:
        module.fail_json(msg="; ".join(problems), problems=problems, checked=checked)
    module.exit_json(changed=False, checked=checked)


if __name__ == "__main__":
    main()
