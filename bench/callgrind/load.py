#!/usr/bin/env python3
"""Sends N requests of one kind, one after the other on one connection, with the
benchmark's own queries (bench/wrk/*.graphql): `load.py URL SEED KIND N`."""
import http.client
import json
import pathlib
import sys
import urllib.parse

url, seed, kind, count = sys.argv[1], json.loads(pathlib.Path(sys.argv[2]).read_text()), sys.argv[3], int(sys.argv[4])
queries = pathlib.Path(__file__).resolve().parent.parent / "wrk"


def query(name):
    return " ".join((queries / f"{name}.graphql").read_text().split())


def body(n):
    issue = seed["issues"][n % len(seed["issues"])]
    if kind == "list":
        return {"query": query("issues_by_assignee"), "variables": {"a": seed["bob"]}}
    if kind == "issue":
        return {"query": query("issue_by_id"), "variables": {"id": issue}}
    if kind == "create":
        return {"query": query("create_issue"), "variables": {"t": f"New {n}", "a": seed["bob"]}}
    if kind == "update":
        # Each visit to an issue gives it the other user: a real reassignment.
        assignee = [seed["ada"], seed["bob"]][n // len(seed["issues"]) % 2]
        return {"query": query("update_issue"), "variables": {"id": issue, "a": assignee}}
    sys.exit(f"unknown kind {kind}: list, issue, create or update")


target = urllib.parse.urlparse(url)
connection = http.client.HTTPConnection(target.hostname, target.port, timeout=600)
headers = {"Content-Type": "application/json", "Authorization": "Bearer " + seed["token"]}
for n in range(count):
    connection.request("POST", target.path, json.dumps(body(n)), headers)
    response = connection.getresponse()
    answer = response.read()
    if response.status != 200 or b'"errors"' in answer:
        sys.exit(f"{kind}: {response.status} {answer[:300]!r}")
