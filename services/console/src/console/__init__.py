"""The console: server-rendered pages for on-call staff, caseworkers and auditors.

It owns no business data: every page is made from the four services' APIs, called
with the signed-in person's own access token, so roles and county scope are enforced
where they always were.
"""
