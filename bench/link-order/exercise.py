#!/usr/bin/env python3
"""Sends a server each kind of request the api benchmark sends, a few times each:
registration, logins (good, bad, shed), issue writes and reads, project lists, and
the hostile kinds, so that every code path they take runs at least once."""
import concurrent.futures
import json
import sys
import urllib.error
import urllib.request

url = sys.argv[1]

def post(query, variables=None, token=None, raw=None):
    body = raw if raw is not None else json.dumps({"query": query, "variables": variables or {}}).encode()
    request = urllib.request.Request(url, data=body, method="POST")
    request.add_header("Content-Type", "application/json")
    if token:
        request.add_header("Authorization", "Bearer " + token)
    try:
        with urllib.request.urlopen(request, timeout=600) as response:
            return json.loads(response.read())
    except urllib.error.HTTPError as error:
        return {"status": error.code, "body": error.read()[:200].decode(errors="replace")}

def register(name):
    data = post("mutation($input: RegisterInput!) { register(input: $input) { accessToken user { id } } }",
                {"input": {"email": f"{name}@example.com", "username": name, "password": "correct horse battery",
                           "firstName": "Test", "lastName": name}})
    return data["data"]["register"]["accessToken"], data["data"]["register"]["user"]["id"]

ada, ada_id = register("ada")
bob, bob_id = register("bob")
project = post("mutation { createProject(input: { key: \"WEB\", name: \"Web\", visibility: PRIVATE }) { project { id } } }",
               token=ada)["data"]["createProject"]["project"]["id"]
post("mutation($input: AddProjectMemberInput!) { addProjectMember(input: $input) { member { role } } }",
     {"input": {"projectId": project, "userId": bob_id, "role": "MEMBER"}}, ada)
login = "mutation($u: String!, $p: String!) { login(input: {username: $u, password: $p}) { accessToken } }"
create = "mutation($t: String!, $a: ID) { createIssue(input: {title: $t, assignedTo: $a}) { issue { id } } }"
update = "mutation($id: ID!, $a: ID) { updateIssue(input: {id: $id, assignedTo: $a}) { issue { id } } }"
by_id = "query($id: ID!) { issue(id: $id) { id title status createdAt } }"
by_assignee = ("query($a: ID) { issues(first: 20, filter: {assignedTo: $a}) { totalCount nodes { id title status "
               "createdAt createdBy { username } assignedTo { username } } } }")
by_project = ("query($p: ID) { issues(first: 20, filter: {projectId: $p}) { totalCount nodes { id key title status "
              "createdAt createdBy { username } assignedTo { username } } } }")
for round in range(3):
    post(login, {"u": "ada", "p": "correct horse battery"})
    post(login, {"u": "ada", "p": "wrong"})
    post(login, {"u": "nobody", "p": "wrong"})
    ids = [post(create, {"t": f"Issue {round} {n}", "a": bob_id}, ada)["data"]["createIssue"]["issue"]["id"]
           for n in range(3)]
    post("mutation($input: CreateIssueInput!) { createIssue(input: $input) { issue { id } } }",
         {"input": {"title": "In the project", "projectId": project, "assignedTo": bob_id}}, ada)
    for issue in ids:
        post(update, {"id": issue, "a": ada_id}, ada)
        post(update, {"id": issue, "a": bob_id}, ada)
        post(by_id, {"id": issue}, bob)
    post(by_assignee, {"a": bob_id}, ada)
    post(by_assignee, {"a": ada_id}, bob)
    post(by_project, {"p": project}, bob)
# Logins side by side: some wait for the hashing thread, some are shed.
with concurrent.futures.ThreadPoolExecutor(16) as pool:
    list(pool.map(lambda _: post(login, {"u": "bob", "p": "correct horse battery"}), range(32)))
# The hostile kinds, each refused.
def nested(levels, open_, close, leaf):
    return open_ * levels + leaf + close * levels
fragments = " ".join(["query { ...F0 }"] + [f"fragment F{n} on Query {{ ...F{n + 1} ...F{n + 1} }}" for n in range(40)]
                     + ["fragment F40 on Query { __typename }"])
for _ in range(2):
    post(fragments)
    post("{ me { " + nested(3, "assignedIssues(first: 100) { nodes { assignedTo { ", " } } } ", "id") + " } }", token=ada)
    post("mutation { " + " ".join(f"a{n}: createIssue(input: {{title: \"x\"}}) {{ issue {{ id }} }}" for n in range(21)) + " }", token=ada)
    post("mutation { a: login(input: {username: \"ada\", password: \"x\"}) { accessToken } "
         "b: login(input: {username: \"ada\", password: \"x\"}) { accessToken } }")
    post("{ " + nested(40, "me { assignedIssues { nodes { assignedTo { ", " } } } } ", "id") + " }", token=ada)
    post(None, raw=b'{"query":"{ __typename }","pad":"' + b"x" * (2 * 1024 * 1024) + b'"}')
    post("{ nonsense }")
    post(None, raw=b"not json")
urllib.request.urlopen(url.replace("/graphql", "/metrics"), timeout=600).read()
urllib.request.urlopen(url.replace("/graphql", "/readyz"), timeout=600).read()
print("exercised")
