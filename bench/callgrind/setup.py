#!/usr/bin/env python3
"""Seeds a fresh server for bench/callgrind/run: two users, and 30 issues of ada's
assigned to bob. Prints what load.py needs, as JSON."""
import json
import sys
import urllib.request

url = sys.argv[1]


def post(query, variables=None, token=None):
    body = json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    with urllib.request.urlopen(request, timeout=60) as response:
        return json.loads(response.read())["data"]


def register(name):
    data = post("mutation($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }",
                {"input": {"email": f"{name}@example.com", "username": name, "password": "correct horse battery",
                           "firstName": "Test", "lastName": name}})["register"]
    return data["accessToken"], data["user"]["id"]


ada, ada_id = register("ada")
bob, bob_id = register("bob")
create = "mutation($t: String!, $a: ID) { createIssue(input: {title: $t, assignedTo: $a}) { issue { id } } }"
issues = [post(create, {"t": f"Issue {n}", "a": bob_id}, ada)["createIssue"]["issue"]["id"] for n in range(30)]
print(json.dumps({"token": ada, "ada": ada_id, "bob": bob_id, "issues": issues}))
